#!/usr/bin/env python3
"""End to end with the real engines: connectivity-agent, Prometheus and Alertmanager on loopback.

1. Every PromQL expression in dashboards/*.json and deploy/prometheus/rules/ returns data from
   a Prometheus scraping a real agent, whose checks point at real loopback peers (TLS from
   openssl s_server, Z39.50 from yaz-ztest, LDAP from slapd, HTTP, DNS, a TDS stand-in).
2. A required check's listener stops: the alert reaches Alertmanager's API and the page reaches
   a webhook receiver within a bound; the listener comes back: the page resolves. Then the same
   with an nft drop rule (a firewall that drops), when run as root.

The shipped prometheus.yml, rules and alertmanager.yml are used with intervals shortened, the
agent's target written in the shipped file_sd format, and the receivers pointed at the test's
webhook. Run as root, the whole test runs in a network namespace of its own (so the nft rule
and the inbound watch touch nothing else); otherwise on 127.0.0.1 without those two parts.

Usage: alerting_test.py AGENT_BINARY REPO_ROOT [--shipped-intervals]

--shipped-intervals keeps every interval as shipped (agent 15s with a 5s timeout and the 1s
confirmation, scrape 15s, rules 10s, Alertmanager's group_wait): slow (minutes), run by hand
to measure the real time to page against the 60s budget.
"""
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
import dashboard_exprs  # noqa: E402
from netns import rerun_in_own_namespace  # noqa: E402
from tds_standin import answer_prelogin  # noqa: E402

AGENT, REPO = sys.argv[1], sys.argv[2]
INSIDE = "--inside-netns" in sys.argv
SHIPPED = "--shipped-intervals" in sys.argv
ROOT = os.geteuid() == 0
WORK = tempfile.mkdtemp(prefix="connectivity-alerting-")
CHILDREN = []
failures = []


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(ok, what):
    log(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, limit, what, step=0.2):
    """Polls `predicate` until it returns something truthy or `limit` seconds pass."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError(f"{what}: not within {limit}s")


def spawn(name, argv, **kw):
    out = open(os.path.join(WORK, name + ".log"), "wb")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kw)
    CHILDREN.append((name, p))
    return p


def stop_children(show_logs):
    """Terminates every process spawn() started (killing one that lingers) and, for a failed
    run, prints the tail of each one's log. The tests that import this module share it."""
    for _, p in CHILDREN:
        p.terminate()
    for _, p in CHILDREN:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
    if show_logs:
        for name, _ in CHILDREN:
            path = os.path.join(WORK, name + ".log")
            if os.path.exists(path):
                print(f"--- {name} log (tail) ---\n{open(path, errors='replace').read()[-1500:]}", flush=True)


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def http_json(url, data=None, method=None):
    req = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"null")


# ---- Loopback peers ------------------------------------------------------------------------

