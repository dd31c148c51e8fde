#!/usr/bin/env python3
"""Hostile cases: peers that stay silent, trickle, never stop, send noise or lie, for every
protocol the agent speaks, plus a TLS peer that presents an absurd certificate chain. These
held when the agent was first attacked; they stay here so they keep holding.

Every check must end in a classified failure within its timeout (never `success`, never the
catch-all `error` that marks a probe bug), the agent must keep serving, its memory must stay
bounded, and SIGTERM with every one of them mid-probe must end it cleanly.

Usage: peers_cases.py AGENT_BINARY [NAME_REGEX]"""
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Agent, case, expect, run, time_bound  # noqa: E402

TIMEOUT_S = 2.0
# The run's total, as the agent measures it, may pass the deadline by scheduling noise only.
DEADLINE_SLACK_S = 0.5
HOLD_S = 30.0  # no peer connection lives longer than this, whatever the agent does


def lie_prefix(protocol):
    """A first message shaped like the protocol's that promises more than will ever come."""
    if protocol in ("tls", "ldap-tls"):
        # A TLS handshake record announcing 16 KiB of ServerHello/Certificate that never arrive.
        return b"\x16\x03\x03\x40\x00\x02\x00\x3f\xfc\x03\x03"
    if protocol == "tds":
        # A TDS reply packet (type 4, status EOM) declaring 0xFFFF bytes.
        return b"\x04\x01\xff\xff\x00\x00\x01\x00"
    # BER (Z39.50, ISO ILL, LDAP): a SEQUENCE-like tag with a four-byte length near 1 GiB.
    return b"\x30\x84\x3f\xff\xff\xff\x02\x01"


def serve_each_connection(listener, stop, serve):
    """Accepts on `listener` (which has a short timeout) until `stop` is set or it is closed,
    serving each connection on a thread of its own."""
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


class HostilePeer:
    """One listener on 127.0.0.1 per behaviour; each connection is served by its own thread,
    bounded by HOLD_S and by the peer's stop event."""

    BEHAVIOURS = ("silent", "trickle", "endless", "noise", "lie")

    def __init__(self, protocol, behaviour):
        self.protocol = protocol
        self.behaviour = behaviour
        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=serve_each_connection, args=(self.listener, self.stop, self.serve), daemon=True).start()

    def serve(self, conn):
        rng = random.Random(self.port)
        ends = time.monotonic() + HOLD_S
        conn.settimeout(0.1)
        try:
            if self.behaviour == "lie":
                conn.sendall(lie_prefix(self.protocol))
            if self.behaviour == "noise":
                conn.sendall(bytes(rng.getrandbits(8) for _ in range(4096)))
                return
            block = bytes(rng.getrandbits(8) for _ in range(65536))
            while not self.stop.is_set() and time.monotonic() < ends:
                if self.behaviour == "endless":
                    conn.settimeout(1.0)
                    conn.sendall(block)
                    continue
                if self.behaviour == "trickle":
                    conn.sendall(bytes([rng.getrandbits(8)]))
                try:  # silent, trickle, lie: read and drop whatever the agent sends
                    if conn.recv(65536) == b"":
                        return
                except socket.timeout:
                    pass
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.listener.close()


class HostileDnsServer:
    """A UDP DNS server on 127.0.0.1 that answers every query with `behaviour`: silent, noise
    (random datagrams), wrong_id (a well-formed answer to another query), or truncated (TC set,
    sending the agent to TCP, where a listener sends noise without end)."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.stop = threading.Event()
        self.udp, self.tcp = self.bind_pair(with_tcp=behaviour == "truncated")
        self.udp.settimeout(0.2)
        self.port = self.udp.getsockname()[1]
        if self.tcp is not None:
            self.tcp.listen(8)
            self.tcp.settimeout(0.2)
            threading.Thread(target=serve_each_connection, args=(self.tcp, self.stop, self.endless_tcp), daemon=True).start()
        threading.Thread(target=self.udp_loop, daemon=True).start()

    @staticmethod
    def bind_pair(with_tcp, tries=20):
        """A free UDP port and, for `truncated`, the TCP twin of it (the agent asks again over TCP
        after TC). The kernel picks a free UDP port, but the same TCP port can be busy (another
        connection's ephemeral port), so a few tries, each with a new UDP port."""
        for _ in range(tries):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            if not with_tcp:
                return udp, None
            tcp = socket.socket()
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("127.0.0.1", udp.getsockname()[1]))
                return udp, tcp
            except OSError:
                tcp.close()
                udp.close()
        raise RuntimeError(f"no loopback port free for both UDP and TCP in {tries} tries")

    def udp_loop(self):
        rng = random.Random(self.port)
        while not self.stop.is_set():
            try:
                query, peer = self.udp.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if self.behaviour == "silent" or len(query) < 12:
                continue
            if self.behaviour == "noise":
                for _ in range(8):
                    self.udp.sendto(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 512))), peer)
                continue
            query_id = struct.unpack("!H", query[:2])[0]
            if self.behaviour == "wrong_id":
                query_id ^= 0x5A5A
            flags = 0x8380 if self.behaviour == "truncated" else 0x8180  # QR, RD, RA (+TC)
            self.udp.sendto(struct.pack("!HHHHHH", query_id, flags, 1, 0, 0, 0) + query[12:], peer)

    def endless_tcp(self, conn):
        # A length prefix promising 65535 bytes, then noise that never completes a message.
        ends = time.monotonic() + HOLD_S
        conn.settimeout(1.0)
        try:
            conn.sendall(b"\xff\xff")
            while not self.stop.is_set() and time.monotonic() < ends:
                conn.sendall(b"\x00" * 100)
                time.sleep(0.05)  # a trickle: pacing the peer, not synchronising the test
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.udp.close()
        if self.tcp:
            self.tcp.close()


