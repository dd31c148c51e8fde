"""What every hostile case needs: a running agent on loopback, its log, its port, HTTP to it,
signals with the time they took, and a runner that counts cases and prints the closing line.

Each case is a function registered with @case; it raises AssertionError (use `expect`) to fail.
The agent under test is the binary given on the command line; under the ASan+UBSan build a
sanitizer report in the agent's output fails the case even when the assertions held.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

CASES = []

# The time bounds the defects name (a scrape within 1 s, SIGTERM within 1 s) are the release
# build's promise, and the release build's run of this suite holds them exactly. A sanitizer
# build does the same work two to three times slower and runs beside other tests, so ctest
# scales its bounds (HOSTILE_TIME_SCALE) there: what it checks is memory safety and behaviour.
TIME_SCALE = float(os.environ.get("HOSTILE_TIME_SCALE", "1"))


def time_bound(seconds):
    """A time bound of the release build, scaled for the build under test."""
    return seconds * TIME_SCALE


def case(fn):
    """Registers a hostile case; its docstring's first line is the defect it guards."""
    CASES.append(fn)
    return fn


class CaseFailed(AssertionError):
    pass


def expect(condition, what):
    if not condition:
        raise CaseFailed(what)


SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak|Thread)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer")


class Agent:
    """The agent binary run with a config written to a temp dir; `port` is read off its
    "agent started" log line. Always use as a context manager: it is killed on the way out
    and its log is checked for sanitizer reports."""

    def __init__(self, binary, config_text, args=(), workdir=None, config_name="agent.toml", wait_started=True):
        self.binary = binary
        self.dir = workdir or tempfile.mkdtemp(prefix="hostile-")
        self.config_path = os.path.join(self.dir, config_name)
        if config_text is not None:
            with open(self.config_path, "w") as f:
                f.write(config_text)
        self.log_path = os.path.join(self.dir, "agent.log")
        self.args = list(args)
        self.wait_started = wait_started
        self.proc = None
        self.port = None
        self.exit_code = None

    def __enter__(self):
        self.log_file = open(self.log_path, "wb")
        cmd = [self.binary, "--config", self.config_path, "--listen", "127.0.0.1:0"] + self.args
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if self.wait_started:
            line = self.wait_for_log(r'msg="agent started"', timeout=20)
            m = re.search(r"\bport=(\d+)", line)
            expect(m is not None, "the agent logged its port")
            self.port = int(m.group(1))
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log_file.close()
        report = self.sanitizer_report()
        if report and exc[0] is None:
            raise CaseFailed("sanitizer report in the agent's output:\n" + report)
        return False

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def sanitizer_report(self):
        text = self.log()
        m = SANITIZER_REPORT.search(text)
        return text[max(0, m.start() - 200):m.start() + 3000] if m else ""

    def wait_for_log(self, pattern, timeout=10.0, after=0):
        """Returns the first log line (at or after byte offset `after`) matching `pattern`."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            text = self.log()[after:]
            for line in text.splitlines():
                if rx.search(line):
                    return line
            if self.proc.poll() is not None:
                raise CaseFailed(f"agent exited ({self.proc.returncode}) before logging /{pattern}/:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        raise CaseFailed(f"no log line /{pattern}/ within {timeout}s:\n{self.log()[-3000:]}")

    def log_size(self):
        return os.path.getsize(self.log_path)

    def signal_and_wait(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends `sig`; returns (exit code, seconds until exit). Exit code None if still running."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - started
        return self.exit_code, time.monotonic() - started

    def rss_bytes(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def http(self, method, path, body=b"", timeout=10.0, headers=None):
        """(status, headers text, body bytes) or raises OSError/socket.timeout."""
        return http_request(("127.0.0.1", self.port), method, path, body, timeout, headers)

    def metric(self, name_and_labels, timeout=10.0):
        """The value of the first series whose line starts with `name_and_labels`, or None."""
        status, _, body = self.http("GET", "/metrics", timeout=timeout)
        expect(status == 200, f"/metrics answered {status}")
        for line in body.decode("utf-8", "replace").splitlines():
            if line.startswith(name_and_labels):
                return float(line.rsplit(" ", 1)[1])
        return None


def http_request(address, method, path, body=b"", timeout=10.0, headers=None):
    with socket.create_connection(address, timeout=timeout) as s:
        s.settimeout(timeout)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0] if lines else "")
    if not m:
        raise OSError(f"not an HTTP answer: {data[:80]!r}")
    return int(m.group(1)), "\r\n".join(lines[1:]), rest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(module_globals):
    """Runs the cases registered so far (optionally filtered by argv[2], a regex on the name);
    prints one line per case and the closing count. Exit 1 if any failed."""
    binary = sys.argv[1]
    pattern = re.compile(sys.argv[2]) if len(sys.argv) > 2 else None
    passed = failed = 0
    for fn in CASES:
        if pattern and not pattern.search(fn.__name__):
            continue
        started = time.monotonic()
        try:
            fn(binary)
            passed += 1
            print(f"ok   {fn.__name__} ({time.monotonic() - started:.1f}s)", flush=True)
        except Exception as e:  # a case that errors is a failed case, with its traceback
            failed += 1
            print(f"FAIL {fn.__name__} ({time.monotonic() - started:.1f}s): {(fn.__doc__ or '').strip().splitlines()[0] if fn.__doc__ else ''}", flush=True)
            print("     " + "".join(traceback.format_exception(e)).replace("\n", "\n     "), flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed or passed == 0 else 0)


def _rss_now(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_command(args, timeout=20.0, rss_bound=None):
    """Runs a command to its end: (exit code, stdout, stderr, peak RSS in bytes). It is killed
    (exit code None) past `timeout` seconds, or once its RSS passes `rss_bound` bytes, so a
    command that would eat the machine's memory fails the case instead."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        peak, killed, code = 0, False, None
        # Bounded: the command gets `timeout`, then 10 s more to die once killed.
        for _ in range(int((timeout + 10) / 0.01) + 1):
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                peak = max(peak, usage.ru_maxrss * 1024)
                code = None if killed else proc.returncode
                break
            peak = max(peak, _rss_now(proc.pid))
            if not killed and (time.monotonic() > deadline or (rss_bound and peak > rss_bound)):
                proc.kill()
                killed = True
            time.sleep(0.01)
        else:
            raise CaseFailed(f"{args[0]} did not end after being killed")
        out.seek(0)
        err.seek(0)
        return code, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"), peak
