#!/usr/bin/env python3
"""End to end: how long a page and its resolution take with every timer as shipped.

A real connectivity-agent, Prometheus and Alertmanager on loopback, with the shipped
prometheus.yml (job connectivity-agent, honor_labels, the agent's target in the shipped file_sd
format), the shipped rules copied unchanged, and the shipped alertmanager.yml with its receivers
pointed at a webhook inside the test. No interval is shortened anywhere: the agent's check
interval, timeout and confirmation re-runs are its compiled-in defaults, the scrape is 15s, each
rule group keeps its own interval and Alertmanager its group_wait, group_interval and
repeat_interval. Two required tcp checks, timing-a and timing-b, share one Alertmanager group
(same alertname, vendor and system). An nft rule dropping a check's port is the outage.

Asserted (60s is the budget the rules file and the README promise):
1. timing-a's port dropped: its page (a firing notification) reaches the webhook within 60s.
2. The repair comes late in the group's interval: 1s before a tick of the critical route's
   group_interval (the first tick at least 45s after the page). Its resolved notification
   reaches the webhook within 60s of the repair. A long group_interval fails here: the resolved
   alert misses the tick just after the repair and waits a whole interval for the next one.
3. 100s after that resolved notification both ports are dropped at once. Prometheus re-sends a
   resolved alert for 15 minutes, which can keep the Alertmanager group alive, and an alert
   joining a live group waits for its next group_interval tick rather than group_wait; each
   check must still page within 60s, and both resolved notifications arrive within 60s of the
   repair. (Whether the group is still alive then depends on phases: Alertmanager drops a
   group's resolved alerts once it has notified them, and an empty group at its next 30s
   maintenance, until Prometheus's next re-send, a minute apart, brings the alert back. The
   figures say which happened: time in Alertmanager before the page is group_wait for a new
   group, up to group_interval for a live one.)

Every time measured (fault to the alert active in Alertmanager's API, fault to page, repair to
resolved in Alertmanager, repair to resolved page) is printed, and a "figures: {...}" JSON line
at the end. Because every timer is the shipped one the test takes about 5 minutes (6 when a
notification waits for a 1m group_interval); every wait is bounded, so it ends within about 12
even when nothing arrives.

Usage: alert_timing_test.py AGENT_BINARY REPO_ROOT

Needs root (a network namespace of its own, where the nft table lives); without root it prints
a SKIP line and exits 0. As root it re-runs itself in that namespace (--inside-netns), as
alerting_test.py does, and removes the namespace, its processes and its temporary directory.
"""
import ctypes
import glob
import http.server
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import yaml

if len(sys.argv) < 3:
    sys.exit("usage: alert_timing_test.py AGENT_BINARY REPO_ROOT")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
import alerting_test as shared  # noqa: E402  (log, spawn, listening, http_json, query, Listener, Webhook, page_for)

AGENT, REPO = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
INSIDE = "--inside-netns" in sys.argv
# Importing alerting_test made a temporary directory of its own. Only the run inside the
# namespace starts processes, so only it gets one (ours); shared.spawn() logs there.
shutil.rmtree(shared.WORK, ignore_errors=True)
WORK = shared.WORK = tempfile.mkdtemp(prefix="connectivity-alert-timing-") if INSIDE else None

ALERT = "ConnectivityRequiredCheckDown"
CHECKS = ("timing-a", "timing-b")
# Same alertname, vendor and system: one Alertmanager group (group_by in alertmanager.yml).
LABELS = {"vendor": "atlas", "system": "timing-test", "direction": "inbound",
          "doc": "alert timing test: a required port behind a firewall that drops"}
NFT_TABLE = "alert_timing_test"