class Listener:
    """Accepts and closes on a fixed port; stop() closes it (refused), start() opens it again."""

    def __init__(self, port, on_accept=None):
        self.port, self.on_accept, self.sock = port, on_accept, None

    def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.sock = s
        threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return  # closed by stop()
            try:
                if self.on_accept:
                    self.on_accept(c)
            except OSError:
                pass
            c.close()

    def stop(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()




def echo(c):
    """An ISO ILL stand-in: sends the probe's own Status-Query APDU back, a well-formed ILL APDU."""
    c.settimeout(2)
    data = c.recv(4096)
    if data:
        c.sendall(data)


def serve_browser(sock, tds_port):
    """The SQL Server Browser (MS-SQLR): answers CLNT_UCAST_INST for ILLIAD with SVR_RESP."""
    record = f"ServerName;ILLIADDB;InstanceName;ILLIAD;IsClustered;No;Version;15.0.4153.1;tcp;{tds_port};;".encode()
    while True:
        try:
            request, peer = sock.recvfrom(512)
        except OSError:
            return
        if request[:1] == b"\x04":
            sock.sendto(b"\x05" + len(record).to_bytes(2, "little") + record, peer)


class Http(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ILLiad logon page stand-in\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve_dns(sock):
    """Answers every A query, alternating between two address sets: the address drift a moved
    vendor host shows. The addresses are only data in the answers, never contacted."""
    answers = [[bytes([192, 0, 2, 10])], [bytes([192, 0, 2, 10]), bytes([192, 0, 2, 11])]]
    n = 0
    while True:
        try:
            query, peer = sock.recvfrom(512)
        except OSError:
            return
        if len(query) < 17:
            continue
        end = 12
        while end < len(query) and query[end] != 0:
            end += query[end] + 1
        question = query[12:end + 5]
        records = answers[n % 2]
        n += 1
        reply = query[:2] + b"\x81\x80" + b"\x00\x01" + len(records).to_bytes(2, "big") + b"\x00\x00\x00\x00" + question
        for address in records:
            reply += b"\xc0\x0c\x00\x01\x00\x01" + (30).to_bytes(4, "big") + b"\x00\x04" + address
        sock.sendto(reply, peer)


class Webhook(http.server.BaseHTTPRequestHandler):
    received = []  # (monotonic time, payload)

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Webhook.received.append((time.monotonic(), payload))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def page_for(check_name, status, after):
    """Time of the first webhook notification after `after` with an alert of that status for
    the check."""
    for at, payload in list(Webhook.received):
        if at < after:
            continue
        for alert in payload.get("alerts", []):
            if alert["labels"].get("check") == check_name and alert["status"] == status \
                    and alert["labels"].get("alertname") == "ConnectivityRequiredCheckDown":
                return at
    return None


# ---- Setup ---------------------------------------------------------------------------------

def start_peers(ports):
    # The check that goes down and comes back.
    outage = Listener(ports["outage"])
    outage.start()
    Listener(ports["outage_drop"]).start()
    Listener(ports["open"]).start()
    Listener(ports["tds"], answer_prelogin).start()
    Listener(ports["ill"], echo).start()
    browser = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    browser.bind(("127.0.0.1", ports["browser"]))
    threading.Thread(target=serve_browser, args=(browser, ports["tds"]), daemon=True).start()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", ports["http"]), Http)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind(("127.0.0.1", ports["dns"]))
    threading.Thread(target=serve_dns, args=(dns,), daemon=True).start()

    # TLS: self-signed (does not verify) and expiring in 5 days (both certificate alerts).
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "5", "-subj", "/CN=localhost",
                    "-keyout", f"{WORK}/tls.key", "-out", f"{WORK}/tls.crt"], check=True, capture_output=True)
    spawn("s_server", ["openssl", "s_server", "-quiet", "-accept", f"127.0.0.1:{ports['tls']}",
                       "-cert", f"{WORK}/tls.crt", "-key", f"{WORK}/tls.key", "-naccept", "100000"])
    spawn("yaz-ztest", ["yaz-ztest", "-l", f"{WORK}/ztest-requests.log", f"tcp:127.0.0.1:{ports['z3950']}"])
    os.makedirs(f"{WORK}/slapd-db")
    with open(f"{WORK}/slapd.conf", "w") as f:
        f.write(f"include /etc/ldap/schema/core.schema\npidfile {WORK}/slapd.pid\nmodulepath /usr/lib/ldap\n"
                f"moduleload back_mdb\ndatabase mdb\nmaxsize 10485760\nsuffix \"dc=example,dc=edu\"\n"
                f"rootdn \"cn=admin,dc=example,dc=edu\"\nrootpw secret\ndirectory {WORK}/slapd-db\n")
    spawn("slapd", ["/usr/sbin/slapd", "-d", "0", "-f", f"{WORK}/slapd.conf", "-h", f"ldap://127.0.0.1:{ports['ldap']}/"])
    for name in ("tls", "z3950", "ldap"):
        wait_until(lambda: listening(ports[name]), 10, f"{name} peer listening")
    return outage


