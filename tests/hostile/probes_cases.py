#!/usr/bin/env python3
"""Hostile cases: probes. Usage: probes_cases.py AGENT_BINARY [NAME_REGEX]"""
import os
import signal
import socket
import socketserver
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Agent, case, expect, run, time_bound  # noqa: E402,F401

MB = 1024 * 1024


class Peer:
    """A TCP server on 127.0.0.1 in a thread; `serve(peer, conn)` plays one connection.
    `stop` tells the players to end (set on the way out); `streaming` is set by a player once
    it has sent a good deal; `first_accept` is when the first connection came, `agent_closed`
    when the agent first closed a connection the player was still sending on (seen from the
    peer's side, so the time does not include the test's own polling)."""

    def __init__(self, serve):
        self.stop = threading.Event()
        self.streaming = threading.Event()
        self.first_accept = None
        self.agent_closed = None
        self.bytes_sent = 0
        self.requests = []  # (path, {lowercase header name: value}) of each request read
        peer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                if peer.first_accept is None:
                    peer.first_accept = time.monotonic()
                self.request.settimeout(1.0)
                try:
                    serve(peer, self.request)
                except (BrokenPipeError, ConnectionResetError):
                    if peer.agent_closed is None:
                        peer.agent_closed = time.monotonic()
                except OSError:
                    pass  # the case ended (or a send timed out): either way this player is done

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        return False

    def read_request(self, conn, limit=64 * 1024):
        """Reads one request head (bounded); records its path and headers."""
        data = b""
        while b"\r\n\r\n" not in data and len(data) < limit and not self.stop.is_set():
            try:
                chunk = conn.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                break
            data += chunk
        lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else ""
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.requests.append((path, headers))
        return path, headers

    def send_until_stopped(self, conn, block, streaming_after=16 * MB, limit_seconds=30.0):
        """Sends `block` again and again until the case ends or the agent closes (bounded)."""
        give_up = time.monotonic() + limit_seconds
        while not self.stop.is_set() and time.monotonic() < give_up:
            conn.sendall(block)
            self.bytes_sent += len(block)
            if self.bytes_sent >= streaming_after:
                self.streaming.set()


# A body limit no loopback peer reaches within these cases' timeouts (1 TiB), so the timeout
# alone ends an endless body. The defect's own 1 GiB is within reach of a fast host in 3 s
# (1 GiB arrived in 2.5 s on an idle 2-core machine), which then reads body_too_large.
NO_REACHABLE_BODY_LIMIT = "max_body_bytes = 1099511627776"


def endless_body(peer, conn):
    """200 with no Content-Length, then bytes as fast as the agent takes them, forever."""
    peer.read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
    peer.send_until_stopped(conn, b"x" * 65536)


def endless_chunked_body(peer, conn):
    """A chunked body whose chunks never stop and whose last chunk never comes."""
    peer.read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    peer.send_until_stopped(conn, b"10000\r\n" + b"y" * 65536 + b"\r\n")


def endless_header(peer, conn):
    """A status line, then header lines as fast as they are taken, never the blank line."""
    peer.read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    peer.send_until_stopped(conn, b"X-Filler: " + b"a" * 1000 + b"\r\n", streaming_after=MB)


def megabyte_header_line(peer, conn):
    """One header line of 1 MB, then the blank line and a small body."""
    peer.read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"h" * MB + b"\r\nContent-Length: 2\r\n\r\nok")
    peer.stop.wait(10)


def trickling_header(peer, conn):
    """The header one byte every 100 ms: it would take minutes to finish."""
    peer.read_request(conn)
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"s" * 10000 + b"\r\n\r\n"
    for byte in head:
        if peer.stop.wait(0.1):
            return
        conn.sendall(bytes([byte]))


def lying_length(peer, conn):
    """Content-Length says 1000 bytes; 10 come, then nothing, the connection held open."""
    peer.read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
    peer.stop.wait(10)


def spread_fraction(name):
    """Where in its interval a check first runs: the agent's spread_offset (FNV-1a, then the
    splitmix64 finalizer), as a fraction of the interval."""
    mask = (1 << 64) - 1
    h = 1469598103934665603
    for byte in name.encode():
        h = ((h ^ byte) * 1099511628211) & mask
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & mask
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & mask
    h ^= h >> 31
    return (h >> 11) / float(1 << 53)


def early_name(prefix, within=0.02):
    """A check name whose first run comes in the first `within` of its interval: no waiting."""
    return next(f"{prefix}-{i}" for i in range(100000) if spread_fraction(f"{prefix}-{i}") < within)


