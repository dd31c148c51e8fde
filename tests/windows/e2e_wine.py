#!/usr/bin/env python3
"""connectivity-agent.exe end to end under wine64, against real peers on loopback.

Wine runs the Windows build on Linux's network stack, so the peers are the Linux ones the other
tests use: a Python listener (open), a closed port (refused), a listener whose accept queue is
full so the kernel drops further SYNs (timeout), `openssl s_server` with a test CA (one check
verified with ca_file, one against the Windows ROOT store, which does not hold that CA:
cert_invalid/unknown_ca), yaz-ztest (a Z39.50 Init) and the TDS PRELOGIN stand-in. Then the CLI
contract (check --format json exit codes 0/1/2, validate's file:line:col), the running agent's
/metrics read by `promtool check metrics`, a reload through POST /-/reload (no SIGHUP on
Windows), a clean stop on Ctrl-C (wine turns SIGINT into the console's CTRL_C_EVENT), and
`check --profile illiad` printing the same table as the Linux binary.

Usage: e2e_wine.py AGENT_EXE [LINUX_AGENT]
Environment: WINE (default /usr/lib/wine/wine64), WINEPREFIX (a fresh one is made if unset).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import tds_standin  # noqa: E402  (the PRELOGIN answer, laid out from MS-TDS)

EXE = os.path.abspath(sys.argv[1])
LINUX_AGENT = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
WINE = os.environ.get("WINE", "/usr/lib/wine/wine64")
WINESERVER = os.path.join(os.path.dirname(WINE), "wineserver")
failures = []


def expect(condition, what):
    print(("ok     " if condition else "FAILED ") + what, flush=True)
    if not condition:
        failures.append(what)
    return condition


def windows_path(path):
    # Wine maps drive Z: to the Unix root; forward slashes are fine for the Windows file API.
    return "Z:" + os.path.abspath(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wine_env():
    env = dict(os.environ, WINEDEBUG="-all")
    return env


def run_exe(args, timeout=120):
    return subprocess.run([WINE, EXE, *args], capture_output=True, text=True, timeout=timeout, env=wine_env())


class Listener:
    """Accepts and closes connections until stopped: the 'open' target."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.handle(conn)

    def handle(self, conn):
        conn.close()

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


class TdsStandIn(Listener):
    def handle(self, conn):
        try:
            tds_standin.answer_prelogin(conn)
        except OSError:
            pass
        finally:
            conn.close()


class FullAcceptQueue:
    """A listener that never accepts, its queue filled: Linux drops the next SYN, so a connect
    neither completes nor is refused until the prober gives up (a firewall's drop, on loopback)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(c)

    def stop(self):
        for c in self.fillers:
            c.close()
        self.sock.close()


def wait_until_listening(port, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def make_pki(work):
    """A test CA and a server certificate for localhost / 127.0.0.1 signed by it."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=connectivity-agent test CA",
            "-keyout", f"{work}/ca.key", "-out", f"{work}/ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", f"{work}/server.key",
            "-out", f"{work}/server.csr")
    with open(f"{work}/server.ext", "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", f"{work}/server.csr", "-CA", f"{work}/ca.pem", "-CAkey", f"{work}/ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{work}/server.ext", "-out", f"{work}/server.pem")


def start_process(args, log_path):
    log = open(log_path, "wb")
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def stop_process(process):
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def check_block(name, probe, target, extra="", required=True, timeout="3s"):
    text = f'[[check]]\nname = "{name}"\nprobe = "{probe}"\ntarget = "{target}"\ntimeout = "{timeout}"\n'
    if not required:
        text += "required = false\n"
    return text + extra + "\n"


def by_name(report):
    return {c["name"]: c for c in report["checks"]}


def http_get(port, path, method="GET", timeout=10.0):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError) as e:
        return None, str(e)