def agent_config(ports, inbound):
    def check_toml(name, probe, target, labels, extra=""):
        label_text = ", ".join(f'{k} = "{v}"' for k, v in labels.items())
        return f'[[check]]\nname = "{name}"\nprobe = "{probe}"\ntarget = "{target}"\nlabels = {{ {label_text} }}\n{extra}\n'

    illiad = {"vendor": "atlas", "system": "illiad", "direction": "outbound"}
    oclc = {"vendor": "oclc", "system": "illiad", "direction": "outbound"}
    text = f'[agent]\nlisten = "127.0.0.1:{ports["agent"]}"\n'
    if not SHIPPED:
        text += 'interval = "1s"\ntimeout = "500ms"\nconfirm_delay = "100ms"\n'
    text += "\n"
    text += check_toml("outage-port", "tcp", f"127.0.0.1:{ports['outage']}",
                  {"vendor": "atlas", "system": "outage-test", "direction": "inbound", "doc": "ILLiad required ports: Odyssey Electronic Delivery (7968)"})
    text += check_toml("outage-port-drop", "tcp", f"127.0.0.1:{ports['outage_drop']}",
                  {"vendor": "atlas", "system": "outage-test-drop", "direction": "inbound", "doc": "ILLiad required ports: Odyssey Electronic Delivery (7968)"})
    text += check_toml("illiad-odyssey", "tcp", f"127.0.0.1:{ports['open']}", dict(illiad, direction="inbound"))
    text += check_toml("oclc-webservices", "tls", f"127.0.0.1:{ports['tls']}", dict(oclc, doc="ILLiad required ports: OCLC Connectivity (443, webservices.oclc.org)"),
                  '[check.tls]\nserver_name = "localhost"\n')
    text += check_toml("oclc-article-exchange", "http", f"http://127.0.0.1:{ports['closed']}/articleexchange/", oclc)
    text += check_toml("illiad-sql", "tds", f"127.0.0.1:{ports['tds']}", dict(illiad, doc="ILLiad required ports: SQL Ports (1433 or 1344)"),
                  f'[check.tds]\ninstance = "ILLIAD"\nbrowser = true\nbrowser_port = {ports["browser"]}\n')
    text += check_toml("illiad-iso-ill", "isoill", f"127.0.0.1:{ports['ill']}", dict(illiad, direction="inbound"), "[check.isoill]\nstatus_query = true\n")
    text += check_toml("illiad-sql-dr", "tds", f"127.0.0.1:{ports['closed']}", illiad)
    text += check_toml("illiad-sql-wrong-port", "tds", f"127.0.0.1:{ports['ill']}", illiad)
    text += check_toml("illiad-web-pages", "http", f"http://127.0.0.1:{ports['http']}/illiad/logon.html", dict(illiad, direction="inbound"))
    text += check_toml("catalogue-z3950", "z3950", f"127.0.0.1:{ports['z3950']}", {"vendor": "talis", "system": "courseflow", "direction": "inbound"},
                  '[check.z3950]\ndatabase = "Default"\nquery = "7"\n')
    text += check_toml("illiad-ldap", "ldap", f"127.0.0.1:{ports['ldap']}", illiad)
    text += check_toml("oclc-dns", "dns", "webservices.oclc.org", oclc, f'[check.dns]\nserver = "127.0.0.1:{ports["dns"]}"\nrecord_types = ["A"]\n')
    text += check_toml("illiad-rdp", "tcp", f"127.0.0.1:{ports['closed']}", dict(illiad, direction="inbound"), "required = false\n")
    if inbound:
        for name, port in (("talis-inbound", ports["open"]), ("talis-inbound-closed", ports["closed"])):
            text += (f'[[inbound]]\nname = "{name}"\nport = {port}\ninterface = "lo"\nexpect_within = "1m"\n'
                     f'sources = [{{ source = "talis-eu-1", address = "127.0.0.1" }}, {{ source = "talis-ca", address = "192.0.2.77" }}]\n'
                     f'labels = {{ vendor = "talis", system = "courseflow", direction = "inbound" }}\n\n')
    return text


