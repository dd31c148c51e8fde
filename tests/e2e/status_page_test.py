#!/usr/bin/env python3
"""The status page, the check page and the JSON API, in a real browser.

In a network namespace of its own (root), one agent runs checks that are up, down (required
and optional), not run yet and skipped, against peers on the namespace's loopback: a plain TCP
listener, a closed port, and `openssl s_server` presenting a certificate whose subject is
hostile markup (`<script>...`, `<img onerror=...>`), as a man-in-the-middle or a careless
issuer could present. An https check sends basic-auth credentials from a password file.

Headless Chromium (Debian's `chromium`) loads the pages; the test reads the DOM it built:
- every check is on the page with its state, its reason in words and its rule; the first card
  is a failing required check;
- with scripts off (`--blink-settings=scriptEnabled=false`) the states are all still there;
- the hostile subject is shown as text on the check's page and made no element; the page's own
  script is the only one, it runs under the page's Content-Security-Policy (no console error),
  and its refresh swaps the content in place (virtual time moved past 30 s);
- screenshots, desktop and phone sized, go to OUT_DIR (kept by CI under build/).
The JSON API is read with urllib: schema, states, recent runs, the password never shown. "Run
now" is refused without --web.enable-lifecycle and from another site's page, and runs the
check with it. The page and the JSON of 5,000 checks, asked for on eight connections at once,
leave the agent's memory bounded. Then the embedded default and every example config in
configs/ are served: the page, a check's page and the API answer for each.

Usage: status_page_test.py AGENT_BINARY REPO_ROOT OUT_DIR
"""
import html.parser
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from e2e import Run, log, wait_until  # noqa: E402
from netns import rerun_in_own_namespace  # noqa: E402

AGENT, REPO, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
INSIDE = "--inside-netns" in sys.argv
RUN = Run("connectivity-status-page-")
WORK, CHILDREN, failures = RUN.work, RUN.children, RUN.failures
check, write, spawn = RUN.check, RUN.write, RUN.spawn
PASSWORD = "s3cret-Pa55word-never-shown"
HOSTILE_CN = "<script>alert('subject')</script>"
HOSTILE_O = "Evil <img src=x onerror=alert('org')>"
# How the agent shows a certificate's names: RFC 2253, which puts a backslash before < and >.
SHOWN_CN = HOSTILE_CN.replace("<", "\\<").replace(">", "\\>")
SHOWN_O = HOSTILE_O.replace("<", "\\<").replace(">", "\\>")
# Every element the pages are made of: markup that slipped its escaping would add another.
PAGE_TAGS = {"html", "head", "meta", "title", "style", "noscript", "body", "header", "h1", "h2", "div", "p", "span",
             "a", "main", "section", "article", "dl", "dt", "dd", "svg", "polyline", "rect", "table", "thead", "tbody",
             "tr", "th", "td", "pre", "form", "button", "footer", "br", "script"}


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def read_log(name):
    with open(os.path.join(WORK, name + ".log"), errors="replace") as f:
        return f.read()


def start_agent(name, argv):
    """Starts the agent and returns (process, port) once its 'agent started' line names the port."""
    p = spawn(name, [AGENT, *argv])
    port = wait_until(lambda: (re.search(r'msg="agent started".* port=(\d+)\s', read_log(name)) or p.poll() is not None and "exited")
                      , 15, f"{name} starts")
    if port == "exited":
        raise RuntimeError(f"{name} exited: {read_log(name)[-2000:]}")
    return p, int(port.group(1))


def get(port, path, method="GET", headers=None, data=None):
    """(status, headers, body) of one request; errors are answers too."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


class Cards(html.parser.HTMLParser):
    """The cards of a page as the browser built it: data-check, data-state, data-required and
    the text inside each, in document order; and every <script> element."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.cards, self.scripts, self.depth, self.text, self.tags = [], 0, 0, [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "article" and "data-check" in attrs:
            self.cards.append({"name": attrs["data-check"], "state": attrs.get("data-state"),
                               "required": attrs.get("data-required") == "true", "text": ""})
            self.depth = 1
        elif self.depth and tag not in ("br", "img", "input", "meta"):
            self.depth += 1

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        self.text.append(data)
        if self.depth and self.cards:
            self.cards[-1]["text"] += data


def parse(dom):
    cards = Cards()
    cards.feed(dom)
    return cards