def metric_value(text, name, check):
    match = re.search(r'^' + re.escape(name) + r'\{[^}]*check="' + re.escape(check) + r'"[^}]*\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else None


def table_rows(output):
    """The check table's rows without LATENCY and DETAIL: what was checked and what happened,
    without the timing or the operating system's own wording of an error. Columns are found by
    the header's offsets (cells are padded to the widest), so a two-word result stays one cell."""
    lines = output.splitlines()
    header = next((i for i, line in enumerate(lines) if line.startswith("CHECK ")), None)
    if header is None:
        return []
    names = lines[header].split()
    starts = [lines[header].index(name) for name in names]
    rows = []
    for line in lines[header + 1:]:
        if not line.strip():
            break
        cells = {name: line[start:(starts[i + 1] if i + 1 < len(starts) else None)].strip()
                 for i, (name, start) in enumerate(zip(names, starts))}
        rows.append(tuple(cells[name] for name in names if name not in ("LATENCY", "DETAIL")))
    summary = next((line for line in lines[header:] if " checks: " in line), "")
    return rows + [re.sub(r", in [0-9.]+ m?s\.", ".", summary)]


def main():
    work = tempfile.mkdtemp(prefix="e2e-wine-")
    processes = []
    peers = []
    try:
        if "WINEPREFIX" not in os.environ:
            os.environ["WINEPREFIX"] = os.path.join(work, "wineprefix")
            subprocess.run([WINE, "wineboot", "-i"], env=wine_env(), capture_output=True, timeout=300)

        make_pki(work)
        listener = Listener()
        tds = TdsStandIn()
        dropper = FullAcceptQueue()
        peers += [listener, tds, dropper]
        refused_port = free_port()
        tls_port = free_port()
        processes.append(start_process(["openssl", "s_server", "-quiet", "-accept", f"127.0.0.1:{tls_port}",
                                        "-cert", f"{work}/server.pem", "-key", f"{work}/server.key", "-www"],
                                       f"{work}/s_server.log"))
        z_port = free_port()
        processes.append(start_process(["yaz-ztest", "-l", f"{work}/ztest.log", f"tcp:127.0.0.1:{z_port}"],
                                       f"{work}/ztest.out"))
        expect(wait_until_listening(tls_port) and wait_until_listening(z_port), "openssl s_server and yaz-ztest listen")

        ca = windows_path(f"{work}/ca.pem")
        checks = (
            check_block("open", "tcp", f"127.0.0.1:{listener.port}")
            + check_block("refused", "tcp", f"127.0.0.1:{refused_port}")
            + check_block("dropped", "tcp", f"127.0.0.1:{dropper.port}", timeout="1s")
            + check_block("tls-test-ca", "tls", f"localhost:{tls_port}", f'[check.tls]\nca_file = "{ca}"\n')
            + check_block("tls-windows-roots", "tls", f"localhost:{tls_port}", required=False)
            + check_block("catalogue", "z3950", f"127.0.0.1:{z_port}")
            + check_block("sql", "tds", f"127.0.0.1:{tds.port}", "[check.tds]\ntls = false\n")
        )
        config = f"{work}/agent.toml"
        with open(config, "w") as f:
            f.write('[agent]\ninterval = "5s"\ntimeout = "3s"\nlabels = { site = "wine" }\n\n' + checks)

        # --- check --format json: every probe, exit 1 (required checks fail) ---------------------
        started = time.monotonic()
        result = run_exe(["check", "--config", windows_path(config), "--format", "json"])
        expect(result.returncode == 1, f"check with failing required checks exits 1 (got {result.returncode}: {result.stderr[-400:]})")
        try:
            report = by_name(json.loads(result.stdout))
        except ValueError:
            report = {}
            expect(False, "check --format json prints JSON: " + result.stdout[:300])
        expected = {"open": "success", "refused": "refused", "dropped": "timeout", "tls-test-ca": "success",
                    "tls-windows-roots": "cert_invalid", "catalogue": "success", "sql": "success"}
        for name, reason in expected.items():
            got = report.get(name, {}).get("reason")
            expect(got == reason, f"{name}: reason {reason} (got {got}; {report.get(name, {}).get('detail', '')})")
        expect("unknown_ca" in json.dumps(report.get("tls-windows-roots", {})),
               "the test CA is not in the Windows ROOT store: unknown_ca")
        refused = report.get("refused", {}).get("latency_seconds", 99)
        expect(refused < 1.0, f"a refused port is reported promptly ({refused:.3f} s)")
        print(f"#      check run took {time.monotonic() - started:.1f} s under wine", flush=True)

        # --- exit 0 and exit 2 ---------------------------------------------------------------------
        passing = f"{work}/passing.toml"
        with open(passing, "w") as f:
            f.write(check_block("open", "tcp", f"127.0.0.1:{listener.port}"))
        result = run_exe(["check", "--config", windows_path(passing), "--format", "json"])
        expect(result.returncode == 0, f"check with every required check passing exits 0 (got {result.returncode})")
        bad = f"{work}/bad.toml"
        with open(bad, "w") as f:
            f.write('[[check]]\nname = "x"\nprobe = "tcp"\ntarget = "127.0.0.1:1"\ntimeout = "fast"\n')
        result = run_exe(["check", "--config", windows_path(bad), "--format", "json"])
        expect(result.returncode == 2, f"check with a bad config exits 2 (got {result.returncode})")
        result = run_exe(["validate", "--config", windows_path(bad)])
        expect(result.returncode == 2, f"validate of a bad config exits 2 (got {result.returncode})")
        expect(re.search(r"bad\.toml:5:\d+", result.stderr + result.stdout) is not None,
               "validate names file:line:col: " + (result.stderr + result.stdout).strip()[:200])
        result = run_exe(["validate", "--config", windows_path(config)])
        expect(result.returncode == 0, f"validate of the good config exits 0 (got {result.returncode}: {result.stderr[-300:]})")

        # --- the running agent: /metrics, promtool, reload, Ctrl-C ---------------------------------
        # Wine 8.0's wineserver sometimes aborts in its socket poll code (sock.c,
        # complete_async_poll) while the agent serves HTTP and probes at once: the server process
        # dies, not the agent, and every Windows process of the prefix with it. That is Wine's
        # defect; the step starts over once on a fresh wineserver, saying so, and fails if it
        # happens again.
        for attempt in (1, 2):
            subprocess.run([WINESERVER, "-k"], env=wine_env(), capture_output=True)
            port = free_port()
            agent_log = f"{work}/agent.log"
            agent = subprocess.Popen([WINE, EXE, "--config", windows_path(config), "--listen", f"127.0.0.1:{port}",
                                      "--web.enable-lifecycle"], stdin=subprocess.DEVNULL,
                                     stdout=open(agent_log, "wb"), stderr=subprocess.STDOUT, env=wine_env())
            processes.append(agent)
            metrics = ""
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status, body = http_get(port, "/metrics", timeout=2)
                if status == 200:
                    metrics = body
                    if all(metric_value(metrics, "connectivity_up", n) is not None for n in expected):
                        break
                if agent.poll() is not None or "wineserver" in open(agent_log, errors="replace").read():
                    break
                time.sleep(0.2)
            wine_aborted = "complete_async_poll" in open(agent_log, errors="replace").read()
            if not wine_aborted:
                break
            print(f"#      attempt {attempt}: wineserver aborted (Wine's sock.c assertion), not the agent",
                  flush=True)
            stop_process(agent)
        expect(all(metric_value(metrics, "connectivity_up", n) is not None for n in expected),
               "/metrics carries a result for every check")
        expect(metric_value(metrics, "connectivity_up", "open") == 1.0, "open: connectivity_up 1 on /metrics")
        expect(metric_value(metrics, "connectivity_up", "refused") == 0.0, "refused: connectivity_up 0 on /metrics")
        with open(f"{work}/metrics.txt", "w") as f:
            f.write(metrics)
        promtool = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True, text=True)
        expect(bool(metrics) and promtool.returncode == 0,
               "promtool check metrics accepts /metrics: " + promtool.stdout + promtool.stderr)
        status, _ = http_get(port, "/-/healthy")
        expect(status == 200, f"/-/healthy answers 200 (got {status})")
        status, body = http_get(port, "/-/reload", method="POST")
        expect(status == 200, f"POST /-/reload answers 200 (got {status}: {body.strip()[:200]})")
        expect(agent.poll() is None, "the agent runs on after a reload")
        agent.send_signal(signal.SIGINT)
        try:
            code = agent.wait(timeout=15)
        except subprocess.TimeoutExpired:
            code = None
        expect(code == 0, f"Ctrl-C (SIGINT through wine) stops the agent cleanly, exit 0 (got {code})")
        log_text = open(agent_log, errors="replace").read()
        expect("config reloaded" in log_text, "the log records the reload")
        expect("shutting down" in log_text, "the log records the shutdown")

        # --- the same table as on Linux -------------------------------------------------------------
        if LINUX_AGENT:
            args = ["check", "--profile", "illiad", "--var", "sql_host=127.0.0.1", "--var", "web_host=127.0.0.1"]
            windows = run_exe(args, timeout=300)
            linux = subprocess.run([LINUX_AGENT, *args], capture_output=True, text=True, timeout=300)
            expect(windows.returncode == linux.returncode,
                   f"check --profile illiad exits as on Linux ({windows.returncode} vs {linux.returncode})")
            win_rows, linux_rows = table_rows(windows.stdout), table_rows(linux.stdout)
            expect(len(win_rows) > 0 and win_rows == linux_rows,
                   f"check --profile illiad prints the same {len(linux_rows)} rows (check, probe, target, result, reason) as on Linux")
            if win_rows != linux_rows:
                print("# windows:\n" + windows.stdout + "\n# linux:\n" + linux.stdout)
    finally:
        for process in processes:
            stop_process(process)
        for peer in peers:
            peer.stop()
        if failures:
            for name in ("agent.log", "s_server.log", "ztest.out"):
                path = os.path.join(work, name)
                if os.path.exists(path):
                    print(f"# {name}:\n" + open(path, errors="replace").read()[-3000:])
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'FAIL' if failures else 'PASS'}: {len(failures)} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