def prometheus_config(ports):
    """The shipped prometheus.yml and rules, with 1s intervals and the test's targets."""
    with open(f"{REPO}/deploy/prometheus/prometheus.yml") as f:
        config = yaml.safe_load(f)
    rules_dir = f"{WORK}/rules"
    os.makedirs(rules_dir)
    for name in os.listdir(f"{REPO}/deploy/prometheus/rules"):
        with open(f"{REPO}/deploy/prometheus/rules/{name}") as f:
            rules = yaml.safe_load(f)
        for group in rules["groups"]:
            if not SHIPPED:
                group["interval"] = "1s"
        with open(f"{rules_dir}/{name}", "w") as f:
            yaml.safe_dump(rules, f)
    if not SHIPPED:
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [f"{rules_dir}/*.rules.yml"]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{ports['alertmanager']}"]
    job = config["scrape_configs"][0]
    assert job["job_name"] == "connectivity-agent"
    if not SHIPPED:
        job.update(scrape_interval="1s", scrape_timeout="1s")
    # The file_sd form of the same job: the agent, and an agent that is down.
    with open(f"{REPO}/deploy/prometheus/file_sd/connectivity-agent.yml") as f:
        groups = yaml.safe_load(f)[:2]  # the example's other hosts do not exist here
    groups[0]["targets"] = [f"127.0.0.1:{ports['agent']}"]
    groups[1]["targets"] = [f"127.0.0.1:{ports['dead_agent']}"]
    with open(f"{WORK}/targets.yml", "w") as f:
        yaml.safe_dump(groups, f)
    del job["static_configs"]
    job["file_sd_configs"] = [{"files": [f"{WORK}/targets.yml"], "refresh_interval": "1s"}]
    path = f"{WORK}/prometheus.yml"
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


def alertmanager_config(ports):
    """The shipped alertmanager.yml: routes and inhibitions as they are, 1s group timers, every
    receiver pointed at the test's webhook."""
    with open(f"{REPO}/deploy/alertmanager/alertmanager.yml") as f:
        config = yaml.safe_load(f)
    config["global"] = {"resolve_timeout": "5m"}

    def shorten(route):
        for key in ("group_wait", "group_interval"):
            if key in route and not SHIPPED:
                route[key] = "1s"
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    for receiver in config["receivers"]:
        receiver.pop("email_configs", None)
        receiver["webhook_configs"] = [{"url": f"http://127.0.0.1:{ports['webhook']}/{receiver['name']}", "send_resolved": True}]
    path = f"{WORK}/alertmanager.yml"
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


# ---- The test ------------------------------------------------------------------------------

def query(ports, expr):
    url = f"http://127.0.0.1:{ports['prometheus']}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        reply = http_json(url)
    except urllib.error.HTTPError as e:
        return None, e.read().decode(errors="replace")
    return reply["data"]["result"], None


# Alerts whose condition the scenario does not create (the agent would have to be missing, or
# stuck): for these the expression that feeds the comparison must return data.
NOT_PROVOKED = {
    "ConnectivityAgentAbsent": 'up{job="connectivity-agent"}',
    "ConnectivityResultsStale": "time() - connectivity_last_run_timestamp_seconds",
    "ConnectivitySchedulerSkippingRuns": "increase(connectivity_agent_skipped_runs_total[10m])",
    "ConnectivityInboundWatchNotRunning": "connectivity_inbound_watch_running",
}
# Alerts that compare agents at different vantages: the single agent here stands at one vantage
# (vantage="any": it is given no role), so their condition cannot hold and their expression
# returns nothing by design; tests/e2e/vantage_test.py provokes them with two agents. For these,
# the part one agent does provide must return data: every agent at a vantage failing a check.
NEEDS_TWO_VANTAGES = {
    "ConnectivityVantageBlocked":
        "count by (job, check, vantage) (connectivity_up == 0) == count by (job, check, vantage) (connectivity_up)",
}
# Needs CAP_NET_RAW and packets on lo: only as root.
INBOUND = {"ConnectivityInboundUnanswered", "ConnectivityInboundSilent", "ConnectivityInboundWatchNotRunning"}


# The drill-down is looked at for one check of each probe kind: a panel passes when it shows
# data for at least one of them (TLS facts for the TLS check, and so on).
DRILL_DOWN_CHECKS = ["illiad-sql", "oclc-webservices", "catalogue-z3950", "illiad-ldap", "illiad-web-pages",
                     "oclc-dns", "illiad-iso-ill", "illiad-odyssey"]


def expressions(ports, inbound):
    """[(where, [candidate expressions])]: each must have one candidate that returns data."""
    out = {}
    for path in sorted(os.listdir(f"{REPO}/dashboards")):
        if not path.endswith(".json"):
            continue
        for check_name in DRILL_DOWN_CHECKS:
            for e in dashboard_exprs.expressions([f"{REPO}/dashboards/{path}"], check=check_name,
                                                 instance=f"127.0.0.1:{ports['agent']}", include_variables=True):
                candidates = out.setdefault(f"{path} panel \"{e['panel']}\" {e['refId']}", [])
                if e["expr"] not in candidates:
                    candidates.append(e["expr"])
    for name in sorted(os.listdir(f"{REPO}/deploy/prometheus/rules")):
        with open(f"{REPO}/deploy/prometheus/rules/{name}") as f:
            for group in yaml.safe_load(f)["groups"]:
                for rule in group["rules"]:
                    alert = rule["alert"]
                    if alert in INBOUND and not inbound:
                        continue
                    out[f"rule {alert}"] = [NOT_PROVOKED.get(alert) or NEEDS_TWO_VANTAGES.get(alert) or rule["expr"]]
    return list(out.items())


