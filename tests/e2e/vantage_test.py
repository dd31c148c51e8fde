#!/usr/bin/env python3
"""End to end: one check from two vantage points, with a firewall that drops only one of them.

Three network namespaces of the test's own (their names end in the test's pid):

  hub    the network between them: the ILLiad SQL Server (the TDS stand-in of tests/support on
         10.231.0.1:1433, SQL Server's port), the firewall (nft) and a real Prometheus (on the
         hub's own loopback, scraping both agents with honor_labels and the shipped rules)
  web    connectivity-agent --role illiad-web-server, listening on 10.231.1.2:9470
  staff  connectivity-agent --role staff-client, listening on 10.231.2.2:9470

each agent namespace joined to the hub by a veth pair (10.231.1.0/30 and 10.231.2.0/30). Both
agents read the same config file: one hand-written required check, illiad-sql (tds to the hub's
SQL Server), run_from both roles. An nft rule in the hub drops what staff sends to port 1433.

Asserted: every check series of each agent carries its vantage label; illiad-sql is up at vantage
illiad-web-server and down at staff-client; the shipped rule for "fails from every agent at one
vantage, passes from another" fires in Prometheus for check="illiad-sql" at the failing vantage
staff-client (its summary naming both vantages) and never for illiad-web-server; with the nft rule
deleted the alert resolves within a bound.

Prometheus runs with the shipped prometheus.yml and rules, intervals shortened (scrape and rule
evaluation 1s, every `for:` 2s) so the whole test takes well under a minute.

Usage: vantage_test.py AGENT_BINARY REPO_ROOT

Needs root (network namespaces, veth pairs, nft); run without root it prints a SKIP line and exits 0.
The test re-runs itself inside the hub namespace (--inner), as alerting_test.py does, and removes
the namespaces, its processes and its temporary directory on every way out.
"""
import atexit
import ctypes
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

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
import alerting_test as shared  # noqa: E402  (log, wait_until, spawn, http_json, query, Listener)
from tds_standin import answer_prelogin  # noqa: E402

AGENT, REPO = sys.argv[1], sys.argv[2]
INNER = sys.argv.index("--inner") if "--inner" in sys.argv else None
TAG = sys.argv[INNER + 1] if INNER else str(os.getpid())  # the namespaces' suffix: the outer pid
WORK = sys.argv[INNER + 2] if INNER else tempfile.mkdtemp(prefix=f"connectivity-vantage-{TAG}-")
# Importing alerting_test made a temporary directory of its own: its spawn() logs go to ours.
shutil.rmtree(shared.WORK, ignore_errors=True)
shared.WORK = WORK

# The topology. Every address lives only inside the test's namespaces.
PEER = ("10.231.0.1", 1433)  # the ILLiad SQL Server, on the hub's loopback
PROMETHEUS_PORT = 9090       # on the hub's 127.0.0.1
AGENT_PORT = 9470
# vantage -> (namespace, the hub's end of the veth pair, the agent's end)
VANTAGES = {
    "illiad-web-server": ("web", "10.231.1.1", "10.231.1.2"),
    "staff-client": ("staff", "10.231.2.1", "10.231.2.2"),
}
BLOCKED, OPEN = "staff-client", "illiad-web-server"
CHECK = "illiad-sql"
NFT_TABLE = "vantage_test"
# The shipped rule under test: in a rule group whose name mentions vantage.
RULE_ALERT = "ConnectivityVantageBlocked"

# Bounds (seconds). Each wait polls for its event; the sum stays under INNER_LIMIT.
LIMITS = {"listening": 10, "prometheus": 30, "results": 20, "firing": 30, "resolved": 30}
INNER_LIMIT = 150  # the whole inner run; ctest's TIMEOUT is above it and the clean-up
STARTED = time.monotonic()
failures = []


def ns_name(key):
    return f"ca-vantage-{key}-{TAG}"


