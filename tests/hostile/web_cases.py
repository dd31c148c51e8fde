#!/usr/bin/env python3
"""Hostile cases: web. Usage: web_cases.py AGENT_BINARY [NAME_REGEX]

The web port held open by idle and slowloris connections, reload floods, the memory a scrape
leaves behind, shutdown with connections held and a probe stuck, and paths matched by prefix.
Everything binds and connects to 127.0.0.1 only."""
import os
import resource
import selectors
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Agent, case, expect, run, time_bound  # noqa: E402,F401

LIFECYCLE = "--web.enable-lifecycle"
RELOADS = "connectivity_agent_config_reloads_total"
RELOAD_OK = "connectivity_agent_config_last_reload_successful"


def refused_port():
    """A loopback port nothing listens on (bound, then closed): connects are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def checks(count, port, interval="10s", timeout="1s", prefix="c"):
    """`count` tcp checks against 127.0.0.1:`port`, with labels like a real site's."""
    return "".join(
        f'[[check]]\nname = "{prefix}{i:05d}"\nprobe = "tcp"\ntarget = "127.0.0.1:{port}"\ninterval = "{interval}"\n'
        f'timeout = "{timeout}"\nrequired = false\nlabels = {{ vendor = "v{i % 7}", system = "s{i % 13}" }}\n\n'
        for i in range(count))


NO_CONFIRM = "[agent]\nconfirm_failures = false\n\n"