BUDGET = 60           # seconds from fault or repair to the notification: what is asserted
MEASURE = BUDGET + 30  # how long each wait goes on, so that a miss is reported with its size
STEP = 0.2            # polling step: the figures are this precise
FIRST_TICK_AFTER = 45  # the repair goes in 1s before the first group tick this long after the page
PAUSE = 100           # between the resolved notification and the repeat outage
# The inner run's worst case is about 11.5 minutes (every wait running out); the outer run
# stops it after this long.
INNER_LIMIT = 750

failures = shared.failures
check = shared.check
log = shared.log
figures = {}


# ---- Outer run: the namespace --------------------------------------------------------------

def die_with_parent():
    """preexec_fn: the inner run gets SIGTERM (and cleans up) if the outer run dies first."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def in_own_namespace():
    """Re-runs this script inside a network namespace of its own; returns its exit code. The
    inner run gets a session of its own so that, should it outlive INNER_LIMIT, it and the
    agent, Prometheus and Alertmanager it started go together with one killpg."""
    ns = f"ca-alert-timing-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    inner = None
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=10)
        inner = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), AGENT, REPO,
                                  "--inside-netns"], start_new_session=True, preexec_fn=die_with_parent)
        return inner.wait(timeout=INNER_LIMIT)
    except subprocess.TimeoutExpired:
        log(f"FAIL  the test did not finish within {INNER_LIMIT}s")
        return 1
    finally:
        if inner is not None and inner.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(inner.pid, sig)
                    inner.wait(timeout=10)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    pass
        subprocess.run(["ip", "netns", "delete", ns], timeout=10)


# ---- Inner run: configs --------------------------------------------------------------------

def seconds(duration):
    """A Prometheus/Alertmanager duration ("5s", "1m", "1h30m") in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(int(n) * units[u] for n, u in parts)


def critical_timers(config):
    """(group_wait, group_interval) of the route a critical alert takes: the first child route
    matching severity="critical" (as Alertmanager picks it, none of them has `continue`), else
    the root; a route without its own inherits its parent's, and Alertmanager's defaults are 30s
    and 5m."""
    root = config["route"]
    timers = (root.get("group_wait", "30s"), root.get("group_interval", "5m"))
    for route in root.get("routes", []):
        matchers = [m.replace(" ", "") for m in route.get("matchers", [])]
        if 'severity="critical"' in matchers or route.get("match", {}).get("severity") == "critical":
            timers = (route.get("group_wait", timers[0]), route.get("group_interval", timers[1]))
            break
    return tuple(seconds(t) for t in timers)


def alertmanager_config(ports):
    """The shipped alertmanager.yml with only its receivers changed: every one to the webhook
    (no mail: the smtp globals go, resolve_timeout stays)."""
    with open(f"{REPO}/deploy/alertmanager/alertmanager.yml") as f:
        config = yaml.safe_load(f)
    config["global"] = {k: v for k, v in config.get("global", {}).items() if not k.startswith("smtp_")}
    for receiver in config["receivers"]:
        receiver.pop("email_configs", None)
        receiver["webhook_configs"] = [{"url": f"http://127.0.0.1:{ports['webhook']}/{receiver['name']}",
                                        "send_resolved": True}]
    path = f"{WORK}/alertmanager.yml"
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path, critical_timers(config)


def prometheus_config(ports):
    """The shipped prometheus.yml with only its targets and rule_files changed; the rules are
    copied byte for byte, so each group keeps its own interval."""
    with open(f"{REPO}/deploy/prometheus/prometheus.yml") as f:
        config = yaml.safe_load(f)
    os.makedirs(f"{WORK}/rules")
    for path in glob.glob(f"{REPO}/deploy/prometheus/rules/*.rules.yml"):
        shutil.copy(path, f"{WORK}/rules/")
    config["rule_files"] = [f"{WORK}/rules/*.rules.yml"]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{ports['alertmanager']}"]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "connectivity-agent")
    assert job.get("honor_labels") is True, "the shipped job lost honor_labels"
    # The shipped file_sd format: its first group (labels and all), with the test's agent as target.
    with open(f"{REPO}/deploy/prometheus/file_sd/connectivity-agent.yml") as f:
        group = dict(yaml.safe_load(f)[0], targets=[f"127.0.0.1:{ports['agent']}"])
    with open(f"{WORK}/targets.yml", "w") as f:
        yaml.safe_dump([group], f)
    job.pop("static_configs", None)
    job["file_sd_configs"] = [{"files": [f"{WORK}/targets.yml"]}]
    path = f"{WORK}/prometheus.yml"
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