def agent_config(checks, timeout="2s", interval="2s"):
    """An agent config with the given [[check]] blocks; no confirmation re-runs, so each
    failure is reported by the run that saw it."""
    return f'[agent]\ninterval = "{interval}"\ntimeout = "{timeout}"\nconfirm_failures = false\n\n' + "\n".join(checks)


def http_check(name, url, options="", interval=None, timeout=None):
    extra = (f'interval = "{interval}"\n' if interval else "") + (f'timeout = "{timeout}"\n' if timeout else "")
    return (f'[[check]]\nname = "{name}"\nprobe = "http"\ntarget = "{url}"\n{extra}'
            f'[check.http]\naddress_family = "ipv4"\n{options}\n')


def probes_total(agent, check, result):
    """connectivity_probes_total of `check` for `result`; 0 when absent."""
    status, _, body = agent.http("GET", "/metrics")
    expect(status == 200, f"/metrics answered {status}")
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith("connectivity_probes_total{") and f'check="{check}"' in line and f'result="{result}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# What a probe reading a body may add to the agent's RSS: its buffers are well under 1 MB each,
# the regex windows 1 MiB; the defect grew it by gigabytes. Growth, not the RSS itself: the
# sanitizer build starts at over 200 MB (shadow memory) where the release build needs 15.
RSS_GROWTH_CAP = 100 * MB


def wait_for_result(agent, check, result, limit_seconds, rss_before=None):
    """Polls /metrics until `check` has a `result` run; returns (seconds waited, RSS growth over
    `rss_before`). Fails as soon as the growth passes RSS_GROWTH_CAP (the defect, measured)
    or after the limit."""
    started = time.monotonic()
    growth = 0
    while time.monotonic() - started < limit_seconds:
        if rss_before is not None:
            growth = max(growth, agent.rss_bytes() - rss_before)
            expect(growth < RSS_GROWTH_CAP,
                   f"agent RSS grew {growth // MB} MB (cap {RSS_GROWTH_CAP // MB} MB) while a probe read a body")
        if probes_total(agent, check, result) >= 1:
            return time.monotonic() - started, growth
        time.sleep(0.1)
    raise AssertionError(f"no {result} run of {check} within {limit_seconds}s; RSS grew {growth // MB} MB")


@case
def sigterm_while_an_http_probe_reads_an_endless_body(binary):
    """18.1: SIGTERM mid-probe (fast endless body) left check loops running: a 3 s exit and a use-after-free."""
    with Peer(endless_body) as peer:
        config = agent_config([http_check(early_name("endless"), f"http://127.0.0.1:{peer.port}/",
                                          NO_REACHABLE_BODY_LIMIT)], timeout="10s", interval="10s")
        with Agent(binary, config) as agent:
            expect(peer.streaming.wait(10), "the probe started reading the endless body")
            code, took = agent.signal_and_wait(signal.SIGTERM, timeout=10)
            expect(code == 0, f"exit code {code} after SIGTERM (took {took:.1f}s):\n{agent.sanitizer_report() or agent.log()[-2000:]}")
            expect(took < time_bound(1.0), f"exit took {took:.2f}s after SIGTERM (bound {time_bound(1.0):.1f} s)")
            expect("check loops still running" not in agent.log(), "a check loop outlived the shutdown:\n" + agent.log()[-2000:])


@case
def an_endless_fast_body_ends_at_the_timeout_with_bounded_memory(binary):
    """18.2: an endless fast body with max_body_bytes = 1 GiB ran past its 3 s timeout and grew the agent by 2 GB."""
    with Peer(endless_body) as peer:
        name = early_name("endless")
        config = agent_config([http_check(name, f"http://127.0.0.1:{peer.port}/", NO_REACHABLE_BODY_LIMIT)],
                              timeout="3s", interval="5s")
        with Agent(binary, config) as agent:
            rss_before = agent.rss_bytes()
            expect(peer.streaming.wait(10), "the probe started reading the endless body")
            # The run started before the peer had sent 16 MB; the bound is the defect's own
            # (a 3 s timeout), with margin for a loaded machine and the sanitizer build.
            waited, growth = wait_for_result(agent, name, "timeout", limit_seconds=8, rss_before=rss_before)
            reported = time.monotonic() - peer.first_accept
            # When the probe let go is read off the peer, which sees the close at its next send;
            # when the test saw the result also holds the test's own polling of /metrics.
            expect(peer.agent_closed is not None, "the agent reported a timeout but never closed the connection")
            closed = peer.agent_closed - peer.first_accept
            expect(closed < 3 + time_bound(1.0),
                   f"the agent closed the connection {closed:.1f}s after it opened it (timeout 3 s)")
            print(f"     closed {closed:.2f}s and the timeout seen {reported:.2f}s after the connection; "
                  f"{peer.bytes_sent // MB} MB sent; RSS grew {growth // MB} MB", flush=True)