def check(ok, what):
    shared.log(("PASS  " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)
    return ok


# ---- Outer: namespaces, the inner run, clean-up --------------------------------------------

def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def remove_namespaces_and_work():
    for key in ("hub", *(v[0] for v in VANTAGES.values())):
        subprocess.run(["ip", "netns", "delete", ns_name(key)], capture_output=True, timeout=10)
    shutil.rmtree(WORK, ignore_errors=True)


def remove_stale():
    """What an earlier run of this test left behind when it was killed outright (SIGKILL, as
    ctest's timeout sends): its namespaces and temporary directory, named by its pid, now gone."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    for name, pid in re.findall(r"^(ca-vantage-(?:hub|web|staff)-(\d+))\b", listing, re.M):
        if not os.path.exists(f"/proc/{pid}"):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=10)
    tmp = os.path.dirname(WORK)
    for name in os.listdir(tmp):
        found = re.fullmatch(r"connectivity-vantage-(\d+)-\w+", name)
        if found and not os.path.exists(f"/proc/{found[1]}"):
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)


def build_namespaces():
    hub = ns_name("hub")
    for key in ("hub", *(v[0] for v in VANTAGES.values())):
        ip("netns", "add", ns_name(key))
        ip("-n", ns_name(key), "link", "set", "lo", "up")
    ip("-n", hub, "addr", "add", f"{PEER[0]}/32", "dev", "lo")
    for key, hub_end, agent_end in VANTAGES.values():
        ns = ns_name(key)
        ip("-n", hub, "link", "add", f"to-{key}", "type", "veth", "peer", "name", "to-hub", "netns", ns)
        ip("-n", hub, "addr", "add", f"{hub_end}/30", "dev", f"to-{key}")
        ip("-n", ns, "addr", "add", f"{agent_end}/30", "dev", "to-hub")
        ip("-n", hub, "link", "set", f"to-{key}", "up")
        ip("-n", ns, "link", "set", "to-hub", "up")
        ip("-n", ns, "route", "add", f"{PEER[0]}/32", "via", hub_end)


def kill_group(p, grace=10):
    """Ends the inner run's process group (the inner test, its agents and Prometheus): TERM,
    then KILL after `grace` seconds."""
    if p is None or p.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            pass


def die_with_parent():
    """preexec_fn: the inner run gets SIGTERM (and cleans up) if this process dies first."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def outer():
    inner = None
    done = []

    def cleanup():
        if done:
            return
        done.append(True)
        kill_group(inner)
        remove_namespaces_and_work()

    atexit.register(cleanup)
    try:
        remove_stale()
        build_namespaces()
        inner = subprocess.Popen(["ip", "netns", "exec", ns_name("hub"), sys.executable, os.path.abspath(__file__),
                                  AGENT, REPO, "--inner", TAG, WORK], start_new_session=True, preexec_fn=die_with_parent)
        try:
            return inner.wait(timeout=INNER_LIMIT)
        except subprocess.TimeoutExpired:
            shared.log(f"FAIL  the test did not finish within {INNER_LIMIT}s")
            return 1
    finally:
        cleanup()


# ---- Inner (in the hub namespace): peer, agents, Prometheus, assertions --------------------

class PeerListener(shared.Listener):
    """alerting_test's Listener on an address of the hub rather than 127.0.0.1."""

    def __init__(self, address, port, on_accept):
        super().__init__(port, on_accept)
        self.address = address

    def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.address, self.port))
        s.listen(64)
        self.sock = s
        threading.Thread(target=self._serve, args=(s,), daemon=True).start()


def reachable(address, port):
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def agent_config():
    """One config for both agents: --role picks the vantage."""
    return (f'[agent]\ninterval = "1s"\ntimeout = "500ms"\nconfirm_delay = "100ms"\n\n'
            f'[[check]]\nname = "{CHECK}"\nprobe = "tds"\ntarget = "{PEER[0]}:{PEER[1]}"\nrequired = true\n'
            f'run_from = [{", ".join(f"{chr(34)}{v}{chr(34)}" for v in VANTAGES)}]\n'
            f'labels = {{ vendor = "atlas", system = "illiad", direction = "outbound", '
            f'doc = "ILLiad required ports: SQL Ports (1433 or 1344)" }}\n')