# What the agent's probe is told, per protocol: its kind and probe sub-table.
PROTOCOLS = {
    "tls": ("tls", ""),
    "tds": ("tds", ""),
    "z3950": ("z3950", '[check.z3950]\ndatabase = "Default"\nquery = "@attr 1=4 x"\n'),
    "isoill": ("isoill", "[check.isoill]\nstatus_query = true\n"),
    "ldap": ("ldap", ""),
    "ldap-tls": ("ldap", "[check.ldap]\ntls = true\n"),
    "http": ("http", ""),
}


def check_block(name, kind, target, options):
    return (f'[[check]]\nname = "{name}"\nprobe = "{kind}"\ntarget = "{target}"\n'
            f'timeout = "{int(TIMEOUT_S * 1000)}ms"\n{options}\n')


def parse_series(text, metric):
    """{check: (labels text, value)} for every series of `metric`."""
    out = {}
    for line in text.splitlines():
        if not line.startswith(metric + "{"):
            continue
        m = re.search(r'check="([^"]*)"', line)
        if m:
            labels, value = line[len(metric):].rsplit(" ", 1)
            out.setdefault(m.group(1), []).append((labels, float(value)))
    return out


def results_by_check(agent):
    status, _, body = agent.http("GET", "/metrics", timeout=10)
    expect(status == 200, f"/metrics answered {status}")
    text = body.decode("utf-8", "replace")
    results = {}
    for check, series in parse_series(text, "connectivity_last_result_info").items():
        for labels, value in series:
            if value == 1:
                results[check] = re.search(r'result="([^"]*)"', labels).group(1)
    latency = {}
    sums = parse_series(text, "connectivity_probe_latency_seconds_sum")
    counts = parse_series(text, "connectivity_probe_latency_seconds_count")
    for check, series in sums.items():
        count = counts.get(check, [("", 0)])[0][1]
        if count:
            latency[check] = (series[0][1], count)
    return results, latency


def wait_for_every_result(agent, names, timeout):
    deadline = time.monotonic() + timeout
    results, latency = {}, {}
    while time.monotonic() < deadline:
        results, latency = results_by_check(agent)
        if all(n in results for n in names):
            return results, latency
        time.sleep(0.2)  # polling /metrics: the agent has no event to wait on from outside
    missing = sorted(set(names) - set(results))
    raise AssertionError(f"no result within {timeout}s for {missing}")


def config_with(checks):
    return ('[agent]\ninterval = "5s"\nconfirm_failures = false\n\n' + "".join(checks))