def chromium(*args, timeout=90):
    """Runs headless Chromium once; (stdout, stderr)."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=WORK)
    argv = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--disable-background-networking", "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
            "--enable-logging=stderr", "--v=0", *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env={**os.environ, "HOME": profile})
    return result.stdout, result.stderr


def dom_without_scripts(url, limit=60):
    """The DOM of `url` with the page's scripts disabled. --dump-dom cannot give it (it reads
    the DOM by script), so this drives Chromium over the DevTools protocol on a pipe (fds 3 and
    4, JSON messages ended by NUL): Emulation.setScriptExecutionDisabled, navigate, wait for
    the load event, DOM.getOuterHTML."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=WORK)
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def wire_fds():  # in the child; through copies, as either end may itself be 3 or 4
        reads, writes = os.dup(to_chrome_r), os.dup(from_chrome_w)
        os.dup2(reads, 3)
        os.dup2(writes, 4)

    p = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
                         pass_fds=(3, 4, to_chrome_r, from_chrome_w), preexec_fn=wire_fds, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env={**os.environ, "HOME": profile})
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    out, inbox, buffered, next_id = os.fdopen(to_chrome_w, "wb"), os.fdopen(from_chrome_r, "rb"), b"", [0]
    deadline = time.monotonic() + limit

    def receive():
        nonlocal buffered
        while b"\0" not in buffered:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer over the DevTools pipe")
            chunk = os.read(inbox.fileno(), 65536)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            buffered += chunk
        message, buffered = buffered.split(b"\0", 1)
        return json.loads(message)

    def call(method, params=None, session=None, wait_event=None):
        next_id[0] += 1
        message = {"id": next_id[0], "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        out.write(json.dumps(message).encode() + b"\0")
        out.flush()
        result, seen_event = None, wait_event is None
        while result is None or not seen_event:
            reply = receive()
            if reply.get("id") == next_id[0]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result = reply.get("result", {})
            elif wait_event and reply.get("method") == wait_event:
                seen_event = True
        return result

    try:
        page = next(t for t in call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        session = call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
        call("Page.enable", session=session)
        call("Emulation.setScriptExecutionDisabled", {"value": True}, session=session)
        call("Page.navigate", {"url": url}, session=session, wait_event="Page.loadEventFired")
        root = call("DOM.getDocument", {"depth": -1}, session=session)["root"]["nodeId"]
        return call("DOM.getOuterHTML", {"nodeId": root}, session=session)["outerHTML"]
    finally:
        out.close()
        inbox.close()
        p.kill()
        p.wait()


def console_problems(stderr):
    return [line for line in stderr.splitlines()
            if "CONSOLE" in line and ("Uncaught" in line or "Content Security Policy" in line or "Refused" in line)]


def make_hostile_pki():
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, cwd=WORK, capture_output=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=status page test CA", "-keyout", "ca.key", "-out", "ca.crt")
    write("leaf.ext", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n")
    # In -subj a '/' inside a value is written '\/'.
    subject = f"/O={HOSTILE_O}/CN={HOSTILE_CN}".replace("</", "<\\/")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", subject,
            "-keyout", "leaf.key", "-out", "leaf.csr")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "leaf.ext", "-out", "leaf.crt")


def serve_tcp(sock, stop_event):
    sock.settimeout(0.2)
    while not stop_event.is_set():
        try:
            conn, _ = sock.accept()
            conn.close()
        except (socket.timeout, OSError):
            pass


def site_config(tcp_port, closed_port, tls_port):
    write("password", PASSWORD + "\n")
    os.chmod(os.path.join(WORK, "password"), 0o600)
    write("partner.toml", """[profile]
description = "a partner whose host is not known yet"
[vars.partner_host]
kind = "host"
description = "the partner's ISO ILL host"
[[check]]
name = "partner-iso-ill"
probe = "isoill"
target = "${partner_host}:499"
required = false
labels = { vendor = "iso", system = "iso-ill", direction = "outbound", doc = "ISO ILL: TCP 499 to the partner" }
""")
    return write("site.toml", f"""[agent]
listen = "127.0.0.1:0"
interval = "2s"
timeout = "500ms"
confirm_runs = 1
confirm_delay = "100ms"

[[check]]
name = "illiad-sql"
probe = "tcp"
target = "127.0.0.1:{closed_port}"
run_from = ["staff-client"]
labels = {{ system = "illiad", vendor = "atlas", direction = "outbound", doc = "SQL Server on 1433 from every staff PC" }}

[[check]]
name = "illiad-web"
probe = "tcp"
target = "127.0.0.1:{tcp_port}"
labels = {{ system = "illiad", vendor = "atlas", direction = "outbound", doc = "the web server answers on 443" }}

[[check]]
name = "oclc-hostile-subject"
probe = "tls"
target = "localhost:{tls_port}"
labels = {{ system = "illiad", vendor = "oclc", doc = "webservices.oclc.org on 443" }}
[check.tls]
ca_file = "{WORK}/ca.crt"

[[check]]
name = "courseflow-web"
probe = "http"
target = "https://localhost:{tls_port}/"
labels = {{ system = "courseflow", vendor = "talis", doc = "Courseflow answers over https" }}
[check.http]
ca_file = "{WORK}/ca.crt"
basic_auth_user = "library"
basic_auth_password_file = "{WORK}/password"

[[check]]
name = "catalogue-optional"
probe = "tcp"
target = "127.0.0.1:{closed_port}"
required = false
labels = {{ system = "catalogue", vendor = "local", doc = "the catalogue's spare port" }}

[[check]]
name = "z39-not-yet"
probe = "tcp"
target = "127.0.0.1:{tcp_port}"
interval = "1h"
labels = {{ system = "catalogue", vendor = "local", doc = "a check whose first run is far off" }}

[[include]]
profile = "partner.toml"
""")


def browser_checks(port):
    base = f"http://127.0.0.1:{port}"
    os.makedirs(OUT, exist_ok=True)
    expected = {"illiad-sql": ("down", True), "illiad-web": ("up", True), "oclc-hostile-subject": ("up", True),
                "courseflow-web": ("up", True), "catalogue-optional": ("down", False), "partner-iso-ill": ("skipped", False)}

    for scripts in (True, False):
        what = "scripts on" if scripts else "scripts off"
        if scripts:
            dom, err = chromium("--dump-dom", base + "/")
        else:
            dom, err = dom_without_scripts(base + "/"), ""
        page = parse(dom)
        by_name = {card["name"]: card for card in page.cards}
        for name, (state, required) in expected.items():
            card = by_name.get(name)
            check(card is not None and card["state"] == state and card["required"] == required,
                  f"{what}: {name} is on the page as {state}, {'required' if required else 'optional'}"
                  f" (got {card and (card['state'], card['required'])})")
        pending = by_name.get("z39-not-yet")
        check(pending is not None and pending["state"] == "pending" and "waiting for its first run" in pending["text"],
              f"{what}: a check not run yet says so")
        first = page.cards[0] if page.cards else {}
        check(first.get("state") == "down" and first.get("required"),
              f"{what}: the first card is a failing required check ({first.get('name')})")
        sql = by_name.get("illiad-sql", {"text": ""})
        check(re.search(r"127\.0\.0\.1 refused the connection on port \d+", sql["text"]) is not None,
              f"{what}: the failure in words: {sql['text'][:80]!r}")
        check("SQL Server on 1433 from every staff PC" in sql["text"] and "staff-client" in sql["text"],
              f"{what}: the rule it tests and where it runs from")
        check("since" in sql["text"] and "latency" in sql["text"], f"{what}: since when, and the latency")
        check("not run: set partner_host" in by_name.get("partner-iso-ill", {"text": ""})["text"],
              f"{what}: the skipped check names the variable to set")
        check(page.scripts == 1, f"{what}: one script element, the page's own ({page.scripts})")
        check(page.tags <= PAGE_TAGS, f"{what}: only the page's own elements: {sorted(page.tags - PAGE_TAGS)}")
        if scripts:
            check(not console_problems(err), f"{what}: no console error, no CSP refusal: {console_problems(err)[:2]}")

    # The refresh: with virtual time past 30 s the script fetches the page and swaps it in place.
    dom, err = chromium("--virtual-time-budget=35000", "--dump-dom", base + "/")
    check(re.search(r'<body[^>]*data-refreshed="20\d\d-', dom) is not None and "stale" not in re.search(r"<body[^>]*>", dom).group(0),
          "the page's script refreshed it in place after 30 s")
    check(not console_problems(err), f"no console error during the refresh: {console_problems(err)[:2]}")

    # The hostile subject, on the check's page.
    dom, err = chromium("--dump-dom", base + "/check/oclc-hostile-subject")
    page = parse(dom)
    text = "".join(page.text)
    check(SHOWN_CN in text and SHOWN_O in text, f"the hostile subject and organisation are shown, as text ({SHOWN_CN})")
    check(page.scripts == 1, f"the hostile subject made no script element ({page.scripts} on the page)")
    check(page.tags <= PAGE_TAGS, f"the hostile subject made no element: {sorted(page.tags - PAGE_TAGS)}")
    check("certificate 0" in text and "the chain verifies" in text and "TLSv1.3" in text,
          "the check's page shows the chain and what the handshake learned")
    check(not console_problems(err), f"check page: no console error: {console_problems(err)[:2]}")

    dom, _ = chromium("--dump-dom", base + "/check/courseflow-web")
    check(PASSWORD not in dom and "basic_auth_password_file" in dom and f"{WORK}/password" in dom,
          "the check's config shows the password file's path, never the password")
    check("Run this check now" in dom and 'id="run-now" disabled' not in dom, "run now is offered (lifecycle on)")
    check("Last " in dom and "HTTP 200" in dom, "the last runs and what they learned")

    shots = [("status-desktop.png", "/", "1280,1400"), ("status-phone.png", "/", "390,1600"),
             ("check-page.png", "/check/oclc-hostile-subject", "1000,1800")]
    for name, path, size in shots:
        target = os.path.join(OUT, name)
        if os.path.exists(target):
            os.remove(target)
        chromium(f"--window-size={size}", f"--screenshot={target}", base + path)
        check(os.path.exists(target) and os.path.getsize(target) > 10_000, f"screenshot {name} ({size})")


def api_checks(port, lifecycle):
    status, headers, body = get(port, "/api/v1/checks")
    document = json.loads(body)
    check(status == 200 and headers.get("Content-Type", "").startswith("application/json"), "GET /api/v1/checks: JSON")
    check(document["schema"] == "connectivity-agent-check/1", "the check command's schema")
    states = {c["name"]: c["state"] for c in document["checks"]}
    check(states.get("illiad-sql") == "down" and states.get("illiad-web") == "up" and states.get("partner-iso-ill") == "skipped"
          and states.get("z39-not-yet") == "pending", f"states in the API: {states}")
    check(document["exit_code"] == 1 and document["summary"]["failed_required"] == 1, "exit_code and summary as `check` gives them")
    check(PASSWORD not in body, "the list never shows the password")
    sql = next(c for c in document["checks"] if c["name"] == "illiad-sql")
    check(sql.get("failure", "").startswith("127.0.0.1 refused the connection on port")
          and sql.get("since") and sql.get("last_hour"), "a check's failure in words, since, and its last hour")

    status, _, body = get(port, "/api/v1/checks/oclc-hostile-subject")
    one = json.loads(body)["check"]
    details = {d["heading"]: d["text"] for d in one["words"]["details"]}
    check(status == 200 and SHOWN_CN in details.get("certificate 0", ""), "one check: the chain in words, subject as given")
    check(len(one.get("recent_runs", [])) >= 1 and one.get("settings", {}).get("interval_seconds") == 2,
          "one check: its recent runs and settings")
    status, _, body = get(port, "/api/v1/checks/courseflow-web")
    check(PASSWORD not in body and "basic_auth_password_file" in body, "one check: the password file's path, not the password")
    check(get(port, "/api/v1/checks/no-such-check")[0] == 404 and get(port, "/check/no-such-check")[0] == 404,
          "an unknown check is 404, page and API")
    status, headers, _ = get(port, "/")
    check(status == 200 and "script-src 'sha256-" in headers.get("Content-Security-Policy", ""),
          "the page is served with its Content-Security-Policy")

    run_path = "/api/v1/checks/illiad-web/run"
    if not lifecycle:
        check(get(port, run_path, method="POST")[0] == 403, "run now without --web.enable-lifecycle: 403")
        return
    check(get(port, run_path, method="POST", headers={"Origin": "http://elsewhere.example"})[0] == 403,
          "run now from another site's page: 403")
    before = json.loads(get(port, "/api/v1/checks/illiad-web")[2])["check"]["recent_runs"]
    status, _, body = get(port, run_path, method="POST", headers={"Origin": f"http://127.0.0.1:{port}"})
    after = json.loads(body)["check"]["recent_runs"] if status == 200 else []
    check(status == 200 and len(after) == min(len(before) + 1, 20) and after[0]["finished_at"] >= before[0]["finished_at"],
          f"run now runs the check and answers with its new run ({status}, {len(before)} -> {len(after)} runs)")
    status, headers, _ = get(port, run_path, method="POST", headers={"Accept": "text/html"})
    check(status in (303, 200), f"a browser's form is sent back to the check's page ({status})")


def pages_in_bounded_memory(tcp_port):
    """A big site's page and JSON asked for on eight connections at once: the agent's memory
    stays bounded (the pages are made one at a time on a thread of their own, and its heap is
    handed back). Made on the web workers, eight at once held 2 GB for 10,000 checks."""
    lines = ['[agent]\nlisten = "127.0.0.1:0"\ninterval = "5s"\ntimeout = "1s"\nmax_concurrent_probes = 1024\n']
    for i in range(5000):
        lines.append(f'[[check]]\nname = "c{i:05d}"\nprobe = "tcp"\ntarget = "127.0.0.1:{tcp_port}"\n'
                     f'labels = {{ system = "s{i % 7}", vendor = "v{i % 3}", doc = "rule {i}" }}\n')
    config = write("big.toml", "".join(lines))
    p, port = start_agent("agent-big", ["--config", config])
    try:
        wait_until(lambda: json.loads(get(port, "/api/v1/checks")[2])["summary"]["pending"] == 0, 40,
                   "every one of 5,000 checks has a result")

        def rss_mib():
            with open(f"/proc/{p.pid}/status") as f:
                return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024

        before = rss_mib()
        sizes = []

        def fetch(path):
            for _ in range(5):
                sizes.append(len(get(port, path)[2]))

        threads = [threading.Thread(target=fetch, args=(path,)) for path in ["/", "/api/v1/checks"] * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        after = rss_mib()
        check(len(sizes) == 40 and min(sizes) > 1_000_000, f"40 pages of 5,000 checks served ({min(sizes or [0]):,} bytes at least)")
        check(after - before < 150, f"the agent's memory stayed bounded: RSS {before:.0f} MiB before, {after:.0f} MiB after")
    finally:
        stop(p)


def every_config():
    """The embedded default and each example config: the page, a check's page and the API answer."""
    configs = [None] + sorted(os.path.join(REPO, "configs", f) for f in os.listdir(os.path.join(REPO, "configs"))
                              if f.endswith(".toml"))
    for config in configs:
        name = os.path.basename(config) if config else "embedded default"
        argv = (["--config", config] if config else []) + ["--web.listen-address", "127.0.0.1:0"]
        p, port = start_agent("config-" + name.replace(" ", "-"), argv)
        try:
            status, _, body = get(port, "/api/v1/checks")
            document = json.loads(body)
            first = document["checks"][0]["name"] if document["checks"] else None
            page_status = get(port, "/")[0]
            check_status = get(port, "/check/" + urllib.request.quote(first, safe=""))[0] if first else 200
            check(status == 200 and page_status == 200 and check_status == 200 and first is not None,
                  f"{name}: /, /check/{first} and /api/v1/checks answer ({page_status}, {check_status}, {status}; "
                  f"{len(document['checks'])} checks)")
        finally:
            stop(p)


def main():
    if not INSIDE:
        if os.geteuid() != 0:
            print("skipped: needs root for a network namespace of its own")
            return 0
        if not shutil.which("chromium"):
            print("FAIL: chromium is not installed (the test command installs it)")
            return 1
        return rerun_in_own_namespace(__file__, "status-page", 600)

    make_hostile_pki()
    stop_event = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    threading.Thread(target=serve_tcp, args=(listener, stop_event), daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]  # bound, never listening: connections are refused
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        tls_port = probe.getsockname()[1]
    server = spawn("s_server", ["openssl", "s_server", "-accept", f"127.0.0.1:{tls_port}", "-cert", f"{WORK}/leaf.crt",
                                "-key", f"{WORK}/leaf.key", "-www", "-quiet"])
    wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", tls_port)) == 0, 10, "s_server listens")
    config = site_config(listener.getsockname()[1], closed_port, tls_port)
    try:
        for lifecycle in (False, True):
            name = "agent-lifecycle" if lifecycle else "agent"
            p, port = start_agent(name, ["--config", config] + (["--web.enable-lifecycle"] if lifecycle else []))
            try:
                # Every check but the far-off one has a result: two intervals are plenty.
                wait_until(lambda: all(c["state"] != "pending" for c in json.loads(get(port, "/api/v1/checks")[2])["checks"]
                                       if c["name"] != "z39-not-yet"), 20, "every check has a result")
                api_checks(port, lifecycle)
                if lifecycle:
                    browser_checks(port)
            finally:
                stop(p)
        pages_in_bounded_memory(listener.getsockname()[1])
        every_config()
    except Exception as e:  # a setup step failed
        failures.append(repr(e))
        log(f"FAIL  {e!r}")
    finally:
        stop_event.set()
        stop(server)
        for name, child in CHILDREN:
            stop(child)
    if failures:
        for name, _ in CHILDREN:
            if name.startswith("agent"):
                print(f"--- {name} log (tail) ---\n{read_log(name)[-3000:]}")
        print(f"\n{len(failures)} failure(s)")
        return 1
    shutil.rmtree(WORK, ignore_errors=True)
    print("\nall status page checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
