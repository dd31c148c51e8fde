#!/usr/bin/env python3
"""The agent's web config end to end, with the clients that meet it in the field.

1. `promtool check web-config` (Prometheus' own checker, the exporter-toolkit's rules) and the
   agent's `validate` both accept the shipped example (deploy/web-config.example.yml) with its
   settings uncommented, and a file for each client_auth_type.
2. curl against the agent on 127.0.0.1 with TLS and basic auth: the right user gets /metrics; no
   credentials, a wrong password and an unknown user get 401; /-/healthy and /-/ready need none;
   TLS 1.1 and plain HTTP are refused. Then every client_auth_type, applied by SIGHUP reloads,
   against no client certificate, one from the trusted CA and one from another CA. A reload with
   a bad web config is rejected and the old one keeps serving.
3. A real Prometheus scrapes the agent with `scheme: https`, `tls_config` and `basic_auth`:
   up == 1; the same job with a wrong password: up == 0.

Usage: web_security_test.py AGENT_BINARY REPO_ROOT
"""
import warnings
warnings.filterwarnings("ignore", category=DeprecationWarning)
import crypt  # noqa: E402 - bcrypt through the system's libcrypt, as htpasswd -B makes it
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from e2e import Run, log, wait_until  # noqa: E402

AGENT, REPO = sys.argv[1], sys.argv[2]
RUN = Run("connectivity-web-security-")
WORK, CHILDREN, failures = RUN.work, RUN.children, RUN.failures
check, write, spawn = RUN.check, RUN.write, RUN.spawn


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent_log():
    with open(os.path.join(WORK, "agent.log"), errors="replace") as f:
        return f.read()


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, cwd=WORK, capture_output=True)