def agent_config(ports):
    """Two required tcp checks and nothing else: no interval, timeout or confirm_* (the
    compiled-in defaults are what is measured)."""
    labels = ", ".join(f'{k} = "{v}"' for k, v in LABELS.items())
    text = f'[agent]\nlisten = "127.0.0.1:{ports["agent"]}"\n\n'
    for name in CHECKS:
        text += (f'[[check]]\nname = "{name}"\nprobe = "tcp"\ntarget = "127.0.0.1:{ports[name]}"\n'
                 f'labels = {{ {labels} }}\n\n')
    path = f"{WORK}/agent.toml"
    with open(path, "w") as f:
        f.write(text)
    return path


# ---- Inner run: faults and observations ----------------------------------------------------

def drop(ports, names):
    """The outage: a firewall that drops the checks' SYNs (a timeout, the slow case, not a
    refusal). The table lives in the test's namespace only."""
    dports = ", ".join(str(ports[n]) for n in names)
    subprocess.run(["nft", "-f", "-"], check=True, text=True, timeout=10,
                   input=f"table inet {NFT_TABLE} {{\n chain input {{\n  type filter hook input priority 0;\n"
                         f"  tcp dport {{ {dports} }} drop\n }}\n}}\n")


def repair():
    subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], check=True, timeout=10)


def active_in_alertmanager(ports, name):
    """Whether Alertmanager's API has the check's alert active (resolved ones it leaves out)."""
    try:
        alerts = shared.http_json(f"http://127.0.0.1:{ports['alertmanager']}/api/v2/alerts")
    except (OSError, ValueError):
        return False
    return any(a["labels"].get("alertname") == ALERT and a["labels"].get("check") == name
               and a["status"]["state"] == "active" for a in alerts)


def watch(t0, events, limit=MEASURE):
    """Polls each event (name -> function returning the monotonic time it happened, or None)
    until all have happened or `limit` seconds after t0 have passed. Returns name -> seconds
    after t0 (None: not within the limit)."""
    seen = {}
    while True:
        for name, happened in events.items():
            if name not in seen:
                at = happened()
                if at:
                    seen[name] = at
        if len(seen) == len(events) or time.monotonic() >= t0 + limit:
            break
        time.sleep(STEP)
    return {name: round(seen[name] - t0, 1) if name in seen else None for name in events}


def outcomes(ports, t0, names, firing):
    """What to watch for after a fault (`firing`) or a repair: per check, the alert turning
    active (or not) in Alertmanager's API, and the firing (or resolved) notification, timed by
    the webhook's own receipt, not the poll."""
    status, suffix = ("firing", "") if firing else ("resolved", "_resolved")

    def api(name):
        return lambda: time.monotonic() if active_in_alertmanager(ports, name) == firing else None

    def page(name):
        return lambda: shared.page_for(name, status, t0)

    watched = {}
    for name in names:
        watched[f"{name} alertmanager{suffix}_s"] = api(name)
        watched[f"{name} {'page' if firing else 'resolved_page'}_s"] = page(name)
    return watched


def fault_figures(seen, name):
    """The fault's figures for one check. Alertmanager to page tells which timer the page
    waited for: group_wait (it opened a new group) or a group_interval tick (it joined a live
    one)."""
    at_api, paged = seen[f"{name} alertmanager_s"], seen[f"{name} page_s"]
    if at_api is not None and paged is not None:
        # An alert that joins a group just before its tick pages before the next API poll
        # sees it; it was in Alertmanager by the time of its page.
        at_api = min(at_api, paged)
    between = round(paged - at_api, 1) if at_api is not None and paged is not None else None
    log(f"{name}: active in Alertmanager after {at_api}s, paged after {paged}s ({between}s in Alertmanager)")
    return {"fault_to_alertmanager_s": at_api, "fault_to_page_s": paged, "alertmanager_to_page_s": between}