def vantage_rule(rules):
    """The rule under test, from the shipped rule files: (group name, rule)."""
    groups = [g for f in rules.values() for g in f["groups"] if "vantage" in g["name"].lower()]
    for group in groups:
        for rule in group["rules"]:
            if rule.get("alert") == RULE_ALERT:
                return group["name"], rule
    found = [f'{g["name"]}: {[r.get("alert") or r.get("record") for r in g["rules"]]}' for g in groups]
    raise RuntimeError(f"no alert {RULE_ALERT} in a rule group whose name mentions vantage (found: {found or 'no such group'})")


def prometheus_config():
    """The shipped prometheus.yml and rules: 1s intervals, every `for:` 2s, the two agents as
    the job's targets with honor_labels (the agents' vantage label kept as they export it)."""
    shipped = f"{REPO}/deploy/prometheus/rules"
    rules = {}
    for name in sorted(os.listdir(shipped)):
        if name.endswith(".rules.yml"):
            with open(f"{shipped}/{name}") as f:
                rules[name] = yaml.safe_load(f)
    group_name, rule = vantage_rule(rules)
    os.makedirs(f"{WORK}/rules")
    for name, content in rules.items():
        for group in content["groups"]:
            group["interval"] = "1s"
            for r in group["rules"]:
                for key in ("for", "keep_firing_for"):
                    if key in r:
                        r[key] = "2s"
        with open(f"{WORK}/rules/{name}", "w") as f:
            yaml.safe_dump(content, f)

    with open(f"{REPO}/deploy/prometheus/prometheus.yml") as f:
        config = yaml.safe_load(f)
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [f"{WORK}/rules/*.rules.yml"]
    config.pop("alerting", None)  # no Alertmanager here: Prometheus's own alert state is asserted
    job = config["scrape_configs"][0]
    assert job["job_name"] == "connectivity-agent", job["job_name"]
    labels = job["static_configs"][0].get("labels", {})
    job.update(scrape_interval="1s", scrape_timeout="1s", honor_labels=True,
               static_configs=[{"targets": [f"{agent_end}:{AGENT_PORT}" for _, _, agent_end in VANTAGES.values()],
                                "labels": labels}])
    with open(f"{WORK}/prometheus.yml", "w") as f:
        yaml.safe_dump(config, f)
    return f"{WORK}/prometheus.yml", group_name, rule


PORTS = {"prometheus": PROMETHEUS_PORT}


def promql(expr):
    """The query's result vector; [] when Prometheus is not answering yet."""
    try:
        return shared.query(PORTS, expr)[0] or []
    except (OSError, ValueError):
        return []


def alerts():
    """The rule's alerts in Prometheus's /api/v1/alerts (pending and firing)."""
    try:
        reply = shared.http_json(f"http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/alerts")
    except (OSError, ValueError):
        return []
    return [a for a in reply["data"]["alerts"] if a["labels"].get("alertname") == RULE_ALERT]


def nft_block():
    staff_end = VANTAGES[BLOCKED][2]
    rule = f"ip saddr {staff_end} ip daddr {PEER[0]} tcp dport {PEER[1]} drop"
    subprocess.run(["nft", "-f", "-"], check=True, text=True, timeout=10,
                   input=f"table inet {NFT_TABLE} {{\n chain input {{\n  type filter hook input priority 0;\n  {rule}\n }}\n}}\n")


def nft_unblock():
    subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], check=True, timeout=10)


def up_by_vantage():
    return {r["metric"].get("vantage", "(none)"): r["value"][1] for r in promql(f'connectivity_up{{check="{CHECK}"}}')}