def make_pki():
    """A CA with a server and a client certificate, and a stranger CA with a client certificate."""
    for ca in ("ca", "stranger-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                "-subj", f"/CN=test {ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.crt")
    leaves = [("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
              ("client", "ca", "extendedKeyUsage=clientAuth"),
              ("stranger", "stranger-ca", "extendedKeyUsage=clientAuth")]
    for name, ca, extensions in leaves:
        with open(os.path.join(WORK, f"{name}.ext"), "w") as f:
            f.write(extensions + "\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
                "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt")


def example_uncommented():
    """The shipped example with its settings turned on: each '#  ' line between the markers loses
    its '# ', and the file paths become the test's."""
    with open(f"{REPO}/deploy/web-config.example.yml") as f:
        text = f.read()
    body = text.split("# --- begin settings ---\n", 1)[1].split("# --- end settings ---\n", 1)[0]
    lines = [line[2:] for line in body.splitlines() if line.startswith("# ") and not line.startswith("# #")]
    out = "\n".join(lines) + "\n"
    out = out.replace("/etc/ssl/certs/connectivity-agent.crt", f"{WORK}/server.crt")
    out = out.replace("/etc/ssl/private/connectivity-agent.key", f"{WORK}/server.key")
    out = out.replace("/etc/connectivity-agent/clients-ca.crt", f"{WORK}/ca.crt")
    return out


def curl(url, *extra):
    """(exit status, HTTP status) of one curl request."""
    result = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", *extra, url],
                            capture_output=True, text=True)
    return result.returncode, result.stdout.strip()


def web_config(client_auth=None, password_hash=None):
    text = ("tls_server_config:\n"
            f"  cert_file: {WORK}/server.crt\n"
            f"  key_file: {WORK}/server.key\n")
    if client_auth:
        text += f"  client_auth_type: {client_auth}\n"
        if "Verify" in client_auth:
            text += f"  client_ca_file: {WORK}/ca.crt\n"
    text += ("http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
             f"basic_auth_users:\n  prometheus: '{password_hash}'\n")
    return text


def reload_and_wait(pid, what):
    """SIGHUP, then waits for the agent's log to say the reload was applied or rejected."""
    before = agent_log().count('msg="config reloaded"') + agent_log().count('msg="config rejected')
    os.kill(pid, signal.SIGHUP)
    wait_until(lambda: agent_log().count('msg="config reloaded"') + agent_log().count('msg="config rejected') > before,
               10, what)


def prometheus_query(port, expr):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.load(reply)["data"]["result"]


def main():
    make_pki()
    password_hash = crypt.crypt("scrape-secret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2 ** 10))

    # --- 1. the file format: promtool and the agent agree --------------------------------------
    example = write("example.yml", example_uncommented())
    for name, path in [("the shipped example, uncommented", example)] + [
            (f"client_auth_type {auth}", write(f"web-{auth}.yml", web_config(auth, password_hash)))
            for auth in ("NoClientCert", "RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven",
                         "RequireAndVerifyClientCert")]:
        promtool = subprocess.run(["promtool", "check", "web-config", path], capture_output=True, text=True)
        check(promtool.returncode == 0, f"promtool check web-config accepts {name} ({promtool.stdout.strip() or promtool.stderr.strip()})")
        ours = subprocess.run([AGENT, "validate", "--config", f"{REPO}/configs/loopback-demo.toml", "--web.config.file", path],
                              capture_output=True, text=True)
        check(ours.returncode == 0 and "web config" in ours.stdout, f"validate accepts {name} ({ours.stderr.strip()[:200]})")
    promtool = subprocess.run(["promtool", "check", "web-config", f"{REPO}/deploy/web-config.example.yml"], capture_output=True, text=True)
    check(promtool.returncode == 0, "promtool accepts the shipped example as shipped (all commented)")

    # --- 2. curl against the agent -------------------------------------------------------------
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    config = write("agent.toml", f"""[agent]
interval = "1s"
timeout = "500ms"

[[check]]
name = "loopback-open"
probe = "tcp"
target = "127.0.0.1:{listener.getsockname()[1]}"
""")
    web = write("web.yml", web_config(None, password_hash))
    port = free_port()
    agent = spawn("agent", [AGENT, "--config", config, "--web.config.file", web, "--web.listen-address", f"127.0.0.1:{port}"])
    wait_until(lambda: 'msg="agent started"' in agent_log() or agent.poll() is not None, 15, "the agent starting")
    check('web="TLS TLS12-TLS13, client certificates: NoClientCert, basic auth (1 user), 1 extra header"' in agent_log(),
          "the agent logs what its web config serves")
    https = f"https://127.0.0.1:{port}"
    ca = ["--cacert", f"{WORK}/ca.crt"]
    wait_until(lambda: curl(f"{https}/-/ready", *ca)[1] == "200", 15, "/-/ready")
    status = subprocess.run(["curl", "-s", "--max-time", "5", *ca, "-u", "prometheus:scrape-secret", "-D", f"{WORK}/headers.txt",
                             f"{https}/metrics"], capture_output=True, text=True)
    check(status.returncode == 0 and re.search(r'^connectivity_up\{check="loopback-open".*\} 1$', status.stdout, re.M) is not None,
          "the right user and password get /metrics over TLS")
    with open(f"{WORK}/headers.txt") as f:
        check("x-content-type-options: nosniff" in f.read().lower(), "the configured header is sent")
    check(curl(f"{https}/metrics", *ca) == (0, "401"), "no credentials: 401")
    check(curl(f"{https}/metrics", *ca, "-u", "prometheus:wrong") == (0, "401"), "a wrong password: 401")
    check(curl(f"{https}/metrics", *ca, "-u", "mallory:scrape-secret") == (0, "401"), "an unknown user: 401")
    check(curl(f"{https}/-/healthy", *ca) == (0, "200"), "/-/healthy needs no credentials")
    check(curl(f"{https}/-/ready", *ca) == (0, "200"), "/-/ready needs no credentials")
    code, _ = curl(f"{https}/metrics", *ca, "-u", "prometheus:scrape-secret", "--tlsv1.1", "--tls-max", "1.1")
    check(code == 35, f"TLS 1.1 is refused in the handshake (curl exit {code})")
    code, http_status = curl(f"http://127.0.0.1:{port}/metrics", "-u", "prometheus:scrape-secret")
    check(http_status != "200", f"plain HTTP to the TLS port gets no metrics (curl exit {code}, status {http_status})")

    client = ["--cert", f"{WORK}/client.crt", "--key", f"{WORK}/client.key"]
    stranger = ["--cert", f"{WORK}/stranger.crt", "--key", f"{WORK}/stranger.key"]
    expected = {  # (no certificate, the CA's client, another CA's client): served?
        "NoClientCert": (True, True, True),
        "RequestClientCert": (True, True, True),
        "RequireAnyClientCert": (False, True, True),
        "VerifyClientCertIfGiven": (True, True, False),
        "RequireAndVerifyClientCert": (False, True, False),
    }
    for auth, (anonymous, trusted, untrusted) in expected.items():
        write("web.yml", web_config(auth, password_hash))
        reload_and_wait(agent.pid, f"reload to {auth}")
        check(f"client certificates: {auth}" in agent_log().rsplit('msg="web config applied"', 1)[-1].split("\n", 1)[0],
              f"{auth}: the reload applied it")
        for label, cert, wanted in (("no certificate", [], anonymous), ("a trusted client", client, trusted),
                                    ("another CA's client", stranger, untrusted)):
            code, http_status = curl(f"{https}/metrics", *ca, "-u", "prometheus:scrape-secret", *cert)
            check((http_status == "200") == wanted,
                  f"{auth}, {label}: {'served' if wanted else 'refused'} (curl exit {code}, status {http_status})")

    write("web.yml", web_config("RequireAndVerifyClientCert", password_hash).replace("key_file", "keyfile"))
    reload_and_wait(agent.pid, "reload with a bad web config")
    check('msg="config rejected; previous config still running"' in agent_log() and "unknown key" in agent_log(),
          "a bad web config is rejected at reload, with where and why")
    check(curl(f"{https}/metrics", *ca, "-u", "prometheus:scrape-secret", *client)[1] == "200",
          "and the previous web config keeps serving")
    write("web.yml", web_config(None, password_hash))
    reload_and_wait(agent.pid, "reload back to the plain policy")

    # --- 3. Prometheus scrapes it --------------------------------------------------------------
    prom_port = free_port()
    prom_config = write("prometheus.yml", f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: agent-https
    scheme: https
    tls_config:
      ca_file: {WORK}/ca.crt
    basic_auth:
      username: prometheus
      password: scrape-secret
    static_configs:
      - targets: ["127.0.0.1:{port}"]
  - job_name: agent-wrong-password
    scheme: https
    tls_config:
      ca_file: {WORK}/ca.crt
    basic_auth:
      username: prometheus
      password: not-the-secret
    static_configs:
      - targets: ["127.0.0.1:{port}"]
""")
    spawn("prometheus", ["prometheus", f"--config.file={prom_config}", f"--storage.tsdb.path={WORK}/tsdb",
                         f"--web.listen-address=127.0.0.1:{prom_port}"])

    def up(job):
        try:
            result = prometheus_query(prom_port, f'up{{job="{job}"}}')
        except OSError:
            return None
        return result[0]["value"][1] if result else None

    wait_until(lambda: up("agent-https") is not None and up("agent-wrong-password") is not None, 30, "both jobs scraped")
    check(up("agent-https") == "1", "Prometheus with scheme https and basic_auth scrapes the agent: up == 1")
    check(up("agent-wrong-password") == "0", "the same job with a wrong password: up == 0")
    series = prometheus_query(prom_port, 'connectivity_up{job="agent-https",check="loopback-open"}')
    check(bool(series) and series[0]["value"][1] == "1", "the agent's series arrive through the TLS scrape")

    agent.send_signal(signal.SIGTERM)
    check(agent.wait(timeout=10) == 0, "the agent stops cleanly")
    listener.close()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - any escape is a failure to report, not a crash
        check(False, f"unexpected {type(e).__name__}: {e}")
    finally:
        for _, p in CHILDREN:
            if p.poll() is None:
                p.terminate()
        for _, p in CHILDREN:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        if failures:
            for name, _ in CHILDREN:
                path = os.path.join(WORK, name + ".log")
                if os.path.exists(path):
                    print(f"--- {name} log (tail) ---\n{open(path, errors='replace').read()[-2000:]}", flush=True)
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"{'FAILED: ' + str(len(failures)) if failures else 'all passed'}", flush=True)
    sys.exit(1 if failures else 0)
