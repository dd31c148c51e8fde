#!/usr/bin/env python3
"""The connectivity-agent benchmark: cost per probe, scale, scrape and accuracy, measured side by
side with blackbox_exporter and the kernel's own floor, in one run on one machine.

    python3 tests/bench/run.py [--quick] [--build build/release] [--out REPORT.md] [--json FILE]
                               [--sections floor,tcp,tls,scale,scrape,accuracy] [--profile DIR]

Prints a markdown report and writes it to --out. Every figure is a ratio or a distribution from
this run; the report names the machine and the versions. --quick (seconds, small counts) is what
CI runs: it asserts that every section produced its figures and that every probe succeeded, and
nothing about time. --profile records the agent under perf during the TCP runs.

Placement: with two or more cores, the measured process (agent, blackbox_exporter, the floor
program, openssl s_time) runs alone on CPU 0 and the peers (listener, nginx, load generator)
on the others, so their work is not charged to it. CPU is read from /proc/PID/stat (user +
system, every thread) over a fixed window after a warm-up.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BASE_PORT = 21000          # the listener's ports: BASE_PORT .. BASE_PORT + ports - 1
TDS_PORT = 20998           # the delayed PRELOGIN answer (accuracy)
TLS_PORT = 20997           # nginx
AGENT_PORT = 20990
BLACKBOX_PORT = 20991
DELAY_MS = 100

FULL = dict(repeats=3, floor_count=200_000, listener_ports=1000, tcp_rates=[1000, 3000], tls_rate=200, window=15.0,
            scale_counts=[10_000, 100_000], scale_rate=1700, scrape_checks=10_000, scrape_interval=10.0,
            accuracy_background=1000, accuracy_checks=50, accuracy_window=30.0)
QUICK = dict(repeats=1, floor_count=5_000, listener_ports=50, tcp_rates=[200], tls_rate=50, window=2.0,
             scale_counts=[1000], scale_rate=500, scrape_checks=1000, scrape_interval=2.0,
             accuracy_background=100, accuracy_checks=10, accuracy_window=4.0)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- processes and placement

def cpu_sets():
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None  # one core: no placement possible, the report says so
    return {cores[0]}, set(cores[1:])


MEASURED, PEERS = cpu_sets()


def spawn(argv, cpus, **kwargs):
    """Starts argv pinned to `cpus` (inherited by every thread it makes)."""
    def place():
        os.setsid()
        if cpus:
            os.sched_setaffinity(0, cpus)
    return subprocess.Popen(argv, preexec_fn=place, **kwargs)


def stop(process, limit=10):
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(limit)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def rss_bytes(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for {pid}")


def wait_until(predicate, limit, what):
    """Polls `predicate` (a readiness check of a server we started) at most `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise BenchError(f"timed out waiting for {what}")


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class Listener:
    """bench_listener on the peer cores: `ports` accept-and-close ports, one delayed TDS port."""

    def __init__(self, build, ports, tds_log):
        self.tds_log = tds_log
        self.process = spawn([str(build / "tests/bench/bench_listener"), "--base-port", str(BASE_PORT),
                              "--ports", str(ports), "--tds-port", str(TDS_PORT), "--tds-delay-ms", str(DELAY_MS),
                              "--tds-log", str(tds_log)],
                             PEERS, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":
            raise BenchError("bench_listener did not start")
        self.ports = ports

    def tds_lateness(self, start, end):
        """How late the listener wrote each TDS answer past its due time, for answers written
        between two time.monotonic() readings (the same clock), in seconds."""
        out = []
        for line in Path(self.tds_log).read_text().splitlines():
            written, late = (int(x) for x in line.split())
            if start * 1e9 <= written <= end * 1e9:
                out.append(late / 1e9)
        return out

    def close(self):
        self.process.stdin.close()
        out = self.process.stdout.read()
        self.process.wait(10)
        return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------- the agent

def agent_config(path, checks, interval, max_concurrent=1024):
    """Writes a config of `checks`: (name, probe, target, options-table-or-None) tuples."""
    timeout = min(interval, 1.0)
    lines = ["[agent]", f'listen = "127.0.0.1:{AGENT_PORT}"', f'interval = "{int(interval * 1000)}ms"',
             f'timeout = "{int(timeout * 1000)}ms"', "confirm_failures = false",
             f"max_concurrent_probes = {max_concurrent}", "resolver_threads = 1", ""]
    for name, probe, target, options in checks:
        lines += ["[[check]]", f'name = "{name}"', f'probe = "{probe}"', f'target = "{target}"']
        if options:
            lines.append(f"[check.{probe}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
        lines.append("")
    path.write_text("\n".join(lines))


def tcp_checks(count, ports, prefix="tcp"):
    return [(f"{prefix}-{i:06d}", "tcp", f"127.0.0.1:{BASE_PORT + i % ports}", None) for i in range(count)]


class Agent:
    def __init__(self, build, config, log):
        self.process = spawn([str(build / "agent/connectivity-agent"), "--config", str(config), "--log-level", "warn"],
                             MEASURED, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.process.poll() is not None or http_ok(f"http://127.0.0.1:{AGENT_PORT}/-/healthy"),
                   600, "the agent to serve /-/healthy")
        if self.process.poll() is not None:
            raise BenchError(f"the agent exited with {self.process.returncode}; see {log.name}")

    @property
    def pid(self):
        return self.process.pid

    def close(self):
        stop(self.process)


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Scrape:
    """One /metrics response, reduced to what the benchmark reads from it."""

    def __init__(self, text, seconds, midpoint=0.0):
        self.seconds = seconds
        self.midpoint = midpoint  # when, roughly, the agent read its counters
        self.bytes = len(text.encode())
        self.series = 0
        self.results = {}         # probes_total summed over checks, by result
        self.lag_buckets = {}     # le -> cumulative count
        self.lag_count = 0.0
        self.skipped = 0.0
        self.phases = {}          # (check, phase) -> seconds, for tds checks
        self.last_run = {}        # check -> timestamp
        for line in text.splitlines():
            if not line or line[0] == "#":
                continue
            self.series += 1
            if not (line.startswith("connectivity_probes_total") or line.startswith("connectivity_agent_")
                    or line.startswith("connectivity_probe_duration_seconds{check=\"tds")
                    or line.startswith("connectivity_last_run_timestamp_seconds{check=\"tds")):
                continue
            name, labels, value = SAMPLE.match(line).groups()
            labels = dict(LABEL.findall(labels or ""))
            value = float(value)
            if name == "connectivity_probes_total":
                self.results[labels["result"]] = self.results.get(labels["result"], 0) + value
            elif name == "connectivity_agent_scheduler_lag_seconds_bucket":
                self.lag_buckets[float(labels["le"])] = value
            elif name == "connectivity_agent_scheduler_lag_seconds_count":
                self.lag_count = value
            elif name == "connectivity_agent_skipped_runs_total":
                self.skipped = value
            elif name == "connectivity_probe_duration_seconds":
                self.phases[(labels["check"], labels["phase"])] = value
            elif name == "connectivity_last_run_timestamp_seconds":
                self.last_run[labels["check"]] = value

    @property
    def probes(self):
        return sum(self.results.values())

    @property
    def failures(self):
        return sum(v for k, v in self.results.items() if k != "success")


def scrape(port=AGENT_PORT, gzip=False):
    """One scrape; with gzip=True as Prometheus asks (Accept-Encoding: gzip), timed to the last
    byte on the wire, and wire_bytes is what crossed it."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Accept-Encoding": "gzip"} if gzip else {})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=300) as response:
        body = response.read()
        encoding = response.headers.get("Content-Encoding", "")
    ended = time.monotonic()
    text = (zlib.decompress(body, 16 + zlib.MAX_WBITS) if encoding == "gzip" else body).decode()
    result = Scrape(text, ended - started, (started + ended) / 2)
    result.wire_bytes = len(body)
    result.encoding = encoding or "identity"
    return result


def histogram_quantile(q, buckets):
    """Prometheus's histogram_quantile over cumulative `buckets` (le -> count)."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


def lag_between(before, after):
    buckets = {le: after.lag_buckets[le] - before.lag_buckets.get(le, 0) for le in after.lag_buckets}
    return {"runs": after.lag_count - before.lag_count, "p50": histogram_quantile(0.5, buckets),
            "p99": histogram_quantile(0.99, buckets), "skipped": after.skipped - before.skipped}


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None


def summarise(repeats, roles):
    """The median repeat of each role (by CPU per probe); every repeat's figure is kept too."""
    out = {}
    for role in roles:
        ordered = sorted(repeats, key=lambda r: r[role]["us_per_probe"])
        out[role] = dict(ordered[len(ordered) // 2][role], all_us_per_probe=[r[role]["us_per_probe"] for r in repeats])
    out["ratio_ranges"] = {f"agent/{role}": [r["agent"]["us_per_probe"] / r[role]["us_per_probe"] for r in repeats]
                           for role in roles if role != "agent"}
    return out


# ---------------------------------------------------------------- the sections

class Bench:
    def __init__(self, args, scale):
        self.args = args
        self.p = scale
        self.build = Path(args.build).resolve()
        self.work = Path(tempfile.mkdtemp(prefix="connectivity-bench-"))
        self.results = {}
        self.problems = []   # what the quick run fails on: a probe that failed, a missing figure

    def require(self, condition, what):
        if not condition:
            self.problems.append(what)

    def log(self, name):
        return open(self.work / f"{name}.log", "w")

    def measure_agent(self, checks, interval, warmup, window, tag):
        """Runs the agent on `checks`; CPU and probes over `window` after `warmup` seconds."""
        config = self.work / f"{tag}.toml"
        agent_config(config, checks, interval)
        agent = Agent(self.build, config, self.log(f"agent-{tag}"))
        profiler = None
        try:
            time.sleep(warmup)  # fixed-length warm-up: every check has run before the window opens
            first = scrape()
            cpu_first, cpu_first_at = cpu_seconds(agent.pid), time.monotonic()
            if self.args.profile and shutil.which("perf"):
                out = Path(self.args.profile) / f"perf-{tag}.data"
                out.parent.mkdir(parents=True, exist_ok=True)
                profiler = subprocess.Popen(["perf", "record", "-g", "-o", str(out), "-p", str(agent.pid), "--",
                                             "sleep", str(window)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(window)
            cpu_last, cpu_last_at = cpu_seconds(agent.pid), time.monotonic()
            last = scrape()
            rss = rss_bytes(agent.pid)
        finally:
            agent.close()
            if profiler:
                profiler.wait(30)
        # The scrapes read the counters somewhere within their own duration, just outside the CPU
        # window: take the probe rate between their midpoints, over the CPU window's length.
        probe_rate = (last.probes - first.probes) / (last.midpoint - first.midpoint)
        probes = probe_rate * (cpu_last_at - cpu_first_at)
        failures = last.failures - first.failures
        self.require(probes > 0, f"{tag}: the agent ran no probe in the window")
        self.require(failures == 0, f"{tag}: {failures:.0f} agent probes failed: {last.results}")
        return {"probes": probes, "failures": failures, "cpu_seconds": cpu_last - cpu_first,
                "us_per_probe": 1e6 * (cpu_last - cpu_first) / max(probes, 1), "rss_bytes": rss,
                "lag": lag_between(first, last)}

    def start_blackbox(self, tag):
        config = self.work / "blackbox.yml"
        config.write_text(f"""modules:
  tcp_connect:
    prober: tcp
    timeout: 1s
  tls_connect:
    prober: tcp
    timeout: 1s
    tcp:
      tls: true
      tls_config:
        ca_file: {self.work / 'ca.pem'}
        server_name: localhost
""")
        process = spawn(["prometheus-blackbox-exporter", f"--config.file={config}",
                         f"--web.listen-address=127.0.0.1:{BLACKBOX_PORT}", "--log.level=warn"],
                        MEASURED, stdout=self.log(f"blackbox-{tag}"), stderr=subprocess.STDOUT)
        wait_until(lambda: process.poll() is not None or http_ok(f"http://127.0.0.1:{BLACKBOX_PORT}/-/healthy"),
                   60, "blackbox_exporter")
        if process.poll() is not None:
            raise BenchError("blackbox_exporter exited at start")
        return process

    def measure_blackbox(self, module, rate, target_port, ports, warmup, window, tag):
        exporter = self.start_blackbox(tag)
        try:
            generator = spawn([str(self.build / "tests/bench/bench_loadgen"), "--port", str(BLACKBOX_PORT),
                               "--module", module, "--target-host", "127.0.0.1", "--base-port", str(target_port),
                               "--ports", str(ports), "--rate", str(rate), "--warmup", str(warmup),
                               "--seconds", str(window), "--measure-pid", str(exporter.pid),
                               "--connections", str(max(16, rate // 20))],
                              PEERS, stdout=subprocess.PIPE, text=True)
            out, _ = generator.communicate(timeout=warmup + window + 60)
            load = json.loads(out)
            rss = rss_bytes(exporter.pid)
        finally:
            stop(exporter)
        cpu = load["window_cpu_ticks"] / load["clock_ticks_per_second"]
        self.require(load["failed"] == 0 and load["unanswered"] == 0,
                     f"{tag}: blackbox_exporter probes failed or went unanswered: {load}")
        self.require(load["window_completed"] > 0, f"{tag}: blackbox_exporter completed no probe in the window")
        return {"probes": load["window_completed"], "failures": load["failed"], "cpu_seconds": cpu,
                "us_per_probe": 1e6 * cpu / max(load["window_completed"], 1), "rss_bytes": rss,
                "achieved_rate": load["window_completed"] / load["window_seconds"], "max_backlog": load["max_backlog"]}

    def floor(self, mode, ports, **kwargs):
        argv = [str(self.build / "tests/bench/bench_floor"), "--mode", mode, "--base-port", str(BASE_PORT),
                "--ports", str(ports)] + [x for k, v in kwargs.items() for x in (f"--{k}", str(v))]
        process = spawn(argv, MEASURED, stdout=subprocess.PIPE, text=True)
        out, _ = process.communicate(timeout=600)
        result = json.loads(out)
        self.require(result["failures"] == 0, f"floor {mode}: {result['failures']} connects failed")
        result["us_per_connect"] = result["us_per_probe"] = result["cpu_ns"] / 1e3 / result["connects"]
        return result

    # 1 and 2
    def section_floor(self, listener):
        self.results["floor"] = {"loop": self.floor("loop", listener.ports, count=self.p["floor_count"])}

    def section_tcp(self, listener):
        runs = []
        warmup = 3.0 if not self.args.quick else 1.5
        for rate in self.p["tcp_rates"]:
            repeats = []
            for repeat in range(self.p["repeats"]):  # interleaved, so drift of the machine hits all three
                tag = f"tcp-{rate}-{repeat}"
                agent = self.measure_agent(tcp_checks(rate, listener.ports), 1.0, warmup, self.p["window"], tag)
                blackbox = self.measure_blackbox("tcp_connect", rate, BASE_PORT, listener.ports, warmup,
                                                 self.p["window"], tag)
                paced = self.floor("paced", listener.ports, rate=rate, seconds=self.p["window"])
                repeats.append({"agent": agent, "blackbox": blackbox, "paced_floor": paced})
            runs.append({"rate": rate, **summarise(repeats, ["agent", "blackbox", "paced_floor"])})
        self.results["tcp"] = runs

    # 3
    def make_pki(self):
        def run(*argv):
            subprocess.run(argv, check=True, cwd=self.work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=connectivity bench CA")
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost")
        (self.work / "leaf.ext").write_text("subjectAltName=DNS:localhost\n")
        run("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext")

    def start_nginx(self):
        conf = self.work / "nginx.conf"
        conf.write_text(f"""worker_processes 1;
daemon off;
master_process off;
pid {self.work}/nginx.pid;
error_log {self.work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {self.work}/nginx-body;
  proxy_temp_path {self.work}/nginx-proxy;
  fastcgi_temp_path {self.work}/nginx-fastcgi;
  uwsgi_temp_path {self.work}/nginx-uwsgi;
  scgi_temp_path {self.work}/nginx-scgi;
  server {{
    listen 127.0.0.1:{TLS_PORT} ssl;
    ssl_certificate {self.work}/leaf.pem;
    ssl_certificate_key {self.work}/leaf.key;
    ssl_session_cache off;
    ssl_session_tickets off;
    return 204;
  }}
}}
""")
        process = spawn(["nginx", "-c", str(conf), "-e", str(self.work / "nginx-error.log")], PEERS,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: process.poll() is not None or port_open(TLS_PORT), 30, "nginx")
        if process.poll() is not None:
            raise BenchError("nginx did not start; see nginx-error.log")
        return process

    def s_time(self, seconds):
        """openssl s_time: full handshakes back to back; its CPU from wait4's rusage."""
        process = spawn(["openssl", "s_time", "-connect", f"127.0.0.1:{TLS_PORT}", "-new", "-time",
                         str(max(1, int(seconds))), "-CAfile", str(self.work / "ca.pem")],
                        MEASURED, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        out = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        found = re.search(r"(\d+) connections in", out)
        self.require(found and int(found.group(1)) > 0, f"openssl s_time made no connection: {out[-300:]}")
        connections = int(found.group(1)) if found else 0
        cpu = usage.ru_utime + usage.ru_stime
        return {"connections": connections, "cpu_seconds": cpu, "us_per_probe": 1e6 * cpu / max(connections, 1)}

    def section_tls(self):
        self.make_pki()
        nginx = self.start_nginx()
        rate, window = self.p["tls_rate"], self.p["window"]
        warmup = 3.0 if not self.args.quick else 1.5
        try:
            options = {"server_name": "localhost", "ca_file": str(self.work / "ca.pem")}
            checks = [(f"tls-{i:05d}", "tls", f"127.0.0.1:{TLS_PORT}", options) for i in range(rate)]
            repeats = []
            for repeat in range(self.p["repeats"]):
                repeats.append({"agent": self.measure_agent(checks, 1.0, warmup, window, f"tls-{rate}-{repeat}"),
                                "blackbox": self.measure_blackbox("tls_connect", rate, TLS_PORT, 1, warmup, window,
                                                                  f"tls-{rate}-{repeat}"),
                                "s_time": self.s_time(window)})
        finally:
            stop(nginx)
        self.results["tls"] = {"rate": rate, **summarise(repeats, ["agent", "blackbox", "s_time"])}

    # 4
    def section_scale(self, listener):
        # The baseline: the agent with 10 checks, for RSS per check.
        config = self.work / "baseline.toml"
        agent_config(config, tcp_checks(10, listener.ports), 1.0)
        agent = Agent(self.build, config, self.log("agent-baseline"))
        try:
            time.sleep(1.5)
            baseline_rss = rss_bytes(agent.pid)
        finally:
            agent.close()
        runs = []
        for count in self.p["scale_counts"]:
            interval = max(1.0, round(count / self.p["scale_rate"]))
            config = self.work / f"scale-{count}.toml"
            agent_config(config, tcp_checks(count, listener.ports), interval)
            started = time.monotonic()
            agent = Agent(self.build, config, self.log(f"agent-scale-{count}"))
            startup = time.monotonic() - started
            try:
                # Two whole intervals: every check has run at least once, then once more.
                time.sleep(2 * interval + 1)
                rss = rss_bytes(agent.pid)
                cpu = cpu_seconds(agent.pid)
                final = scrape()
            finally:
                agent.close()
            lag = lag_between(Scrape("", 0), final)
            self.require(final.probes >= count, f"scale {count}: only {final.probes:.0f} probes ran")
            self.require(final.failures == 0, f"scale {count}: {final.failures:.0f} probes failed")
            runs.append({"checks": count, "interval": interval, "rate": count / interval, "rss_bytes": rss,
                         "baseline_rss_bytes": baseline_rss, "bytes_per_check": (rss - baseline_rss) / count,
                         "startup_seconds": startup, "probes": final.probes, "failures": final.failures,
                         "cpu_seconds": cpu, "lag": lag, "skipped": final.skipped,
                         "scrape_seconds": final.seconds, "scrape_bytes": final.bytes, "series": final.series})
        self.results["scale"] = runs

    # 5
    def section_scrape(self, listener):
        count, interval = self.p["scrape_checks"], self.p["scrape_interval"]
        config = self.work / "scrape.toml"
        agent_config(config, tcp_checks(count, listener.ports), interval)
        agent = Agent(self.build, config, self.log("agent-scrape"))
        try:
            time.sleep(interval + 1)
            quiet_start = scrape()
            time.sleep(2 * interval)
            quiet_end = scrape()
            scrapes = []
            cpu_start = cpu_seconds(agent.pid)
            deadline = time.monotonic() + 2 * interval
            while time.monotonic() < deadline:  # back to back: the harshest scraper there is
                scrapes.append(scrape())
            cpu_end = cpu_seconds(agent.pid)
            # As Prometheus asks: gzip. Bounded in count and time.
            gzipped = []
            gzip_deadline = time.monotonic() + interval
            while len(gzipped) < 20 and time.monotonic() < gzip_deadline:
                gzipped.append(scrape(gzip=True))
        finally:
            agent.close()
        self.require(gzipped and all(g.encoding == "gzip" for g in gzipped), "scrape: /metrics was not gzipped when asked")
        self.require(abs(gzipped[-1].series - scrapes[-1].series) <= count, "scrape: the gzipped text has other series")
        durations = [s.seconds for s in scrapes]
        busy = lag_between(scrapes[0], scrapes[-1]) if len(scrapes) > 1 else None
        self.require(busy is not None, "scrape: fewer than two scrapes in the window")
        self.require(quiet_end.failures == 0 and scrapes[-1].failures == 0, "scrape: probes failed")
        self.results["scrape"] = {
            "checks": count, "interval": interval, "bytes": scrapes[-1].bytes, "series": scrapes[-1].series,
            "scrapes": len(scrapes), "seconds_p50": percentile(durations, 0.5), "seconds_max": max(durations),
            "agent_cpu_seconds": cpu_end - cpu_start,
            "gzip_scrapes": len(gzipped), "gzip_wire_bytes": gzipped[-1].wire_bytes,
            "gzip_seconds_p50": percentile([g.seconds for g in gzipped], 0.5),
            "gzip_seconds_max": max(g.seconds for g in gzipped),
            "quiet_lag": lag_between(quiet_start, quiet_end), "scraped_lag": busy}

    # 6
    def section_accuracy(self, listener):
        out = {}
        for background in ([0, self.p["accuracy_background"]] if not self.args.quick else [self.p["accuracy_background"]]):
            checks = tcp_checks(background, listener.ports)
            checks += [(f"tds-{i:04d}", "tds", f"127.0.0.1:{TDS_PORT}", None) for i in range(self.p["accuracy_checks"])]
            config = self.work / f"accuracy-{background}.toml"
            agent_config(config, checks, 1.0)
            agent = Agent(self.build, config, self.log(f"agent-accuracy-{background}"))
            samples, seen = [], set()
            try:
                time.sleep(1.5)
                window_start = time.monotonic()
                deadline = window_start + self.p["accuracy_window"]
                while time.monotonic() < deadline:
                    now = scrape()
                    for check, stamp in now.last_run.items():
                        if (check, stamp) not in seen and (check, "prelogin") in now.phases:
                            seen.add((check, stamp))
                            samples.append(now.phases[(check, "prelogin")] - DELAY_MS / 1000)
                    time.sleep(0.5)
                failures = now.failures
                peer_late = listener.tds_lateness(window_start, time.monotonic())
            finally:
                agent.close()
            self.require(len(samples) > 0, f"accuracy: no TDS sample with {background} background checks")
            self.require(failures == 0, f"accuracy: {failures:.0f} probes failed: {now.results}")
            # A phase shorter than the server's own delay would be a measurement bug, not noise.
            self.require(not samples or min(samples) > -0.0005,
                         f"accuracy: a prelogin phase shorter than the {DELAY_MS} ms delay: {min(samples):.6f}")
            out[background] = {"samples": len(samples), "p50": percentile(samples, 0.5),
                               "p99": percentile(samples, 0.99), "max": max(samples) if samples else None,
                               "min": min(samples) if samples else None,
                               "peer_late_p50": percentile(peer_late, 0.5) if peer_late else None,
                               "peer_late_p99": percentile(peer_late, 0.99) if peer_late else None,
                               "peer_late_max": max(peer_late) if peer_late else None}
        self.results["accuracy"] = out

    def run(self):
        sections = self.args.sections.split(",")
        listener = Listener(self.build, self.p["listener_ports"], self.work / "tds-answers.log")
        try:
            for name in ["floor", "tcp", "tls", "scale", "scrape", "accuracy"]:
                if name not in sections:
                    continue
                print(f"== {name}", file=sys.stderr, flush=True)
                started = time.monotonic()
                if name == "tls":
                    self.section_tls()
                else:
                    getattr(self, f"section_{name}")(listener)
                self.results.setdefault("section_seconds", {})[name] = time.monotonic() - started
        finally:
            self.results["listener"] = listener.close()


# ---------------------------------------------------------------- the report

def command_output(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not found"


def machine(build):
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {
        "cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
        "placement": ("measured process alone on CPU %s, peers on CPU %s" % (
            ",".join(map(str, sorted(MEASURED))), ",".join(map(str, sorted(PEERS))))) if MEASURED
        else "one core: everything shares it (ratios still compare like with like)",
        "agent": command_output([str(build / "agent/connectivity-agent"), "--version"]),
        "blackbox_exporter": command_output(["prometheus-blackbox-exporter", "--version"]),
        "nginx": command_output(["nginx", "-v"]),
        "openssl": command_output(["openssl", "version"]),
        "compiler": command_output(["c++", "--version"]),
    }


def us(x):
    return "n/a" if x is None else f"{x:,.1f} µs"


def ms(x):
    return "n/a" if x is None else f"{x * 1e3:,.2f} ms"


def mib(x):
    return f"{x / 1048576:,.1f} MiB"


def ratio(a, b, spread=None):
    """a / b, and the range of that ratio over the repeats when there were several."""
    if not a or not b:
        return "n/a"
    if spread and len(spread) > 1:
        return f"{a / b:.2f}× ({min(spread):.2f}–{max(spread):.2f})"
    return f"{a / b:.2f}×"


TARGET_FLOOR_RATIO = 1.5        # a TCP probe at most 1.5x the kernel's own connect + close
TARGET_BLACKBOX_RATIO = 1 / 6   # and at most a sixth of blackbox_exporter's CPU per probe


def headline(results, floor):
    """The issue's two targets against this run's figures: met or missed, never hidden."""
    if not results.get("tcp"):
        return []
    def verdict(value, limit):
        return f"{value:.2f}× ({'met' if value <= limit else 'missed'})"
    out = ["## Headline", "", f"Targets: a TCP probe at most {TARGET_FLOOR_RATIO}× the floor and at most 1/6 "
           f"({TARGET_BLACKBOX_RATIO:.3f}×) of blackbox_exporter's CPU per probe.", "",
           "| rate | agent / paced floor | agent / raw floor | agent / blackbox_exporter |", "|---:|---:|---:|---:|"]
    for run in results["tcp"]:
        a = run["agent"]["us_per_probe"]
        raw = verdict(a / floor["us_per_connect"], TARGET_FLOOR_RATIO) if floor else "n/a"
        out.append(f"| {run['rate']:,}/s | {verdict(a / run['paced_floor']['us_per_probe'], TARGET_FLOOR_RATIO)} | {raw} | "
                   f"{verdict(a / run['blackbox']['us_per_probe'], TARGET_BLACKBOX_RATIO)} |")
    for run in results["tcp"]:
        achieved = run["blackbox"].get("achieved_rate", run["rate"])
        if achieved < 0.95 * run["rate"]:
            out += ["", f"At {run['rate']:,}/s blackbox_exporter kept up with only {achieved:,.0f}/s on its core: its "
                    "figure there is its cost at the rate it could reach, and the agent ran the full rate."]
    if results.get("tls"):
        t = results["tls"]
        out += ["", f"TLS at {t['rate']}/s: agent / blackbox_exporter {t['agent']['us_per_probe'] / t['blackbox']['us_per_probe']:.2f}×, "
                f"agent / `openssl s_time` {t['agent']['us_per_probe'] / t['s_time']['us_per_probe']:.2f}×."]
    return out + [""]


def key_figures(results):
    """The figures a reader compares between two runs: (name, value, unit, lower is better)."""
    out = []
    floor = results.get("floor", {}).get("loop")
    for run in results.get("tcp", []):
        a = run["agent"]["us_per_probe"]
        out += [(f"TCP {run['rate']:,}/s: agent CPU per probe", a, "µs"),
                (f"TCP {run['rate']:,}/s: agent / paced floor", a / run["paced_floor"]["us_per_probe"], "×"),
                (f"TCP {run['rate']:,}/s: agent / blackbox_exporter", a / run["blackbox"]["us_per_probe"], "×")]
    if floor:
        out.append(("raw floor: CPU per connect", floor["us_per_connect"], "µs"))
    if results.get("tls"):
        t = results["tls"]
        out += [("TLS: agent CPU per handshake", t["agent"]["us_per_probe"], "µs"),
                ("TLS: agent / blackbox_exporter", t["agent"]["us_per_probe"] / t["blackbox"]["us_per_probe"], "×")]
    for r in results.get("scale", []):
        out += [(f"{r['checks']:,} checks: RSS", r["rss_bytes"] / 1048576, "MiB"),
                (f"{r['checks']:,} checks: RSS per check", r["bytes_per_check"] / 1024, "KiB"),
                (f"{r['checks']:,} checks: lag p99", r["lag"]["p99"] * 1e3, "ms")]
        if r.get("scrape_seconds") is not None:
            out += [(f"{r['checks']:,} checks: scrape", r["scrape_seconds"], "s"),
                    (f"{r['checks']:,} checks: scrape size", r["scrape_bytes"] / 1e6, "MB")]
    if results.get("scrape"):
        s = results["scrape"]
        out += [(f"scrape of {s['checks']:,} checks, p50", s["seconds_p50"], "s"),
                (f"scrape of {s['checks']:,} checks: size", s["bytes"] / 1e6, "MB"),
                (f"scrape of {s['checks']:,} checks: series per check", s["series"] / s["checks"], ""),
                (f"scrape of {s['checks']:,} checks: scheduler lag p99 while scraped", s["scraped_lag"]["p99"] * 1e3, "ms")]
        if s.get("gzip_wire_bytes"):
            out.append((f"scrape of {s['checks']:,} checks: bytes on the wire", s["gzip_wire_bytes"] / 1e6, "MB"))
    for background, r in results.get("accuracy", {}).items():
        out += [(f"accuracy beside {int(background):,} probes/s: p50", r["p50"] * 1e3, "ms"),
                (f"accuracy beside {int(background):,} probes/s: p99", r["p99"] * 1e3, "ms")]
    return out


def before_and_after(results, before):
    """Each key figure of this run beside the same figure of an earlier run (--before)."""
    earlier = {name: value for name, value, _ in key_figures(before)}
    rows = ["## Before and after", "",
            f"Against the run of {before.get('date', 'an earlier date')} (its report.json), same harness and machine class. "
            "Where the before is empty, that run did not measure it.", "",
            "| figure | before | now | change |", "|---|---:|---:|---:|"]
    def fmt(value, unit):
        text = f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        return f"{text} {unit}".strip() if unit != "×" else f"{text}×"
    for name, value, unit in key_figures(results):
        old = earlier.get(name)
        # The gzip figure's before is the plain text: what went on the wire then.
        if old is None and name.endswith("bytes on the wire"):
            old = earlier.get(name.replace("bytes on the wire", "size"))
        change = "" if old is None or old == 0 else f"{value / old:.2f}×"
        rows.append(f"| {name} | {fmt(old, unit) if old is not None else ''} | {fmt(value, unit)} | {change} |")
    return rows + [""]


def report(results, quick, before=None):
    m = results["machine"]
    out = [f"# connectivity-agent benchmark{' (quick mode: small counts, seconds long; figures are indicative only)' if quick else ''}", "",
           f"Run {results['date']} on {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}; {m['placement']}.",
           f"Versions: {m['agent']}; {m['blackbox_exporter']}; {m['nginx']}; {m['openssl']}; {m['compiler']}.",
           "CPU is user + system time from /proc/PID/stat over the window (all threads); µs per probe is that "
           "CPU divided by the probes completed in the same window. Sections 2 and 3 repeat each measurement "
           f"{results.get('repeats', 1)} times, interleaved; they show the median repeat and, in brackets, the range "
           "of a ratio over the repeats.", ""]
    floor = results.get("floor", {}).get("loop")
    out += headline(results, floor)
    if before:
        out += before_and_after(results, before)
    if floor:
        out += ["## 1. Raw floor", "",
                f"`bench_floor --mode loop`: {floor['connects']:,} blocking socket/connect/close to the loopback "
                f"listener back to back: **{us(floor['us_per_connect'])} CPU per connect**. The paced floor (same, at "
                "the benchmark's rate, sleeping between connects: a wake-up per probe, as any prober at that rate "
                "pays) is in section 2.", ""]
    if results.get("tcp"):
        out += ["## 2. TCP probe cost", "",
                "| rate | agent | blackbox_exporter | paced floor | agent / blackbox | agent / paced floor | agent / raw floor | agent RSS | blackbox RSS |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for run in results["tcp"]:
            a, b, p = run["agent"], run["blackbox"], run["paced_floor"]
            spread = run.get("ratio_ranges", {})
            out.append(f"| {run['rate']:,}/s | {us(a['us_per_probe'])} | {us(b['us_per_probe'])} | {us(p['us_per_connect'])} | "
                       f"{ratio(a['us_per_probe'], b['us_per_probe'], spread.get('agent/blackbox'))} | "
                       f"{ratio(a['us_per_probe'], p['us_per_connect'], spread.get('agent/paced_floor'))} | "
                       f"{ratio(a['us_per_probe'], floor and floor['us_per_connect'])} | {mib(a['rss_bytes'])} | {mib(b['rss_bytes'])} |")
        out += ["", "Probes in the window (agent / blackbox; failed): " + "; ".join(
            f"{r['rate']:,}/s: {r['agent']['probes']:,.0f} / {r['blackbox']['probes']:,} ({r['agent']['failures']:.0f} / {r['blackbox']['failures']})"
            for r in results["tcp"]) + ". Rate blackbox_exporter achieved on its core: " + "; ".join(
            f"{r['blackbox']['achieved_rate']:,.0f}/s of {r['rate']:,}/s" for r in results["tcp"]) + ".", ""]
    if results.get("tls"):
        t = results["tls"]
        a, b, s = t["agent"], t["blackbox"], t["s_time"]
        out += ["## 3. TLS handshake cost", "",
                f"nginx with an ECDSA P-256 test certificate, session cache and tickets off; {t['rate']}/s.", "",
                "| | CPU per handshake | ratio to agent |", "|---|---:|---:|",
                f"| agent `tls` probe (verifies the chain and name) | {us(a['us_per_probe'])} | 1.00× |",
                f"| blackbox_exporter `tcp` + `tls: true` | {us(b['us_per_probe'])} | {ratio(b['us_per_probe'], a['us_per_probe'])} |",
                f"| `openssl s_time -new` (floor, back to back) | {us(s['us_per_probe'])} | {ratio(s['us_per_probe'], a['us_per_probe'])} |",
                "", f"Agent / blackbox: **{ratio(a['us_per_probe'], b['us_per_probe'], t.get('ratio_ranges', {}).get('agent/blackbox'))}**; "
                f"agent / s_time: **{ratio(a['us_per_probe'], s['us_per_probe'], t.get('ratio_ranges', {}).get('agent/s_time'))}**. "
                f"RSS: agent {mib(a['rss_bytes'])}, blackbox {mib(b['rss_bytes'])}.", ""]
    if results.get("scale"):
        out += ["## 4. Scale", "",
                "Checks to the loopback listener at an interval that keeps the rate near what it sustains; "
                "lag from the agent's own `connectivity_agent_scheduler_lag_seconds` (every run since start, "
                "quantiles interpolated in its buckets as `histogram_quantile` does).", "",
                "| checks | interval | rate | RSS | RSS per check | start-up | lag p50 | lag p99 | skipped runs | failed | scrape | series per check |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in results["scale"]:
            out.append(f"| {r['checks']:,} | {r['interval']:.0f} s | {r['rate']:,.0f}/s | {mib(r['rss_bytes'])} | "
                       f"{r['bytes_per_check'] / 1024:.1f} KiB | {r['startup_seconds']:.1f} s | {ms(r['lag']['p50'])} | "
                       f"{ms(r['lag']['p99'])} | {r['skipped']:.0f} | {r['failures']:.0f} | "
                       f"{r['scrape_seconds']:.2f} s, {r['scrape_bytes'] / 1e6:.1f} MB | {r['series'] / r['checks']:.1f} |")
        out += ["", "The scrape is one plain `/metrics` read at the end, after two intervals; series per check "
                "counts every series of the text (the agent's and the process's own too) over the checks.", ""]
    if results.get("scrape"):
        s = results["scrape"]
        out += ["## 5. Scrape", "",
                f"{s['checks']:,} TCP checks every {s['interval']:.0f} s. `/metrics`: **{s['bytes'] / 1e6:.1f} MB, "
                f"{s['series']:,} series**, served in {s['seconds_p50']:.2f} s (p50 of {s['scrapes']} back-to-back "
                f"scrapes; max {s['seconds_max']:.2f} s); the agent's CPU during them: {s['agent_cpu_seconds']:.1f} s."
                + (f" Asked for gzip, as Prometheus asks: **{s['gzip_wire_bytes'] / 1e6:.2f} MB on the wire** "
                   f"({s['bytes'] / s['gzip_wire_bytes']:.1f}× smaller), served in {s['gzip_seconds_p50']:.2f} s "
                   f"(p50 of {s['gzip_scrapes']}; max {s['gzip_seconds_max']:.2f} s)." if s.get("gzip_wire_bytes") else ""), "",
                "| scheduler lag | p50 | p99 | skipped runs |", "|---|---:|---:|---:|",
                f"| quiet ({s['quiet_lag']['runs']:,.0f} runs) | {ms(s['quiet_lag']['p50'])} | {ms(s['quiet_lag']['p99'])} | {s['quiet_lag']['skipped']:.0f} |",
                f"| scraped back to back ({s['scraped_lag']['runs']:,.0f} runs) | {ms(s['scraped_lag']['p50'])} | {ms(s['scraped_lag']['p99'])} | {s['scraped_lag']['skipped']:.0f} |", ""]
    if results.get("accuracy"):
        out += ["## 6. Accuracy", "",
                f"A loopback TDS server answers the PRELOGIN {DELAY_MS} ms after it has read it (timerfd; its own "
                f"lateness at most {results['listener'].get('tds_late_max_ns', 0) / 1e3:,.0f} µs). The agent's `tds` "
                "checks run every second; each run's reported `prelogin` phase minus 100 ms:", "",
                "| background TCP load | samples | p50 | p99 | max | the peer's own lateness p50 | p99 | max |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for background, r in results["accuracy"].items():
            out.append(f"| {int(background):,} probes/s | {r['samples']:,} | {ms(r['p50'])} | {ms(r['p99'])} | {ms(r['max'])} | "
                       f"{ms(r.get('peer_late_p50'))} | {ms(r.get('peer_late_p99'))} | {ms(r.get('peer_late_max'))} |")
        out += ["", "The peer's lateness is how long past the 100 ms the listener wrote each answer in the same "
                "window (its own clock, per answer): the part of the reported phase that is the peer's, not the agent's.", ""]
    if results.get("problems"):
        out += ["## Problems", ""] + [f"- {p}" for p in results["problems"]] + [""]
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, seconds long (CI)")
    parser.add_argument("--build", default=str(ROOT / "build/release"), help="the build directory (release)")
    parser.add_argument("--out", default=None, help="write the markdown report here")
    parser.add_argument("--json", default=None, help="write the raw figures here")
    parser.add_argument("--sections", default="floor,tcp,tls,scale,scrape,accuracy")
    parser.add_argument("--profile", default=None, help="record the agent with perf into this directory")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs)")
    parser.add_argument("--from-json", default=None, help="only render the report of an earlier run's --json")
    parser.add_argument("--before", default=None, help="an earlier run's --json: the report sets each figure beside it")
    args = parser.parse_args()
    before = json.loads(Path(args.before).read_text()) if args.before else None
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        text = report(results, results.get("quick", False), before)
        print(text)
        if args.out:
            Path(args.out).write_text(text + "\n")
        return
    for tool in ["prometheus-blackbox-exporter", "nginx", "openssl"]:
        if not shutil.which(tool):
            sys.exit(f"run.py: {tool} is missing: bash deploy/install-deps.sh --test installs it")
    bench = Bench(args, QUICK if args.quick else FULL)
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": args.quick,
               "repeats": bench.p["repeats"],
               "machine": machine(bench.build)}
    try:
        bench.run()
    except BenchError as error:
        bench.problems.append(str(error))
    finally:
        results.update(bench.results)
        results["problems"] = bench.problems
        text = report(results, args.quick, before)
        print(text)
        if args.out:
            Path(args.out).write_text(text + "\n")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")
        if args.keep:
            print(f"work directory: {bench.work}", file=sys.stderr)
        else:
            shutil.rmtree(bench.work, ignore_errors=True)
    sys.exit(1 if bench.problems else 0)


if __name__ == "__main__":
    main()