def main():
    config = f"{WORK}/agent.toml"
    with open(config, "w") as f:
        f.write(agent_config())
    prometheus_yml, group_name, rule = prometheus_config()
    shared.log(f"rule under test: {RULE_ALERT} (group {group_name}): {' '.join(rule['expr'].split())}")

    PeerListener(PEER[0], PEER[1], answer_prelogin).start()
    # The firewall first: from its first run, staff's check meets the drop (web's never does).
    nft_block()
    agents = {}
    for vantage, (key, _, agent_end) in VANTAGES.items():
        agents[vantage] = shared.spawn(f"agent-{key}", ["ip", "netns", "exec", ns_name(key), AGENT, "--config", config,
                                                        "--role", vantage, "--listen", f"{agent_end}:{AGENT_PORT}"])
    for vantage, (_, _, agent_end) in VANTAGES.items():
        shared.wait_until(lambda: reachable(agent_end, AGENT_PORT), LIMITS["listening"], f"agent at {vantage} listening")
    prometheus = shared.spawn("prometheus", ["prometheus", f"--config.file={prometheus_yml}", f"--storage.tsdb.path={WORK}/tsdb",
                                             f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"])
    blocked_since, prometheus_started = time.time(), time.monotonic()
    shared.wait_until(lambda: len(promql('up{job="connectivity-agent"} == 1')) == 2, LIMITS["prometheus"],
                      "Prometheus scraping both agents")
    check(True, "Prometheus scrapes both agents (up == 1 for both targets)")

    # 1. The vantage label: every check series of an agent carries its vantage, and only that.
    expected = {f"{agent_end}:{AGENT_PORT}": vantage for vantage, (_, _, agent_end) in VANTAGES.items()}
    seen = {}

    def labelled():
        seen.clear()
        for r in promql('count by (instance, vantage) ({__name__=~"connectivity_.+", check!=""})'):
            seen.setdefault(r["metric"]["instance"], set()).add(r["metric"].get("vantage", "(none)"))
        return len(promql(f'connectivity_up{{check="{CHECK}"}}')) == 2 and set(seen) == set(expected)

    try:
        shared.wait_until(labelled, LIMITS["results"], f"{CHECK} results from both agents")
    except TimeoutError:
        pass
    for instance, vantage in expected.items():
        check(seen.get(instance) == {vantage}, f"every check series from {instance} carries vantage=\"{vantage}\" "
                                               f"(seen: {sorted(seen.get(instance, []))})")

    # 2. The same check, up from one vantage and down from the other.
    try:
        shared.wait_until(lambda: up_by_vantage() == {OPEN: "1", BLOCKED: "0"}, LIMITS["results"],
                          f"{CHECK} up at {OPEN} and down at {BLOCKED}")
    except TimeoutError:
        pass
    values = up_by_vantage()
    check(values.get(OPEN) == "1", f'connectivity_up{{check="{CHECK}", vantage="{OPEN}"}} is 1 (got {values.get(OPEN)})')
    check(values.get(BLOCKED) == "0", f'connectivity_up{{check="{CHECK}", vantage="{BLOCKED}"}} is 0 (got {values.get(BLOCKED)})')

    # 3. The alert fires for the blocked vantage, and at no time for the open one.
    wrong = {}  # the open vantage's alerts seen by any poll: {(state, labels): labels}

    def firing():
        found = alerts()
        wrong.update(((a["state"], tuple(sorted(a["labels"].items()))), a["labels"])
                     for a in found if a["labels"].get("vantage") == OPEN)
        return [a for a in found if a["state"] == "firing" and a["labels"].get("check") == CHECK
                and a["labels"].get("vantage") == BLOCKED]

    try:
        fired = shared.wait_until(firing, LIMITS["firing"], f"{RULE_ALERT} firing")[0]
    except TimeoutError:
        fired = None
    what = f'{RULE_ALERT}{{check="{CHECK}", vantage="{BLOCKED}"}} firing in /api/v1/alerts'
    if fired:
        check(True, f"{what} ({time.monotonic() - prometheus_started:.1f}s after Prometheus started)")
    else:
        check(False, f"{what} within {LIMITS['firing']}s (the rule's alerts: {[(a['labels'], a['state']) for a in alerts()]})")
    if fired:
        summary = fired["annotations"].get("summary", "")
        check(BLOCKED in summary and OPEN in summary, f"its summary names both vantages: {summary!r}")
    # ALERTS keeps every evaluation's pending or firing alert: none for the open vantage, ever,
    # through the next evaluation after the blocked one fired.
    evaluated = promql(f'timestamp(ALERTS{{alertname="{RULE_ALERT}", vantage="{BLOCKED}"}})')
    if evaluated:
        after = float(evaluated[0]["value"][1])
        try:
            shared.wait_until(lambda: any(float(r["value"][1]) > after for r in promql(
                f'timestamp(ALERTS{{alertname="{RULE_ALERT}", vantage="{BLOCKED}"}})')), 10, "one more evaluation")
        except TimeoutError:
            pass
    window = max(1, int(time.time() - blocked_since) + 2)
    history = promql(f'ALERTS{{alertname="{RULE_ALERT}", vantage="{OPEN}"}}[{window}s]')
    firing()
    check(not wrong and not history, f"no {RULE_ALERT} for vantage=\"{OPEN}\" while only {BLOCKED} is blocked "
                                     f"(seen: {list(wrong.values()) + [r['metric'] for r in history]})")

    # 4. The firewall rule goes: the alert resolves (leaves /api/v1/alerts) within the bound.
    t1 = time.monotonic()
    nft_unblock()
    try:
        shared.wait_until(lambda: not [a for a in alerts() if a["labels"].get("check") == CHECK], LIMITS["resolved"],
                          f"{RULE_ALERT} resolved")
        check(True, f"with the nft rule deleted, {RULE_ALERT} resolved after {time.monotonic() - t1:.1f}s "
                    f"(bound {LIMITS['resolved']}s)")
    except TimeoutError:
        check(False, f"with the nft rule deleted, {RULE_ALERT} resolved within {LIMITS['resolved']}s "
                     f"(still: {[(a['labels'], a['state']) for a in alerts()]})")
    values = up_by_vantage()
    check(values == {OPEN: "1", BLOCKED: "1"}, f"{CHECK} up from both vantages after the repair (got {values})")

    for name, p in (*((f"agent at {v}", a) for v, a in agents.items()), ("prometheus", prometheus)):
        check(p.poll() is None, f"{name} still running")


def stopped_by_signal(signum, frame):
    """Ends the run through `finally` (and atexit), saying why."""
    check(False, f"stopped by signal {signal.Signals(signum).name}")
    sys.exit(128 + signum)


def inner():
    # A TERM from the outer run (its clean-up, or its death) ends the run through `finally`.
    signal.signal(signal.SIGTERM, stopped_by_signal)
    try:
        main()
    except Exception as e:  # a setup step or a bounded wait failed
        check(False, repr(e))
    except SystemExit:
        pass  # stopped by a signal, already counted: clean up and report as below
    finally:
        shared.stop_children(show_logs=bool(failures))
        if os.getppid() != int(TAG):
            remove_namespaces_and_work()  # the outer run died (killed): its clean-up is ours
    shared.log(f"{'FAIL' if failures else 'PASS'}  vantage e2e: {len(failures)} failure(s) in {time.monotonic() - STARTED:.1f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    if INNER:
        sys.exit(inner())
    if os.geteuid() != 0:
        shutil.rmtree(WORK, ignore_errors=True)
        print("SKIP: vantage_e2e needs root (network namespaces, veth pairs, an nft rule); run it as root, as CI does")
        sys.exit(0)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, stopped_by_signal)
    missing = [tool for tool in ("ip", "nft", "prometheus") if not shutil.which(tool)]
    if missing:
        shutil.rmtree(WORK, ignore_errors=True)
        print(f"FAIL  missing {', '.join(missing)} (deploy/install-deps.sh --test installs them)")
        sys.exit(1)
    sys.exit(outer())