def call_inbound(ports, stop):
    """A caller from 127.0.0.1: into the open port (answered) and the closed one (reset)."""
    while not stop.is_set():
        for port in (ports["open"], ports["closed"]):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                pass
        stop.wait(0.5)


def outage(ports, check_name, cause, begin, end, limit):
    """Takes the check down with `begin`, waits for the alert in Alertmanager and the page,
    repairs with `end`, waits for the alert to resolve in Alertmanager and for the resolved
    page. Each check has a system label of its own, so its page opens a new Alertmanager group
    (group_wait) as the first alert of a real outage does. Returns the four times in s."""
    wait_until(lambda: query(ports, f'connectivity_up{{check="{check_name}"}} == 1')[0], 60, f"{check_name} up in Prometheus")
    am_url = f"http://127.0.0.1:{ports['alertmanager']}/api/v2/alerts?" + urllib.parse.urlencode(
        [("filter", 'alertname="ConnectivityRequiredCheckDown"'), ("filter", f'check="{check_name}"')])

    def active():
        return [a for a in http_json(am_url) if a["status"]["state"] == "active"]

    t0 = time.monotonic()
    begin()
    wait_until(active, limit, f"{cause}: the alert in Alertmanager's API")
    at_am = time.monotonic() - t0
    paged = wait_until(lambda: page_for(check_name, "firing", t0), limit, f"{cause}: the page at the webhook") - t0
    t1 = time.monotonic()
    end()
    wait_until(lambda: not active(), limit, f"{cause}: the alert resolved in Alertmanager")
    resolved_am = time.monotonic() - t1
    resolved_page = wait_until(lambda: page_for(check_name, "resolved", t1), limit + 60, f"{cause}: the resolved page") - t1
    return {"alertmanager_s": round(at_am, 1), "page_s": round(paged, 1), "resolved_in_alertmanager_s": round(resolved_am, 1),
            "resolved_page_s": round(resolved_page, 1)}