@case
def http_peers_that_trickle_never_stop_or_lie(binary):
    """18.2: http peers that trickle, never stop or lie end in a classified result within the timeout."""
    plays = [(early_name("chunked-endless"), endless_chunked_body, "timeout"),
             (early_name("header-endless"), endless_header, "protocol_error"),
             (early_name("header-1mb-line"), megabyte_header_line, "protocol_error"),
             (early_name("header-trickle"), trickling_header, "timeout"),
             (early_name("length-lies"), lying_length, "timeout")]
    peers = [Peer(play) for _, play, _ in plays]
    for peer in peers:
        peer.__enter__()
    try:
        checks = [http_check(name, f"http://127.0.0.1:{peer.port}/", NO_REACHABLE_BODY_LIMIT, interval="5s")
                  for (name, _, _), peer in zip(plays, peers)]
        with Agent(binary, agent_config(checks, timeout="1s", interval="5s")) as agent:
            rss_before = agent.rss_bytes()
            for (name, _, result), peer in zip(plays, peers):
                # Every first run starts at once (an early spread slot) and lasts 1 s at most.
                wait_for_result(agent, name, result, limit_seconds=8, rss_before=rss_before)
                for other in ("success", "timeout", "protocol_error", "body_too_large", "error"):
                    if other != result:
                        expect(probes_total(agent, name, other) == 0, f"{name}: a {other} run besides {result}")
    finally:
        for peer in peers:
            peer.__exit__(None, None, None)


def redirecting_site(target_of):
    """Answers /cross and /same with a 302 to target_of(path), anything else with 200 "ok"."""
    def serve(peer, conn):
        path, _ = peer.read_request(conn)
        location = target_of(path)
        if location:
            conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    return serve


def wait_for_request(peer, path, limit_seconds=8.0):
    give_up = time.monotonic() + limit_seconds
    while time.monotonic() < give_up:
        for seen_path, headers in list(peer.requests):
            if seen_path == path:
                return headers
        time.sleep(0.05)
    raise AssertionError(f"no request for {path} within {limit_seconds}s")


SECRET_HEADERS = 'headers = { Authorization = "Bearer hostile-token", Cookie = "session=hostile", X-Trace = "t1" }'


@case
def credentials_in_headers_stay_with_their_origin(binary):
    """18.6: Authorization and Cookie from `headers` were sent to another host after a redirect."""
    with Peer(redirecting_site(lambda path: None)) as other:
        ports = {}
        with Peer(redirecting_site(lambda path: {"/cross": f"http://127.0.0.1:{ports['other']}/landing",
                                                 "/same": "/here"}.get(path))) as origin:
            ports["other"] = other.port
            checks = [http_check("cross-origin", f"http://127.0.0.1:{origin.port}/cross", SECRET_HEADERS),
                      http_check("same-origin", f"http://127.0.0.1:{origin.port}/same", SECRET_HEADERS)]
            with Agent(binary, agent_config(checks)):
                at_other = wait_for_request(other, "/landing")
                at_origin = wait_for_request(origin, "/here")
    expect("authorization" not in at_other, f"Authorization went to another origin: {at_other}")
    expect("cookie" not in at_other, f"Cookie went to another origin: {at_other}")
    expect(at_other.get("x-trace") == "t1", f"a header that is not sensitive still follows the redirect: {at_other}")
    expect(at_origin.get("authorization") == "Bearer hostile-token", f"Authorization kept on the same origin: {at_origin}")
    expect(at_origin.get("cookie") == "session=hostile", f"Cookie kept on the same origin: {at_origin}")


@case
def headers_marked_sensitive_stay_with_their_origin(binary):
    """18.6: a header the config marks sensitive (sensitive_headers) stays with the configured origin."""
    with Peer(redirecting_site(lambda path: None)) as other:
        with Peer(redirecting_site(lambda path: f"http://127.0.0.1:{other.port}/landing" if path == "/cross" else None)) as origin:
            options = 'headers = { X-Api-Key = "k-123", X-Trace = "t1" }\nsensitive_headers = ["x-api-key"]'
            with Agent(binary, agent_config([http_check("marked", f"http://127.0.0.1:{origin.port}/cross", options)])):
                at_other = wait_for_request(other, "/landing")
                at_origin = wait_for_request(origin, "/cross")
    expect("x-api-key" not in at_other, f"X-Api-Key went to another origin: {at_other}")
    expect(at_other.get("x-trace") == "t1", f"X-Trace still follows the redirect: {at_other}")
    expect(at_origin.get("x-api-key") == "k-123", f"X-Api-Key sent to the configured origin: {at_origin}")


if __name__ == "__main__":
    run(globals())