@case
def every_protocol_against_every_bad_peer(binary):
    """18 (held): silent, trickling, endless, noisy and lying peers on every protocol end as a
    classified failure within the timeout; the agent keeps serving with bounded memory; SIGTERM
    with all of them mid-probe exits 0 within 1 s."""
    peers, checks, names = [], [], []
    try:
        for protocol, (kind, options) in PROTOCOLS.items():
            for behaviour in HostilePeer.BEHAVIOURS:
                peer = HostilePeer(protocol, behaviour)
                peers.append(peer)
                name = f"{protocol}-{behaviour}"
                target = f"http://127.0.0.1:{peer.port}/" if kind == "http" else f"127.0.0.1:{peer.port}"
                checks.append(check_block(name, kind, target, options))
                names.append(name)
        dns = []
        for behaviour in ("silent", "noise", "wrong_id", "truncated"):
            server = HostileDnsServer(behaviour)
            dns.append(server)
            name = f"dns-{behaviour}"
            checks.append(check_block(name, "dns", "hostile.example.test",
                                      f'[check.dns]\nserver = "127.0.0.1:{server.port}"\nrecord_types = ["A"]\n'))
            names.append(name)
        with Agent(binary, config_with(checks)) as agent:
            results, latency = wait_for_every_result(agent, names, timeout=20)
            for name in names:
                expect(results[name] not in ("success", "error"),
                       f"{name}: a classified failure, not {results[name]!r}")
                total, count = latency[name]
                expect(total / count <= TIMEOUT_S + DEADLINE_SLACK_S,
                       f"{name}: runs end by their deadline (mean {total / count:.2f}s over {count})")
            print("     results: " + ", ".join(f"{n}={results[n]}" for n in names), flush=True)
            # Keep them at it for another round, then measure memory and stop mid-probe.
            rss_before = agent.rss_bytes()
            runs_before = {name: latency[name][1] for name in names}
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # until every check has run again against its peer
                _, latency = results_by_check(agent)
                if all(latency.get(name, (0, 0))[1] > runs_before[name] for name in names):
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("not every check ran a second time within 20 s")
            rss_after = agent.rss_bytes()
            expect(rss_after - rss_before < 64 * 2**20,
                   f"memory stays bounded ({rss_before >> 20} -> {rss_after >> 20} MiB)")
            expect(agent.http("GET", "/-/healthy", timeout=5)[0] == 200, "still serving")
            code, took = agent.signal_and_wait(signal.SIGTERM, timeout=10)
            expect(code == 0, f"SIGTERM mid-probe exits 0 (got {code})")
            expect(took < time_bound(1.0), f"SIGTERM mid-probe exits within {time_bound(1.0):.1f} s (took {took:.2f}s)")
            expect("still running at shutdown" not in agent.log(), "no check loop outlived shutdown")
    finally:
        for p in peers + locals().get("dns", []):
            p.close()


def make_long_chain(workdir, length):
    """A chain of `length` certificates, each signing the next, via the openssl CLI; returns
    (cert file with the whole chain leaf first, key file of the leaf)."""
    import subprocess

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=workdir, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca0.key", "-out", "ca0.pem", "-subj", "/CN=hostile root", "-days", "2")
    for i in range(1, length):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"ca{i}.key", "-out", f"ca{i}.csr", "-subj", f"/CN=hostile {i}/O={'o' * 64}/OU={'u' * 64}/L={'l' * 64}")
        with open(os.path.join(workdir, "ext.cnf"), "w") as f:
            f.write("basicConstraints=critical,CA:TRUE\nsubjectAltName=DNS:localhost\n")
        openssl("x509", "-req", "-in", f"ca{i}.csr", "-CA", f"ca{i - 1}.pem", "-CAkey", f"ca{i - 1}.key",
                "-CAcreateserial", "-out", f"ca{i}.pem", "-days", "2", "-extfile", "ext.cnf")
    with open(os.path.join(workdir, "chain.pem"), "w") as out:
        for i in reversed(range(length)):
            with open(os.path.join(workdir, f"ca{i}.pem")) as f:
                out.write(f.read())
    return os.path.join(workdir, "chain.pem"), os.path.join(workdir, f"ca{length - 1}.key")


@case
def tls_peer_with_an_oversized_chain(binary):
    """18 (held): a TLS server presenting a 60-certificate chain of long names is reported (at
    most 8 certificates exported, label values capped) without a crash, and the check fails
    verification rather than passing."""
    import subprocess
    import tempfile
    workdir = tempfile.mkdtemp(prefix="hostile-chain-")
    chain, key = make_long_chain(workdir, 60)
    port = None
    server = None
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(["openssl", "s_server", "-quiet", "-accept", f"127.0.0.1:{port}",
                                   "-cert", chain, "-key", key, "-naccept", "50"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until s_server listens (bounded)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        config = config_with([check_block("long-chain", "tls", f"localhost:{port}",
                                          '[check.tls]\nserver_name = "localhost"\n')])
        with Agent(binary, config) as agent:
            results, _ = wait_for_every_result(agent, ["long-chain"], timeout=15)
            expect(results["long-chain"] == "cert_invalid", f"the chain does not verify: {results['long-chain']}")
            status, _, body = agent.http("GET", "/metrics")
            series = [line for line in body.decode().splitlines()
                      if line.startswith("connectivity_tls_cert_not_after_timestamp_seconds{")]
            expect(1 <= len(series) <= 8, f"at most 8 certificates exported (got {len(series)})")
            expect(all(len(v) <= 256 for line in series for v in re.findall(r'="([^"]*)"', line)),
                   "label values at most 256 characters")
    finally:
        if server:
            server.kill()
            server.wait()


if __name__ == "__main__":
    run(globals())