def within(measured, what):
    """Asserts a measured figure against the budget and says it either way."""
    value = "not within %ds" % MEASURE if measured is None else f"{measured}s"
    check(measured is not None and measured <= BUDGET, f"{what}: {value} (budget {BUDGET}s)")


def sleep_until(moment):
    time.sleep(max(0.0, moment - time.monotonic()))


# ---- Inner run: the test -------------------------------------------------------------------

def main():
    ports = {n: shared.free_port() for n in ("agent", "prometheus", "alertmanager", "webhook", *CHECKS)}
    for name in CHECKS:
        shared.Listener(ports[name]).start()
    webhook = http.server.ThreadingHTTPServer(("127.0.0.1", ports["webhook"]), shared.Webhook)
    threading.Thread(target=webhook.serve_forever, daemon=True).start()

    am_config, (group_wait, group_interval) = alertmanager_config(ports)
    figures.update(group_wait_s=group_wait, group_interval_s=group_interval)
    log(f"the critical route in the shipped alertmanager.yml: group_wait {group_wait}s, group_interval {group_interval}s")
    shared.spawn("agent", [AGENT, "--config", agent_config(ports)])
    # No cluster: a lone Alertmanager would otherwise wait for gossip peers before notifying.
    shared.spawn("alertmanager", ["prometheus-alertmanager", f"--config.file={am_config}", f"--storage.path={WORK}/am",
                                  f"--web.listen-address=127.0.0.1:{ports['alertmanager']}", "--cluster.listen-address="])
    shared.spawn("prometheus", ["prometheus", f"--config.file={prometheus_config(ports)}", f"--storage.tsdb.path={WORK}/tsdb",
                                f"--web.listen-address=127.0.0.1:{ports['prometheus']}"])
    shared.wait_until(lambda: shared.listening(ports["agent"]), 10, "agent listening")
    shared.wait_until(lambda: shared.listening(ports["alertmanager"]) and shared.listening(ports["prometheus"]), 30,
                      "Prometheus and Alertmanager listening")
    # Both checks up in Prometheus: the outage starts from a healthy, scraped state, and the
    # rules have seen the checks up (no alert left over from the start).
    up = 'connectivity_up{check=~"timing-a|timing-b"} == 1'

    def both_up():
        try:
            return len(shared.query(ports, up)[0] or []) == 2
        except OSError:  # Prometheus still starting
            return False

    shared.wait_until(both_up, 90, "both checks up in Prometheus", step=1)
    log("both checks up in Prometheus")

    # 1. A hard outage of timing-a pages.
    drop(ports, ["timing-a"])
    t_fault = time.monotonic()
    log("nft drops timing-a's port")
    seen = watch(t_fault, outcomes(ports, t_fault, ["timing-a"], firing=True))
    figures["outage"] = fault_figures(seen, "timing-a")
    within(seen["timing-a page_s"], "1. timing-a's page after the fault")
    if seen["timing-a page_s"] is None:
        raise RuntimeError("no page: the group's ticks, and so the rest of the scenario, are unknown")

    # 2. The repair, 1s before a tick of the group: the group flushed the page at page_time,
    # and ticks every group_interval from then.
    page_time = t_fault + seen["timing-a page_s"]
    k = math.ceil(FIRST_TICK_AFTER / group_interval)
    while page_time + k * group_interval - 1 <= time.monotonic():
        k += 1
    tick = page_time + k * group_interval
    sleep_until(tick - 1)
    repair()
    t_repair = time.monotonic()
    log(f"repaired {t_repair - page_time:.1f}s after the page, {tick - t_repair:.1f}s before the group's tick {k}")
    seen = watch(t_repair, outcomes(ports, t_repair, ["timing-a"], firing=False))
    figures["repair_late_in_group_interval"] = {
        "repair_after_page_s": round(t_repair - page_time, 1), "before_tick_s": round(tick - t_repair, 1),
        "repair_to_alertmanager_resolved_s": seen["timing-a alertmanager_resolved_s"],
        "repair_to_resolved_page_s": seen["timing-a resolved_page_s"]}
    log(f"repair: resolved in Alertmanager after {seen['timing-a alertmanager_resolved_s']}s, "
        f"resolved page after {seen['timing-a resolved_page_s']}s")
    within(seen["timing-a resolved_page_s"], "2. timing-a's resolved page after a repair 1s before a group tick")
    resolved_at = t_repair + (seen["timing-a resolved_page_s"] or MEASURE)

    # 3. A repeat outage while Prometheus still re-sends the resolved alert, of timing-a and of
    # timing-b, which joins the same group.
    sleep_until(resolved_at + PAUSE)
    drop(ports, CHECKS)
    t_fault = time.monotonic()
    log(f"nft drops both ports, {t_fault - resolved_at:.1f}s after the resolved page")
    seen = watch(t_fault, outcomes(ports, t_fault, CHECKS, firing=True))
    figures["repeat_outage"] = {"after_resolved_page_s": round(t_fault - resolved_at, 1)}
    for name in CHECKS:
        figures["repeat_outage"][name] = fault_figures(seen, name)
    for name in CHECKS:
        within(seen[f"{name} page_s"], f"3. {name}'s page after the repeat outage")

    repair()
    t_repair = time.monotonic()
    log("repaired both")
    seen = watch(t_repair, outcomes(ports, t_repair, CHECKS, firing=False))
    figures["repeat_repair"] = {}
    for name in CHECKS:
        figures["repeat_repair"][name] = {"repair_to_alertmanager_resolved_s": seen[f"{name} alertmanager_resolved_s"],
                                          "repair_to_resolved_page_s": seen[f"{name} resolved_page_s"]}
        log(f"repeat repair: {name} resolved in Alertmanager after {seen[f'{name} alertmanager_resolved_s']}s, "
            f"resolved page after {seen[f'{name} resolved_page_s']}s")
    for name in CHECKS:
        within(seen[f"{name} resolved_page_s"], f"3. {name}'s resolved page after the repeat repair")

    for name, p in shared.CHILDREN:
        check(p.poll() is None, f"{name} still running")