def is_asan_build(binary):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def raise_fd_limit(wanted=8192):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(wanted, hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def fetch(port, method, path, timeout=30.0, body=b""):
    """(status, body bytes, seconds): one request on a fresh connection, read until the agent
    closes it (the harness's client copies the body per chunk: too slow for a large scrape)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        chunks = []
        deadline = started + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, rest = data.partition(b"\r\n\r\n")
    first = head.split(b"\r\n", 1)[0].split()
    if len(first) < 2 or not first[0].startswith(b"HTTP/1."):
        raise OSError(f"not an HTTP answer: {data[:80]!r}")
    return int(first[1]), rest, time.monotonic() - started


def metric_value(body, name_and_labels):
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith(name_and_labels + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


class Holder:
    """Holds `idle` connections that never send a byte and `slowloris` connections that send a
    request line and then one header byte a second, never finishing it, from one background
    thread; any the agent closes (or fails to take) is opened again at once, so the count
    stays up the whole time, as a port scanner or a misconfigured health check would keep it."""

    def __init__(self, port, idle=0, slowloris=0):
        raise_fd_limit(2 * (idle + slowloris) + 256)
        self.address = ("127.0.0.1", port)
        self.wanted = {"idle": idle, "slowloris": slowloris}
        self.selector = selectors.DefaultSelector()
        self.open = {"idle": 0, "slowloris": 0}
        self.connected = 0  # established now
        self.reopened = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        for kind, n in self.wanted.items():
            for _ in range(n):
                self._open(kind)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(10)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()
        return False

    def wait_established(self, at_least, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.connected < at_least:
            time.sleep(0.05)
        return self.connected

    def _open(self, kind):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(self.address)
        self.open[kind] += 1
        self.selector.register(s, selectors.EVENT_WRITE, {"kind": kind, "up": False, "next": 0.0})

    def _close(self, key, reopen=True):
        self.selector.unregister(key.fileobj)
        key.fileobj.close()
        kind = key.data["kind"]
        self.open[kind] -= 1
        if key.data["up"]:
            self.connected -= 1
        if reopen and not self.stopping.is_set():
            self.reopened += 1
            self._open(kind)

    def _run(self):
        while not self.stopping.is_set():
            now = time.monotonic()
            for key, events in self.selector.select(timeout=0.1):
                s, data = key.fileobj, key.data
                if not data["up"]:
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                        self._close(key)
                        continue
                    data["up"] = True
                    self.connected += 1
                    if data["kind"] == "slowloris":
                        try:
                            s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                        except OSError:
                            self._close(key)
                            continue
                        data["next"] = now + 1.0
                    self.selector.modify(s, selectors.EVENT_READ, data)
                    continue
                try:
                    if not s.recv(65536):
                        self._close(key)
                except OSError:
                    self._close(key)
            for key in list(self.selector.get_map().values()):
                data = key.data
                if data["kind"] == "slowloris" and data["up"] and now >= data["next"]:
                    data["next"] = now + 1.0
                    try:
                        key.fileobj.send(b"X")
                    except OSError:
                        self._close(key)


def timed_scrapes(agent, count, gap, bound, what):
    """`count` scrapes `gap` seconds apart; each must answer 200 within `bound` seconds."""
    bound = time_bound(bound)
    times = []
    for _ in range(count):
        try:
            status, _, took = fetch(agent.port, "GET", "/metrics", timeout=bound + 20)
        except OSError as e:
            raise AssertionError(f"{what}: a scrape failed ({e}) after {times}")
        expect(status == 200, f"{what}: a scrape answered {status}")
        times.append(round(took, 2))
        time.sleep(gap)
    expect(max(times) <= bound, f"{what}: scrapes took {times} s; each must answer within {bound} s")
    return times


def expect_quick_exit(agent, what, bound=1.0):
    bound = time_bound(bound)
    code, took = agent.signal_and_wait(signal.SIGTERM, timeout=15)
    expect(code == 0 and took <= bound, f"{what}: SIGTERM gave exit {code} after {took:.2f} s; want 0 within {bound} s")
    return took


@case
def held_connections_do_not_block_scrapes(binary):
    """18.3: 200 idle + 200 slowloris connections held open do not delay /metrics past 1 s, nor SIGTERM past 1 s."""
    with Agent(binary, checks(1, refused_port())) as agent:
        with Holder(agent.port, idle=200, slowloris=200) as holder:
            held = holder.wait_established(400)
            expect(held >= 400, f"the agent took {held} of 400 connections")
            time.sleep(1.5)  # every one of them now waits in the agent for a request
            times = timed_scrapes(agent, 10, 0.7, 1.0, "200 idle + 200 slowloris held")
            print(f"     400 held ({holder.reopened} reopened): scrapes {times} s", flush=True)
            took = expect_quick_exit(agent, "400 connections held")
            print(f"     SIGTERM with 400 held: {took:.2f} s", flush=True)


@case
def a_thousand_idle_connections_leave_scrapes_within_the_scrape_timeout(binary):
    """18.3: 1,000 idle connections held open still let /metrics answer within 10 s, and SIGTERM exit within 1 s."""
    with Agent(binary, checks(1, refused_port())) as agent:
        with Holder(agent.port, idle=1000) as holder:
            holder.wait_established(1000, timeout=10)
            time.sleep(1.0)
            times = timed_scrapes(agent, 2, 0.5, 10.0, "1,000 idle held")
            print(f"     1,000 held ({holder.connected} established, {holder.reopened} reopened): scrapes {times} s", flush=True)
            took = expect_quick_exit(agent, "1,000 connections held")
            print(f"     SIGTERM with 1,000 held: {took:.2f} s", flush=True)


@case
def sigterm_with_idle_connections_and_a_stuck_probe(binary):
    """18.11: 8 idle web connections and a probe stuck on a silent peer: SIGTERM exits 0 within 1 s."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # the kernel completes the handshakes; nobody ever reads or answers
    port = silent.getsockname()[1]
    stuck = "".join(
        f'[[check]]\nname = "stuck{i}"\nprobe = "http"\ntarget = "http://127.0.0.1:{port}/"\ninterval = "3s"\n'
        f'timeout = "3s"\nrequired = false\n\n' for i in range(4))
    try:
        with Agent(binary, NO_CONFIRM + stuck) as agent:
            with Holder(agent.port, idle=8) as holder:
                holder.wait_established(8)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    _, body, _ = fetch(agent.port, "GET", "/metrics")
                    if (metric_value(body, "connectivity_agent_probes_in_flight") or 0) >= 1:
                        break
                    time.sleep(0.1)
                else:
                    raise AssertionError("no probe went in flight against the silent peer")
                time.sleep(2.5)  # the scrape's own connection and the probes settle into waiting
                took = expect_quick_exit(agent, "8 idle connections and a stuck probe")
                print(f"     SIGTERM: {took:.2f} s", flush=True)
    finally:
        silent.close()


@case
def paths_match_exactly(binary):
    """18.12: /metricsXYZ, /metrics/foo, POST /-/reload/x and /-/healthyx are 404; the exact paths still answer."""
    with Agent(binary, checks(1, refused_port()), args=[LIFECYCLE]) as agent:
        size = agent.log_size()
        for method, path in [("GET", "/metricsXYZ"), ("GET", "/metrics/foo"), ("GET", "/metrics/"), ("POST", "/-/reload/x"),
                             ("POST", "/-/reloadx"), ("GET", "/-/healthyx"), ("GET", "/-/healthy/"), ("GET", "/index.html"),
                             ("HEAD", "/metricsXYZ")]:
            status, _, _ = fetch(agent.port, method, path)
            expect(status == 404, f"{method} {path} answered {status}, not 404")
        expect('msg="config reloaded"' not in agent.log()[size:], "a prefix path reloaded the config")
        for method, path, want in [("GET", "/metrics", 200), ("HEAD", "/metrics", 200), ("GET", "/-/healthy", 200),
                                   ("GET", "/", 200), ("GET", "/metrics?x=1", 200), ("POST", "/-/reload", 200),
                                   ("GET", "/-/reload", 405), ("POST", "/metrics", 405)]:
            status, _, _ = fetch(agent.port, method, path)
            expect(status == want, f"{method} {path} answered {status}, not {want}")


@case
def reload_endpoint_needs_the_lifecycle_flag(binary):
    """18.7: without --web.enable-lifecycle, POST /-/reload is 403 and reloads nothing; SIGHUP still reloads."""
    with Agent(binary, checks(1, refused_port())) as agent:
        size = agent.log_size()
        status, body, _ = fetch(agent.port, "POST", "/-/reload")
        expect(status == 403, f"POST /-/reload without the flag answered {status}, not 403")
        expect(b"lifecycle" in body, f"the 403 does not say why: {body[:200]!r}")
        time.sleep(0.3)
        expect("reload" not in agent.log()[size:], f"a refused request still reloaded:\n{agent.log()[size:]}")
        _, metrics, _ = fetch(agent.port, "GET", "/metrics")
        expect(metric_value(metrics, RELOADS + '{result="success"}') == 0, "the reload counter moved")
        agent.proc.send_signal(signal.SIGHUP)
        agent.wait_for_log(r'msg="config reloaded"', after=size)


@case
def concurrent_reloads_coalesce(binary):
    """18.7: 8 clients flooding POST /-/reload with a 20,000-check config share reloads; the web server keeps answering."""
    port = refused_port()
    with Agent(binary, NO_CONFIRM + checks(20000, port, interval="1h", timeout="10s"), args=[LIFECYCLE]) as agent:
        requests, failures, statuses = 0, [], []
        lock = threading.Lock()
        stop = threading.Event()

        def flood():
            nonlocal requests
            for _ in range(4):
                try:
                    status, _, _ = fetch(agent.port, "POST", "/-/reload", timeout=120)
                except OSError as e:
                    failures.append(str(e))
                    continue
                with lock:
                    requests += 1
                    statuses.append(status)

        scrape_times = []  # of /-/healthy: /metrics of 20,000 checks takes seconds to render under ASan

        def scrape():
            while not stop.is_set():
                status, _, took = fetch(agent.port, "GET", "/-/healthy", timeout=30)
                scrape_times.append((status, round(took, 2)))
                time.sleep(0.2)

        flooders = [threading.Thread(target=flood) for _ in range(8)]
        scraper = threading.Thread(target=scrape)
        scraper.start()
        started = time.monotonic()
        for t in flooders:
            t.start()
        peak = 0
        while any(t.is_alive() for t in flooders):
            peak = max(peak, agent.rss_bytes())
            time.sleep(0.1)
        stop.set()
        scraper.join()
        took = time.monotonic() - started
        status, metrics, _ = fetch(agent.port, "GET", "/metrics", timeout=60)
        expect(status == 200, f"/metrics after the flood answered {status}")
        reloads = metric_value(metrics, RELOADS + '{result="success"}')
        print(f"     {requests} requests, {reloads:.0f} reloads in {took:.1f} s, peak RSS {peak >> 20} MB, "
              f"slowest health check {max(t for _, t in scrape_times)} s", flush=True)
        expect(not failures, f"reload requests failed: {failures[:3]}")
        expect(statuses and all(s == 200 for s in statuses), f"reload answers: {sorted(set(statuses))}")
        expect(requests == 32, f"{requests} of 32 reload requests answered")
        # 8 at a time, 4 rounds: one running and one queued at most, so well under half.
        expect(reloads <= requests / 2, f"{reloads:.0f} reloads for {requests} requests: they did not coalesce")
        expect(all(s == 200 for s, _ in scrape_times), "a request during the flood failed")
        expect(max(t for _, t in scrape_times) < 2.0, f"requests waited during the flood: {scrape_times}")


@case
def reload_storm_under_scrapes(binary):
    """Held before: good and bad reloads interleaved with concurrent scrapes; every scrape 200, the last reload's result shown."""
    port = refused_port()
    good = checks(50, port, interval="1s", timeout="500ms")
    bad = good + '[[check]]\nname = "broken"\nprobe = "tcp"\ntarget = "no-port"\n'
    with Agent(binary, good, args=[LIFECYCLE]) as agent:
        stop = threading.Event()
        scrape_statuses, reload_statuses = [], []

        def scrape():
            while not stop.is_set():
                try:
                    scrape_statuses.append(fetch(agent.port, "GET", "/metrics", timeout=20)[0])
                except OSError as e:
                    scrape_statuses.append(str(e))

        def reload():
            while not stop.is_set():
                try:
                    reload_statuses.append(fetch(agent.port, "POST", "/-/reload", timeout=20)[0])
                except OSError as e:
                    reload_statuses.append(str(e))

        threads = [threading.Thread(target=scrape) for _ in range(4)] + [threading.Thread(target=reload) for _ in range(4)]
        for t in threads:
            t.start()
        for i in range(40):
            with open(agent.config_path, "w") as f:
                f.write(bad if i % 2 else good)
            agent.proc.send_signal(signal.SIGHUP) if i % 5 == 0 else None
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join()
        expect(scrape_statuses and all(s == 200 for s in scrape_statuses),
               f"scrapes during the storm: {sorted(set(map(str, scrape_statuses)))}")
        expect(reload_statuses and all(s in (200, 500) for s in reload_statuses),
               f"reloads during the storm: {sorted(set(map(str, reload_statuses)))}")
        for text, want, status in [(bad, 0, 500), (good, 1, 200), (bad, 0, 500)]:
            with open(agent.config_path, "w") as f:
                f.write(text)
            got, _, _ = fetch(agent.port, "POST", "/-/reload")
            expect(got == status, f"the last reload answered {got}, not {status}")
            _, metrics, _ = fetch(agent.port, "GET", "/metrics")
            expect(metric_value(metrics, RELOAD_OK) == want, f"{RELOAD_OK} is not {want} after the last reload")
        print(f"     {len(scrape_statuses)} scrapes, {len(reload_statuses)} reload requests", flush=True)
        expect(agent.proc.poll() is None, "the agent died in the storm")


@case
def scrapes_do_not_keep_memory_per_worker(binary):
    """18.8: 2,000 checks: RSS after 8 concurrent scrapes (three rounds) stays within 2x of RSS before any scrape."""
    if is_asan_build(binary):
        print("     skipped: an ASan build has its own allocator, so RSS says nothing about glibc's arenas; "
              "the release build's hostile_web runs it", flush=True)
        return
    port = refused_port()
    with Agent(binary, NO_CONFIRM + checks(2000, port, interval="3s", timeout="1s")) as agent:
        # Every check has run (each logs its first result, down), so every series is there; not
        # waited for by scraping, which would spend the memory this case measures.
        deadline = time.monotonic() + 30
        while agent.log().count('msg="check down"') < 2000 and time.monotonic() < deadline:
            time.sleep(0.1)
        expect(agent.log().count('msg="check down"') >= 2000, "every check reported its first result")
        before = agent.rss_bytes()
        sizes = []
        for _ in range(3):
            results = []
            threads = [threading.Thread(target=lambda: results.append(fetch(agent.port, "GET", "/metrics", timeout=60)))
                       for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            expect(len(results) == 8 and all(r[0] == 200 for r in results), "a scrape failed")
            sizes.append(len(results[0][1]))
        time.sleep(0.5)
        after = agent.rss_bytes()
        print(f"     RSS {before >> 20} MB before, {after >> 20} MB after 24 scrapes of {sizes[-1] >> 20} MB", flush=True)
        expect(after <= 2 * before, f"RSS grew from {before >> 20} MB to {after >> 20} MB with scrapes")


if __name__ == "__main__":
    run(globals())