def main():
    names = ["agent", "dead_agent", "prometheus", "alertmanager", "webhook", "outage", "outage_drop", "open", "closed", "tds",
             "http", "dns", "tls", "z3950", "ldap", "ill", "browser"]
    ports = {n: free_port() for n in names}
    inbound = ROOT and INSIDE
    outage_listener = start_peers(ports)
    webhook = http.server.ThreadingHTTPServer(("127.0.0.1", ports["webhook"]), Webhook)
    threading.Thread(target=webhook.serve_forever, daemon=True).start()

    config = f"{WORK}/agent.toml"
    with open(config, "w") as f:
        f.write(agent_config(ports, inbound))
    # --web.enable-lifecycle: the bad reload below goes over HTTP (without it, a 403).
    agent = spawn("agent", [AGENT, "--config", config, "--web.enable-lifecycle"])
    wait_until(lambda: listening(ports["agent"]), 10, "agent listening")
    # A reload with a bad config is rejected and the old one kept: ConnectivityConfigReloadFailed.
    good = open(config).read()
    with open(config, "w") as f:
        f.write(good + "\n[[check]]\nname = 1\n")
    try:
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{ports['agent']}/-/reload", method="POST"), timeout=5)
        check(False, "a bad reload is refused")
    except urllib.error.HTTPError as e:
        check(e.code == 500, f"a bad reload is refused (HTTP {e.code})")
    with open(config, "w") as f:
        f.write(good)

    am = spawn("alertmanager", ["prometheus-alertmanager", f"--config.file={alertmanager_config(ports)}",
                                f"--storage.path={WORK}/am", f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                                "--cluster.listen-address="])
    prom = spawn("prometheus", ["prometheus", f"--config.file={prometheus_config(ports)}", f"--storage.tsdb.path={WORK}/tsdb",
                                f"--web.listen-address=127.0.0.1:{ports['prometheus']}"])
    wait_until(lambda: listening(ports["alertmanager"]) and listening(ports["prometheus"]), 30, "Prometheus and Alertmanager listening")
    stop_calls = threading.Event()
    if inbound:
        threading.Thread(target=call_inbound, args=(ports, stop_calls), daemon=True).start()

    # 1. Every expression returns data (bounded: rate windows need a few samples first).
    exprs = expressions(ports, inbound)
    check(len(exprs) > 30, f"{len(exprs)} expressions from the dashboards and rules")
    empty = {}

    def all_have_data():
        empty.clear()
        for where, candidates in exprs:
            errors = []
            for expr in candidates:
                result, error = query(ports, expr)
                if result:
                    break
                errors.append(error or f"no data: {expr}")
            else:
                empty[where] = " | ".join(errors)
        return not empty

    try:
        wait_until(all_have_data, 150 if SHIPPED else 90, "every expression returns data", step=2)
    except TimeoutError:
        pass
    for where, why in sorted(empty.items()):
        check(False, f"{where}: {why}")
    check(not empty, f"every dashboard and rule expression returned data ({len(exprs)} expressions)")
    # The alerts without a `for:` whose condition the scenario creates, firing in Prometheus.
    expected = {"ConnectivityRequiredCheckDown", "ConnectivityOCLCDown", "ConnectivitySQLServerUnreachable",
                "ConnectivitySQLServerNotAnsweringTDS", "ConnectivityCertificateInvalid", "ConnectivityDNSAddressChanged",
                "ConnectivityConfigReloadFailed"} | ({"ConnectivityInboundUnanswered"} if inbound else set())
    firing = set()

    def all_firing():
        firing.update(r["metric"]["alertname"] for r in query(ports, 'ALERTS{alertstate="firing"}')[0] or [])
        return expected <= firing

    try:
        wait_until(all_firing, 60 if SHIPPED else 30, "the expected alerts firing")
    except TimeoutError:
        pass
    for alert in sorted(expected):
        check(alert in firing, f"{alert} is firing in Prometheus")

    # 2. Outages: measured from the moment the path breaks to Alertmanager and to the page, and
    # from the repair to the resolution in Alertmanager and the resolved page (which waits for
    # the route's group_interval). The page must come within 60s with the shipped intervals
    # (the budget in the rules file).
    bound = 60 if SHIPPED else 30
    figures = {}
    figures["refused"] = outage(ports, "outage-port", "listener stopped", outage_listener.stop, outage_listener.start, bound + 15)
    if ROOT and INSIDE:
        rule = f"tcp dport {ports['outage_drop']} drop"
        add = lambda: subprocess.run(["nft", "-f", "-"], check=True, text=True,
                                     input=f"table inet alerting_test {{\n chain input {{\n  type filter hook input priority 0;\n  {rule}\n }}\n}}\n")
        remove = lambda: subprocess.run(["nft", "delete", "table", "inet", "alerting_test"], check=True)
        figures["dropped"] = outage(ports, "outage-port-drop", "nft drop", add, remove, bound + 15)
    for cause, f in figures.items():
        check(f["page_s"] <= bound, f"{cause}: alert in Alertmanager after {f['alertmanager_s']}s, paged after {f['page_s']}s "
                                    f"(bound {bound}s); after the repair resolved in Alertmanager after "
                                    f"{f['resolved_in_alertmanager_s']}s, resolved page after {f['resolved_page_s']}s")
    print("figures: " + json.dumps(figures), flush=True)
    stop_calls.set()
    with open(f"{WORK}/figures.json", "w") as f:
        json.dump(figures, f)

    for name, p in (("agent", agent), ("prometheus", prom), ("alertmanager", am)):
        check(p.poll() is None, f"{name} still running")


if __name__ == "__main__":
    if ROOT and not INSIDE:
        sys.exit(rerun_in_own_namespace(__file__, "ca-alerting", timeout=900))
    if not ROOT:
        log("not root: no network namespace, so no nft drop outage and no inbound watch")
    try:
        main()
    except Exception as e:  # a setup step or a bounded wait failed
        failures.append(repr(e))
        log(f"FAIL  {e!r}")
    finally:
        stop_children(show_logs=bool(failures))
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)
