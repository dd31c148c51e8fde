#!/usr/bin/env python3
"""Hostile cases: config. Usage: config_cases.py AGENT_BINARY [NAME_REGEX]"""
import json
import os
import re
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Agent, CaseFailed, case, expect, free_port, run, run_command  # noqa: E402,F401

RELOAD_OK = "connectivity_agent_config_last_reload_successful"
# A config file read whole would grow past this (3 GB in 7 s from /dev/zero); capped, the agent
# stays far below it even under ASan.
RSS_BOUND = 512 * 1024 * 1024
# One check that needs no peer: a refused loopback port fails fast and keeps its series.
ONE_CHECK = '[[check]]\nname = "kept"\nprobe = "tcp"\ntarget = "127.0.0.1:{port}"\ninterval = "1s"\ntimeout = "500ms"\n'


def write(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w" if isinstance(text, str) else "wb") as f:
        f.write(text)
    return path


def validate(binary, path, timeout=20):
    """(exit code, stderr text) of `validate --config path`."""
    code, _, err, _ = run_command([binary, "validate", "--config", path], timeout=timeout, rss_bound=RSS_BOUND)
    return code, err


def validate_all(binary, paths):
    """validate() of each path, a few at once: under ASan each start costs about a second."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda path: validate(binary, path), paths))


def expect_all_rejected(binary, cases):
    """`cases`: (what, path, pattern); each must exit 2 with stderr matching the pattern."""
    failures = []
    for (what, path, pattern), (code, err) in zip(cases, validate_all(binary, [path for _, path, _ in cases])):
        if code != 2 or not re.search(pattern, err):
            failures.append(f"{what}: exit {code}, /{pattern}/ against: {err[:400]!r}")
    expect(not failures, f"{len(failures)} of {len(cases)} configs not rejected as expected:\n  " + "\n  ".join(failures))


def expect_all_valid(binary, cases):
    """`cases`: (what, path); each must validate (exit 0)."""
    failures = [f"{what}: exit {code}: {err[:400]!r}"
                for (what, _), (code, err) in zip(cases, validate_all(binary, [path for _, path in cases])) if code != 0]
    expect(not failures, f"{len(failures)} of {len(cases)} valid configs refused:\n  " + "\n  ".join(failures))


@case
def empty_config_is_an_error_unless_allowed(binary):
    """18.4: an empty file, /dev/null or a directory is not a valid config; allow_empty = true makes one so."""
    work = tempfile.mkdtemp(prefix="hostile-")
    empty = write(work, "empty.toml", "")
    comments = write(work, "comments.toml", "# nothing here\n[agent]\ninterval = \"30s\"\n")
    expect_all_rejected(binary, [
        ("an empty file", empty, "^" + re.escape(empty) + r":1:1: no \[\[check\]\] or \[\[inbound\]\] to run.*allow_empty = true"),
        ("a config with [agent] only", comments, "^" + re.escape(comments) + r":1:1: .*allow_empty = true"),
        ("/dev/null", "/dev/null", r"^/dev/null:1:1: .*allow_empty = true"),
        ("a directory", work, "^" + re.escape(work) + ": is a directory"),
    ])
    expect_all_valid(binary, [
        ("allow_empty = true", write(work, "allowed.toml", "[agent]\nallow_empty = true\n")),
        # An inbound watch alone is a config that does something.
        ("an inbound watch only", write(work, "inbound.toml", '[[inbound]]\nname = "w"\nport = 210\n'
                                                             'sources = [{ source = "a", address = "192.0.2.1" }]\n')),
    ])


@case
def reload_onto_an_empty_file_keeps_the_checks(binary):
    """18.4: a reload onto an empty config keeps the running checks and reports the reload failed."""
    port = free_port()
    with Agent(binary, ONE_CHECK.format(port=port)) as agent:
        series = 'connectivity_check_required{check="kept"'
        expect(agent.metric(series) == 1, "the check is running before the reload")
        expect(agent.metric(RELOAD_OK) == 1, "the first load succeeded")
        with open(agent.config_path, "w"):
            pass
        mark = agent.log_size()
        agent.proc.send_signal(signal.SIGHUP)
        line = agent.wait_for_log(r'msg="config (rejected|reloaded)', after=mark)
        expect("rejected" in line, f"the empty config was rejected: {line}")
        expect("allow_empty" in line, f"the rejection says how to allow an empty config: {line}")
        expect(agent.metric(RELOAD_OK) == 0, f"{RELOAD_OK} is 0 after the rejected reload")
        expect(agent.metric(series) == 1, "the check is still configured after the rejected reload")
        # ... and still probing: its run count (1 s interval) goes on rising. Bounded: 10 s.
        runs = 'connectivity_probes_total{check="kept",probe="tcp",target="127.0.0.1:'
        # A failure reason's series appears with its first run: absent counts as none yet.
        before = agent.metric(runs + f'{port}",vantage="any",result="refused"}}') or 0
        for _ in range(100):
            if (agent.metric(runs + f'{port}",vantage="any",result="refused"}}') or 0) > before:
                break
            time.sleep(0.1)
        else:
            raise CaseFailed("the check made no run in the 10 s after the rejected reload")


@case
def durations_beyond_their_bound_are_rejected(binary):
    """18.5: interval "200000d" and timeout "106752d" are rejected at file:line:col, not run."""
    work = tempfile.mkdtemp(prefix="hostile-")
    head = '[[check]]\nname = "a"\nprobe = "tcp"\ntarget = "127.0.0.1:1"\n'
    cases = [
        ("interval 200000d", head + 'interval = "200000d"\n', r":5:12: check \"a\": key \"interval\": .*7d"),
        ("timeout = interval = 106752d", head + 'interval = "106752d"\ntimeout = "106752d"\n', r":5:12: check \"a\": key \"interval\""),
        ("timeout 106752d", head + 'interval = "7d"\ntimeout = "106752d"\n', r":6:11: check \"a\": key \"timeout\": .*1d"),
        ("[agent] interval 8d", '[agent]\ninterval = "8d"\n' + head, r":2:12: \[agent\]: key \"interval\""),
        ("[agent] confirm_delay 2d", '[agent]\nconfirm_delay = "2d"\n' + head, r":2:17: \[agent\]: key \"confirm_delay\""),
    ]
    rejected = []
    for i, (what, text, pattern) in enumerate(cases):
        path = write(work, f"durations-{i}.toml", text)
        rejected.append((what, path, "^" + re.escape(path) + pattern))
    expect_all_rejected(binary, rejected)
    # The agent itself refuses it too: exit 2, with the position in its log.
    path = write(work, "durations.toml", head + 'interval = "200000d"\n')
    code, out, err, _ = run_command([binary, "--config", path, "--listen", "127.0.0.1:0"], timeout=20, rss_bound=RSS_BOUND)
    expect(code == 2, f"the agent exited {code}, not 2:\n{(out + err)[-1500:]}")
    expect(f"{path}:5:12" in out + err, f"the agent's log names file:line:col:\n{(out + err)[-1500:]}")


@case
def an_endless_config_file_is_cut_off(binary):
    """18.9: --config /dev/zero, or a profile include of it, fails at once with "larger than 16 MiB"."""
    work = tempfile.mkdtemp(prefix="hostile-")
    code, _, err, rss = run_command([binary, "validate", "--config", "/dev/zero"], timeout=20, rss_bound=RSS_BOUND)
    expect(code == 2, f"validate --config /dev/zero exited {code}, not 2 (peak RSS {rss >> 20} MiB):\n{err[-1500:]}")
    expect("/dev/zero: larger than 16 MiB" in err, f"the error says the file is too large:\n{err[-1500:]}")
    expect(rss < RSS_BOUND, f"peak RSS {rss >> 20} MiB")

    include = write(work, "site.toml", '[agent]\nallow_empty = true\n[[include]]\nprofile = "/dev/zero"\n')
    code, _, err, rss = run_command([binary, "validate", "--config", include], timeout=20, rss_bound=RSS_BOUND)
    expect(code == 2, f"an include of /dev/zero: validate exited {code}, not 2 (peak RSS {rss >> 20} MiB):\n{err[-1500:]}")
    expect(re.search(re.escape(include) + r":3:1: include \"/dev/zero\": .*larger than 16 MiB", err),
           f"the error names the include and the cap:\n{err[-1500:]}")
    expect(rss < RSS_BOUND, f"peak RSS {rss >> 20} MiB")

    code, out, err, rss = run_command([binary, "--config", "/dev/zero", "--listen", "127.0.0.1:0"], timeout=20, rss_bound=RSS_BOUND)
    expect(code == 2, f"the agent on /dev/zero exited {code}, not 2 (peak RSS {rss >> 20} MiB)")
    expect("larger than 16 MiB" in out + err, f"the agent's log says why:\n{(out + err)[-1500:]}")


@case
def listen_and_resolver_threads_are_checked_at_load(binary):
    """18.10: listen ":99999" or "garbage" and resolver_threads = 100000 fail validate at file:line:col."""
    work = tempfile.mkdtemp(prefix="hostile-")
    check = '[[check]]\nname = "a"\nprobe = "tcp"\ntarget = "127.0.0.1:1"\n'
    bad = [
        ('listen = ":99999"', r":2:10: \[agent\]: key \"listen\": bad listen address \":99999\": port must be 0 to 65535"),
        ('listen = "garbage"', r":2:10: \[agent\]: key \"listen\": bad listen address \"garbage\""),
        ('listen = "::1:9470"', r":2:10: \[agent\]: key \"listen\": bad listen address"),
        ('listen = "[nothost]:9470"', r":2:10: \[agent\]: key \"listen\": bad listen address"),
        ('listen = ":0100"', r":2:10: \[agent\]: key \"listen\": bad listen address \":0100\": port must be 0 to 65535, without leading zeros"),
        ("resolver_threads = 100000", r":2:20: \[agent\]: key \"resolver_threads\": must be an integer from 1 to 64"),
        ("max_concurrent_probes = 9223372036854775807", r":2:25: \[agent\]: key \"max_concurrent_probes\""),
    ]
    rejected = []
    for i, (line, pattern) in enumerate(bad):
        path = write(work, f"bad-{i}.toml", "[agent]\n" + line + "\n" + check)
        rejected.append((line, path, "^" + re.escape(path) + pattern))
    expect_all_rejected(binary, rejected)
    good = [(f'listen = "{listen}"', write(work, f"good-{i}.toml", f'[agent]\nlisten = "{listen}"\nresolver_threads = 64\n' + check))
            for i, listen in enumerate((":0", "[::1]:0", "localhost:9470", "agent.example.org:9470"))]
    expect_all_valid(binary, good)


@case
def a_named_pipe_without_a_writer_does_not_hang_the_load(binary):
    """18.9: a FIFO as the config, with nobody writing to it, held validate (and a reload, and
    the shutdown behind it) in open() forever; it now reads as an empty file."""
    work = tempfile.mkdtemp(prefix="hostile-")
    fifo = os.path.join(work, "agent.toml")
    os.mkfifo(fifo)
    code, _, err, _ = run_command([binary, "validate", "--config", fifo], timeout=20, rss_bound=RSS_BOUND)
    expect(code == 2, f"validate of a FIFO with no writer exits 2 (got {code}: killed at the timeout if None)")
    expect("no [[check]] or [[inbound]] to run" in err, f"as an empty file: {err.strip()[:200]}")


@case
def a_bad_listen_flag_is_a_usage_error(binary):
    """18.10: --listen ":99999" or "garbage" on the command line exits 2 naming the flag, as the
    config key does, instead of failing to start (exit 1)."""
    work = tempfile.mkdtemp(prefix="hostile-")
    path = write(work, "agent.toml", '[[check]]\nname = "a"\nprobe = "tcp"\ntarget = "127.0.0.1:1"\n')
    for listen in (":99999", "garbage"):
        code, _, err, _ = run_command([binary, "--config", path, "--listen", listen], timeout=20, rss_bound=RSS_BOUND)
        expect(code == 2, f"--listen {listen!r} exits 2 (got {code})")
        expect(err.startswith("--listen: "), f"and names the flag with why: {err.strip()[:200]}")


@case
def a_cleartext_ldap_bind_is_warned_about(binary):
    """18 (LDAP): a simple bind over plain TCP logs a warning naming the check; `check` says so too."""
    work = tempfile.mkdtemp(prefix="hostile-")
    password = write(work, "ldap-password", "secret\n")
    text = (f'[[check]]\nname = "plain-bind"\nprobe = "ldap"\ntarget = "127.0.0.1:{free_port()}"\ntimeout = "2s"\n'
            f'[check.ldap]\nbind_dn = "cn=probe,dc=example,dc=edu"\npassword_file = "{password}"\n')
    with Agent(binary, text, workdir=work) as agent:
        line = agent.wait_for_log(r"level=warn .*check=plain-bind", timeout=5)
        expect("clear" in line, f"the warning says the password goes in clear: {line}")
        expect(re.search(r"agent\.toml:8:17", line), f"the warning names file:line:col: {line}")
    code, out, err, _ = run_command([binary, "check", "--config", os.path.join(work, "agent.toml"), "--format", "json"],
                                    timeout=30, rss_bound=RSS_BOUND)
    expect(code in (0, 1), f"check exited {code}:\n{err}")
    report = json.loads(out)
    detail = report["checks"][0]["detail"]
    expect("clear" in detail, f"check's detail carries the warning: {detail}")
    # Over TLS there is nothing to warn about.
    tls = text.replace("[check.ldap]\n", "[check.ldap]\nstarttls = true\n")
    path = write(work, "tls.toml", tls)
    code, _, err, _ = run_command([binary, "validate", "--config", path], timeout=20, rss_bound=RSS_BOUND)
    expect(code == 0 and "clear" not in err, f"no warning with starttls (exit {code}):\n{err}")


def deep(levels):
    return "a = " + "[" * levels + "1" + "]" * levels + "\n"


# Malformed configs, each rejected with exit 2 and a message starting file:line:col. The pattern
# follows the path; they stand for the 81 such configs the attack found rejected correctly.
CHECK = '[[check]]\nname = "a"\nprobe = "tcp"\ntarget = "127.0.0.1:1"\n'
MALFORMED = [
    ("unclosed table header", "[agent\nlisten = 1\n", r":1:7: "),
    ("unclosed string", CHECK + 'labels = { a = "x }\n', r":5:\d+: "),
    ("duplicate key", CHECK + 'name = "b"\n', r":5:\d+: "),
    ("NUL byte", CHECK.replace('"a"', '"a\x00b"'), r":2:\d+: "),
    ("invalid UTF-8", CHECK.encode() + b'labels = { a = "\xff\xfe" }\n', r":5:\d+: "),
    ("deep nesting", deep(5000) + CHECK, r":1:\d+: "),
    ("integer too large", CHECK + "required = 99999999999999999999999\n", r":5:\d+: "),
    ("wrong type: interval", CHECK + "interval = 5\n", r':5:12: check "a": key "interval": must be a duration string'),
    ("wrong type: listen", "[agent]\nlisten = 9470\n" + CHECK, r':2:10: \[agent\]: key "listen": must be an address string, or a list of them'),
    ("wrong type: listen list", "[agent]\nlisten = [\"127.0.0.1:0\", 9470]\n" + CHECK, r':2:26: \[agent\]: key "listen": must be an address string, or a list of them'),
    ("empty listen list", "[agent]\nlisten = []\n" + CHECK, r':2:10: \[agent\]: key "listen": must name at least one address'),
    ("unknown key", CHECK + 'intervall = "5s"\n', r':5:1: check "a": unknown key "intervall"'),
    ("unknown top-level key", "[agnet]\n" + CHECK, r':1:2: unknown top-level key "agnet"'),
    ("unknown probe option", CHECK + '[check.tcp]\nfamily = "ipv4"\n', r':6:1: check "a": unknown key "family"'),
    ("unknown probe kind", CHECK.replace('"tcp"', '"icmp"'), r':3:9: check "a": key "probe": unknown probe kind "icmp"'),
    ("target without port", CHECK.replace("127.0.0.1:1", "127.0.0.1"), r':4:10: check "a": key "target": bad target'),
    ("bad URL target", CHECK.replace('"tcp"', '"http"').replace("127.0.0.1:1", "ftp://x/"), r':4:10: check "a": key "target": bad target'),
    ("negative duration", CHECK + 'interval = "-5s"\n', r':5:12: check "a": key "interval": bad duration'),
    ("negative integer", "[agent]\nmax_concurrent_probes = -1\n" + CHECK, r':2:25: \[agent\]: key "max_concurrent_probes"'),
    ("huge integer", "[agent]\nresolver_threads = 9223372036854775807\n" + CHECK, r':2:20: \[agent\]: key "resolver_threads"'),
    ("huge duration", CHECK + 'interval = "99999999999999999999d"\n', r':5:12: check "a": key "interval": bad duration'),
    ("duplicate check name", CHECK + CHECK, r':6:8: check "a": duplicate check name'),
    ("reserved label", CHECK + 'labels = { target = "x" }\n', r':5:\d+: check "a": label name "target" is reserved'),
    ("check not an array", 'check = { name = "a" }\n', r':1:9: "check" must be an array of tables'),
    ("timeout over interval", CHECK + 'interval = "1s"\ntimeout = "2s"\n', r':6:11: check "a": timeout 2s is longer than the interval 1s'),
    ("unknown profile", CHECK + '[[include]]\nprofile = "nope"\n', r':5:1: include "nope": no profile "nope"'),
]


@case
def malformed_configs_are_rejected_with_their_position(binary):
    """18 (bad configs): a table of malformed configs, each rejected with exit 2 at file:line:col."""
    work = tempfile.mkdtemp(prefix="hostile-")
    cases = []
    for i, (what, text, pattern) in enumerate(MALFORMED):
        path = write(work, f"bad-{i}.toml", text)
        cases.append((what, path, r"\A" + re.escape(path) + pattern))  # the first line of stderr
    expect_all_rejected(binary, cases)


if __name__ == "__main__":
    run(globals())
