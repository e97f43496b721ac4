"""The webhook's HTTPS server (webservice.webhook.server) and command (webservice-admission).

A real server on 127.0.0.1 with a throwaway CA (tests/standin/certs.py): in this process for
the HTTP behaviour and certificate reload, as ``python -m webservice.webhook serve`` for
SIGTERM, environment variables and command-line errors. Nothing waits on the clock: every
step waits for a response, a log line or the end of a connection.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.standin.certs import Authority
from webservice.errors import ConfigError
from webservice.webhook import config as webhook_config
from webservice.webhook.server import WebhookServer

ROOT = Path(__file__).resolve().parent.parent
ENV_NAMES = ("LISTENON", "TLSCERT", "TLSKEY", "DOMAINS", "DEBUG", "GATEWAYS", "CATCHALLTOOL", "EXEMPTNAMESPACES",
             "LEGACYHOST", "MAXBODYBYTES")


class Pki:
    def __init__(self, directory: Path):
        self.dir = directory
        self.ca = Authority.create("webhook-test-ca")
        self.ca_file = self.write("ca.crt", self.ca.cert_pem)
        self.cert_file = str(directory / "cert.pem")
        self.key_file = str(directory / "key.pem")
        self.rotate("webhook-1")

    def write(self, name: str, data: bytes) -> str:
        path = self.dir / name
        tmp = self.dir / (name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # a new inode, as a kubelet secret volume swap gives
        return str(path)

    def rotate(self, cn: str) -> bytes:
        cert, key = self.ca.issue(cn, server=True)
        self.write("key.pem", key)
        self.write("cert.pem", cert)
        return ssl.PEM_cert_to_DER_cert(cert.decode())

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


def start(pki: Pki, **flags) -> WebhookServer:
    config = webhook_config.load({"listen": "127.0.0.1:0", "tls_cert": pki.cert_file, "tls_key": pki.key_file,
                                  **flags}, environ={})
    server = WebhookServer(config)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def server(pki):
    server = start(pki)
    yield server
    server.shutdown()
    assert server.drain(10)
    server.close_pipe()


def connect(server, pki) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", server.port, context=pki.context(), timeout=30)


def admission_review(host: str, namespace: str = "tool-tool", uid: str = "uid-1") -> dict:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": uid, "kind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
                        "namespace": namespace, "operation": "CREATE", "name": "x",
                        "object": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                                   "metadata": {"name": "x", "namespace": namespace},
                                   "spec": {"rules": [{"host": host}]}}}}


def post(conn, body, path="/", headers=None) -> tuple[int, dict, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def get(conn, path) -> tuple[int, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


# --- reviews over HTTPS -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/validate", "/?timeout=10s", "/validate?timeout=30s"])
def test_uid_echoed_and_decisions(server, pki, path):
    conn = connect(server, pki)
    status, headers, body = post(conn, admission_review("tool.toolforge.org", uid="allowed-uid"), path)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["response"] == {"uid": "allowed-uid", "allowed": True}
    status, _, body = post(conn, admission_review("tool.toolforge.org.example", uid="denied-uid"), path)
    response = json.loads(body)["response"]
    assert status == 200 and response["uid"] == "denied-uid" and response["allowed"] is False
    assert response["status"]["code"] == 403
    conn.close()


def test_keep_alive_many_reviews_on_one_connection(server, pki):
    conn = connect(server, pki)
    post(conn, admission_review("tool.toolforge.org", uid="first"))
    sock = conn.sock
    for i in range(50):
        status, _, body = post(conn, admission_review("tool.toolforge.org", uid=f"u{i}"))
        assert status == 200 and json.loads(body)["response"]["uid"] == f"u{i}"
    assert conn.sock is sock  # the same connection throughout
    conn.close()


def test_pipelined_requests_are_all_answered(server, pki):
    reviews = [json.dumps(admission_review("tool.toolforge.org", uid=f"p{i}")).encode() for i in range(3)]
    data = b"".join(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(r), r) for r in reviews)
    with socket.create_connection(("127.0.0.1", server.port)) as raw, \
            pki.context().wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(data)
        reader = sock.makefile("rb")
        for i in range(3):
            assert reader.readline().startswith(b"HTTP/1.1 200")
            length = 0
            while (line := reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert json.loads(reader.read(length))["response"]["uid"] == f"p{i}"


@pytest.mark.parametrize(
    "body",
    [b"", b"garbage", b"{", b"[1, 2]", b'{"kind": "AdmissionReview"}', b'{"request": {"uid": ""}}',
     b"\xff\xfe", b"[" * 100000 + b"]" * 100000],
    ids=["empty", "garbage", "truncated", "list", "no-request", "empty-uid", "not-utf8", "deeply-nested"],
)
def test_invalid_bodies_get_400_and_the_connection_keeps_working(server, pki, body):
    conn = connect(server, pki)
    status, _, text = post(conn, body)
    assert status == 400 and b"invalid AdmissionReview" in text
    status, _, answer = post(conn, admission_review("tool.toolforge.org", uid="after"))
    assert status == 200 and json.loads(answer)["response"]["uid"] == "after"
    conn.close()


@pytest.mark.parametrize("method,path,code", [("GET", "/nope", 404), ("POST", "/mutate", 404),
                                              ("GET", "/", 405), ("GET", "/validate", 405),
                                              ("POST", "/healthz", 405), ("DELETE", "/metrics", 405)])
def test_other_paths_and_methods(server, pki, method, path, code):
    conn = connect(server, pki)
    conn.request(method, path, body=b"{}" if method == "POST" else None)
    response = conn.getresponse()
    assert response.status == code
    response.read()
    assert get(conn, "/healthz") == (200, b"ok\n")  # still in step on the same connection
    conn.close()


def test_body_over_the_limit_gets_413_without_being_read(server, pki):
    limit = 3 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", server.port)) as raw, \
            pki.context().wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (limit + 1))
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"HTTP/1.1 413")
        headers = []
        while (line := reader.readline()) != b"\r\n":
            headers.append(line.lower())
        assert b"connection: close\r\n" in headers
    conn = connect(server, pki)
    status, _, _ = post(conn, b"x" * (limit - 1))  # just under: read, and refused as not JSON
    assert status == 400
    conn.close()


def test_chunked_body_over_the_limit_gets_413(pki):
    server = start(pki, max_body_bytes="2048")
    try:
        conn = connect(server, pki)
        conn.request("POST", "/", body=iter([b"x" * 1500, b"y" * 1500]), encode_chunked=True)
        assert conn.getresponse().status == 413
        conn = connect(server, pki)
        body = json.dumps(admission_review("tool.toolforge.org", uid="chunked")).encode()
        conn.request("POST", "/", body=iter([body[:100], body[100:]]), encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["response"]["uid"] == "chunked"
    finally:
        server.shutdown()
        server.drain(10)


def test_healthz(server, pki):
    assert get(connect(server, pki), "/healthz") == (200, b"ok\n")


def test_metrics_count_decisions_reasons_latency_and_invalid_requests(server, pki):
    conn = connect(server, pki)

    def scrape():
        status, body = get(conn, "/metrics")
        assert status == 200
        return body.decode()

    before = scrape()
    post(conn, admission_review("tool.toolforge.org"))
    post(conn, admission_review("tool.toolforge.org.example"))
    post(conn, admission_review("*.toolforge.org"))
    post(conn, b"garbage")
    after = scrape()
    assert "# TYPE webservice_admission_review_duration_seconds histogram" in after
    for name, delta in [('webservice_admission_reviews_total{decision="allowed"}', 1),
                        ('webservice_admission_reviews_total{decision="denied"}', 2),
                        ('webservice_admission_denials_total{reason="host-not-allowed"}', 1),
                        ('webservice_admission_denials_total{reason="wildcard-host"}', 1),
                        ('webservice_admission_invalid_requests_total{code="400"}', 1),
                        ("webservice_admission_review_duration_seconds_count", 3),
                        ('webservice_admission_review_duration_seconds_bucket{le="+Inf"}', 3)]:
        assert metric(after, name) - metric(before, name) == delta, name
    assert metric(after, "webservice_admission_review_duration_seconds_sum") > 0


# --- certificate reload --------------------------------------------------------------------------


def peer_der(sock) -> bytes:
    return sock.getpeercert(binary_form=True)


def test_certificate_reload_serves_the_new_cert_and_keeps_open_connections(server, pki):
    first = ssl.PEM_cert_to_DER_cert(Path(pki.cert_file).read_text())
    old = connect(server, pki)
    assert post(old, admission_review("tool.toolforge.org", uid="before"))[0] == 200
    assert peer_der(old.sock) == first

    second = pki.rotate("webhook-2")
    assert second != first
    new = connect(server, pki)
    assert post(new, admission_review("tool.toolforge.org", uid="new"))[0] == 200
    assert peer_der(new.sock) == second
    # the kept-alive connection made before the rotation still works, on its own session
    status, _, body = post(old, admission_review("tool.toolforge.org", uid="still"))
    assert status == 200 and json.loads(body)["response"]["uid"] == "still"
    assert peer_der(old.sock) == first
    _, text = get(new, "/metrics")
    assert metric(text.decode(), 'webservice_admission_certificate_reloads_total{result="ok"}') == 1


def test_a_bad_rotation_keeps_the_old_certificate_until_a_good_one(server, pki):
    first = ssl.PEM_cert_to_DER_cert(Path(pki.cert_file).read_text())
    pki.write("cert.pem", b"-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    conn = connect(server, pki)
    assert post(conn, admission_review("tool.toolforge.org"))[0] == 200
    assert peer_der(conn.sock) == first
    _, text = get(conn, "/metrics")
    assert metric(text.decode(), 'webservice_admission_certificate_reloads_total{result="error"}') == 1
    third = pki.rotate("webhook-3")
    conn = connect(server, pki)
    assert post(conn, admission_review("tool.toolforge.org"))[0] == 200
    assert peer_der(conn.sock) == third


def test_a_failed_handshake_does_not_stop_the_server(server, pki):
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")  # plain HTTP to the TLS port
        raw.settimeout(30)
        try:
            raw.recv(100)
        except (ConnectionError, OSError):
            pass
    assert get(connect(server, pki), "/healthz") == (200, b"ok\n")


# --- the command ---------------------------------------------------------------------------------


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


class Command:
    """``python -m webservice.webhook serve ...`` as a subprocess, its port read from its log."""

    def __init__(self, args, env):
        self.proc = subprocess.Popen([sys.executable, "-m", "webservice.webhook", "serve", *args], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=str(ROOT))
        self.lines = []
        self.port = None
        match = self.wait_for_line(r"listening on https://127\.0\.0\.1:(\d+)")
        self.port = int(match.group(1))

    def wait_for_line(self, pattern: str):
        for line in self.proc.stderr:
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern!r} (exit {self.proc.wait()}): {''.join(self.lines)}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.communicate(timeout=60)


def test_environment_variables_of_the_go_webhook(pki):
    env = clean_env(LISTENON="127.0.0.1:0", TLSCERT=pki.cert_file, TLSKEY=pki.key_file, DOMAINS="example.org, x.test",
                    DEBUG="true")
    command = Command([], env)
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", command.port, context=pki.context(), timeout=30)
        assert json.loads(post(conn, admission_review("tool.x.test"))[2])["response"]["allowed"] is True
        assert json.loads(post(conn, admission_review("tool.toolforge.org"))[2])["response"]["allowed"] is False
        command.wait_for_line(r"allowed CREATE tool-tool/x")  # DEBUG=true logs every review
    finally:
        command.stop()


def test_flags_override_environment(pki):
    env = clean_env(LISTENON="127.0.0.1:1", TLSCERT="/nonexistent", TLSKEY="/nonexistent", DOMAINS="example.org")
    command = Command(["--listen", "127.0.0.1:0", "--tls-cert", pki.cert_file, "--tls-key", pki.key_file,
                       "--domains", "toolforge.org"], env)
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", command.port, context=pki.context(), timeout=30)
        assert json.loads(post(conn, admission_review("tool.toolforge.org"))[2])["response"]["allowed"] is True
        assert json.loads(post(conn, admission_review("tool.example.org"))[2])["response"]["allowed"] is False
    finally:
        command.stop()


def read_until_closed(sock) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_sigterm_finishes_requests_in_flight_and_closes_idle_connections(pki):
    command = Command(["--listen", "127.0.0.1:0", "--tls-cert", pki.cert_file, "--tls-key", pki.key_file], clean_env())
    context = pki.context()

    def open_connection():
        sock = context.wrap_socket(socket.create_connection(("127.0.0.1", command.port)),
                                   server_hostname="localhost")
        sock.settimeout(60)  # a guard against hanging, never reached when all goes well
        return sock

    def request(body: bytes) -> bytes:
        return b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    try:
        idle = http.client.HTTPSConnection("127.0.0.1", command.port, context=context, timeout=60)
        assert post(idle, admission_review("tool.toolforge.org"))[0] == 200  # now idle, kept alive
        busy = open_connection()
        busy.sendall(request(json.dumps(admission_review("tool.toolforge.org", uid="warm")).encode()))
        assert b'"uid":"warm"' in busy.recv(65536)  # accepted and answered once
        body = json.dumps(admission_review("tool.toolforge.org", uid="in-flight")).encode()
        busy.sendall(request(body)[:-10])  # a request in flight: its last bytes not sent yet

        command.proc.terminate()
        command.wait_for_line(r"SIGTERM received")
        assert read_until_closed(idle.sock) == b""  # the idle connection is closed by the server
        busy.sendall(body[-10:])
        answer = read_until_closed(busy)  # answered, then closed
        assert answer.startswith(b"HTTP/1.1 200") and b"Connection: close" in answer
        assert b'"uid":"in-flight"' in answer
        out, err = command.proc.communicate(timeout=60)
        assert command.proc.returncode == 0, err
        assert "stopped" in err and "Traceback" not in err
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", command.port)).close()
    finally:
        command.stop()


def run_cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "webservice.webhook", *args], capture_output=True, text=True,
                          env=env or clean_env(), stdin=subprocess.DEVNULL, timeout=60, cwd=str(ROOT))


@pytest.mark.parametrize(
    "args,env,fragment",
    [
        (["--listen", "nope"], {}, "option --listen: 'nope' is not [host]:port"),
        (["--listen", "127.0.0.1:99999"], {}, "option --listen"),
        ([], {"LISTENON": "8080"}, "environment variable LISTENON: '8080'"),
        ([], {"DEBUG": "maybe"}, "environment variable DEBUG: 'maybe' is not a boolean"),
        ([], {"DOMAINS": " , "}, "environment variable DOMAINS"),
        (["--domains", "tool\u0455forge.org"], {}, "not a lowercase ASCII DNS name"),
        (["--domains", "xn--80ak6aa92e.org"], {}, "not a lowercase ASCII DNS name"),
        (["--gateways", "toolforge"], {}, "write each as <namespace>/<name>"),
        (["--catch-all-tool", "Four Oh Four"], {}, "option --catch-all-tool"),
        (["--exempt-namespaces", "kube_system"], {}, "option --exempt-namespaces"),
        (["--legacy-host", "tools wmflabs org"], {}, "option --legacy-host"),
        (["--max-body-bytes", "lots"], {}, "option --max-body-bytes"),
        (["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"], {}, "/nonexistent/cert.pem"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_bad_configuration_is_one_line_and_exit_2(args, env, fragment, pki):
    base = ["--tls-cert", pki.cert_file, "--tls-key", pki.key_file]
    result = run_cli("serve", *base, *args, env=clean_env(**{"LISTENON": "127.0.0.1:0", **env}))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("webservice-admission: "), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_certificate_and_key_that_do_not_match(pki, tmp_path):
    _, other_key = pki.ca.issue("other", server=True)
    key = tmp_path / "other.key"
    key.write_bytes(other_key)
    result = run_cli("serve", "--listen", "127.0.0.1:0", "--tls-cert", pki.cert_file, "--tls-key", str(key))
    assert result.returncode == 2
    assert result.stderr.startswith("webservice-admission: cannot load the TLS certificate/key")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_port_in_use_is_one_line(pki):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--listen", f"127.0.0.1:{port}", "--tls-cert", pki.cert_file,
                         "--tls-key", pki.key_file)
    assert result.returncode == 2 and "cannot start" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_help_names_the_serve_command_and_its_flags():
    result = run_cli("--help")
    assert result.returncode == 0 and "serve" in result.stdout
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    for flag in ("--listen", "--tls-cert", "--tls-key", "--domains", "--debug", "--gateways", "--catch-all-tool",
                 "--exempt-namespaces", "--legacy-host", "--max-body-bytes", "--shutdown-timeout"):
        assert flag in result.stdout, flag


def test_main_is_the_entry_point():
    from webservice.webhook.cli import main

    assert main(["--help"]) == 0


# --- configuration layering ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags,environ,expected",
    [
        ({}, {}, {"host": "0.0.0.0", "port": 8080, "tls_cert": "/etc/webhook/certs/cert.pem",
                  "tls_key": "/etc/webhook/certs/key.pem",
                  "domains": ("toolforge.org", "toolsbeta.wmflabs.org", "toolsbeta.wmcloud.org"), "debug": False,
                  "gateways": (("istio-gateway", "toolforge"),), "catch_all_tool": "fourohfour",
                  "exempt_namespaces": frozenset({"kube-system"}), "legacy_host": "",
                  "max_body_bytes": 3 * 1024 * 1024}),
        ({}, {"LISTENON": ":8443"}, {"host": "", "port": 8443}),
        ({}, {"LISTENON": "[::]:8443"}, {"host": "::", "port": 8443}),
        ({}, {"DOMAINS": "Toolforge.ORG,beta.toolforge.org"}, {"domains": ("toolforge.org", "beta.toolforge.org")}),
        ({}, {"DEBUG": "1"}, {"debug": True}),
        ({}, {"DEBUG": "F"}, {"debug": False}),
        ({"debug": False}, {"DEBUG": "true"}, {"debug": False}),
        ({}, {"GATEWAYS": "istio-gateway/toolforge, istio-gateway/internal"},
         {"gateways": (("istio-gateway", "toolforge"), ("istio-gateway", "internal"))}),
        ({}, {"CATCHALLTOOL": ""}, {"catch_all_tool": ""}),
        ({}, {"EXEMPTNAMESPACES": "kube-system,tool-admin"}, {"exempt_namespaces": frozenset({"kube-system",
                                                                                               "tool-admin"})}),
        ({}, {"LEGACYHOST": "Tools.WMFlabs.org"}, {"legacy_host": "tools.wmflabs.org"}),
        ({"listen": "127.0.0.1:0"}, {"LISTENON": "0.0.0.0:1"}, {"host": "127.0.0.1", "port": 0}),
    ],
)
def test_configuration_layering(flags, environ, expected):
    config = webhook_config.load(flags, environ=environ)
    for key, value in expected.items():
        assert getattr(config, key) == value, key


def test_empty_gateways_means_parents_are_not_checked():
    assert webhook_config.load({}, environ={"GATEWAYS": ""}).policy().gateways is None


def test_config_error_names_the_source():
    with pytest.raises(ConfigError, match=r"^environment variable MAXBODYBYTES: '10' is too small"):
        webhook_config.load({}, environ={"MAXBODYBYTES": "10"})


@pytest.mark.parametrize("args,fragment", [(["serve", "--bogus"], "--bogus"),
                                           (["nope"], "No such command 'nope'"),
                                           (["serve", "--shutdown-timeout", "x"], "'--shutdown-timeout'")])
def test_usage_errors_are_one_line(args, fragment):
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("webservice-admission: ") and fragment in lines[0], result.stderr


def test_no_command_shows_the_help_and_exits_2():
    result = run_cli()
    assert result.returncode == 2 and "serve" in result.stderr and "Traceback" not in result.stderr