def stopped_by_signal(signum, _frame):
    # Into SystemExit, so that the finally clauses stop the children and remove the files.
    failures.append(f"stopped by signal {signum}")
    sys.exit(1)


def inner():
    started = time.monotonic()
    try:
        main()
    except Exception as e:  # a setup step or a bounded wait failed
        check(False, repr(e))
    except SystemExit:
        pass  # a signal, already counted
    finally:
        subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], capture_output=True, timeout=10)
        shared.stop_children(show_logs=bool(failures))
        shutil.rmtree(WORK, ignore_errors=True)
    print("figures: " + json.dumps(figures), flush=True)
    log(f"{'FAIL' if failures else 'PASS'}  alert timing e2e: {len(failures)} failure(s) in {time.monotonic() - started:.0f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, stopped_by_signal)
    if INSIDE:
        sys.exit(inner())
    if os.geteuid() != 0:
        print("SKIP: alert_timing_test needs root (a network namespace of its own, an nft rule in it); run it as root, as CI does")
        sys.exit(0)
    missing = [tool for tool in ("ip", "nft", "prometheus", "prometheus-alertmanager") if not shutil.which(tool)]
    if missing:
        print(f"FAIL  missing {', '.join(missing)} (deploy/install-deps.sh --test installs them)")
        sys.exit(1)
    sys.exit(in_own_namespace())
