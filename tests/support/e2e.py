"""What the end-to-end scripts share: a log line with the time, checks recorded as they are
made, a bounded wait, and files and child processes kept in one work folder."""
import os
import subprocess
import tempfile
import time


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait_until(predicate, limit, what, step=0.1):
    """The predicate's first true value, polled every `step` for at most `limit` seconds;
    TimeoutError naming `what` otherwise."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError(f"{what}: not within {limit}s")


class Run:
    """One script's run: its work folder, the children it started and the checks that failed."""

    def __init__(self, prefix):
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.children = []  # (name, Popen), their output in WORK/name.log
        self.failures = []

    def check(self, ok, what):
        log(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            self.failures.append(what)

    def write(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def spawn(self, name, argv):
        out = open(os.path.join(self.work, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        self.children.append((name, p))
        return p
