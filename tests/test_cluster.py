"""webservice.kube.cluster against the stand-in: kubeconfig reading, every error class, retries,
watches, logs, debug output, request counts, and what it must not import."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from webservice import errors
from webservice.kube.cluster import Cluster, load_credentials
from webservice.builders.objects import selector
from webservice.model.tool import Tool

ROOT = Path(__file__).resolve().parent.parent


def tool(name="mytool", home="/nonexistent"):
    return Tool(name=name, project="tools", home=str(home), source="override")


@pytest.fixture
def cluster(standin, kubeconfig):
    c = Cluster.connect(tool(), kubeconfig=[Path(kubeconfig)], backoff=0.01)
    yield c
    c.close()


def configmap(name, **labels):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels or {"app.kubernetes.io/component": "web",
                                                             "app.kubernetes.io/managed-by": "webservice"}},
            "data": {"a": "b"}}


def service(name):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/component": "web",
                                                  "app.kubernetes.io/managed-by": "webservice"}},
            "spec": {"selector": {"name": name}, "ports": [{"name": "http", "port": 8000, "targetPort": 8000}]}}


# --- kubeconfig -------------------------------------------------------------------------------


def test_missing_kubeconfig_names_the_path(tmp_path):
    with pytest.raises(errors.KubeconfigError) as caught:
        Cluster.connect(tool(), kubeconfig=[tmp_path / "nope" / "config"])
    assert str(tmp_path / "nope" / "config") in caught.value.message
    assert "become" in caught.value.hint
    assert caught.value.exit_code == errors.EXIT_CLUSTER


def test_kubeconfig_from_environment_and_home(standin, tmp_path, monkeypatch):
    path = standin.kubeconfig(str(tmp_path / "k" / "config"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing") + os.pathsep + path)
    assert load_credentials().server == standin.url
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(errors.KubeconfigError, match=str(tmp_path / "home" / ".kube" / "config")):
        load_credentials()


def test_relative_certificate_paths_resolve_from_the_kubeconfig(ws_env):
    data = yaml.safe_load(Path(ws_env.kubeconfig).read_text())
    assert data["users"][0]["user"]["client-certificate"].startswith("../")
    c = Cluster.connect(tool(), kubeconfig=[Path(ws_env.kubeconfig)])
    assert c.list("Deployment")[0] == []


def test_unreadable_certificate_names_the_file(ws_env):
    cert = Path(ws_env.home) / ".toolskube" / "client.crt"
    cert.unlink()
    with pytest.raises(errors.KubeconfigError) as caught:
        Cluster.connect(tool(), kubeconfig=[Path(ws_env.kubeconfig)])
    assert str(cert.resolve()) in caught.value.message.replace("/.kube/../", "/") or "client.crt" in caught.value.message


def test_garbage_certificate_is_a_kubeconfig_error(ws_env):
    (Path(ws_env.home) / ".toolskube" / "client.crt").write_text("not a certificate\n")
    with pytest.raises(errors.KubeconfigError, match="client certificate"):
        Cluster.connect(tool(), kubeconfig=[Path(ws_env.kubeconfig)])


@pytest.mark.parametrize("content,match", [
    ("{not: yaml: at all", "not valid YAML"),
    ("- a list", "not a YAML mapping"),
    ("apiVersion: v1\nclusters: []\n", "no current-context"),
    ("current-context: x\ncontexts: []\n", "no context named 'x'"),
])
def test_broken_kubeconfigs(tmp_path, content, match):
    path = tmp_path / "config"
    path.write_text(content)
    with pytest.raises(errors.KubeconfigError, match=match):
        Cluster.connect(tool(), kubeconfig=[path])


_BOMB = "".join(f"      - &l{i} [" + ",".join([f"*l{i - 1}" if i else "lol"] * 9) + "]\n" for i in range(8))
_CONTEXT = "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n"


@pytest.mark.parametrize("content,match", [
    ("clusters: 1\n", "clusters is not a list"),
    ("clusters: " + "[" * 3000 + "]" * 3000 + "\n", "nested deeper|nesting depth"),
    ("clusters: " + "[" * 40 + "]" * 40 + "\n", "nested deeper"),
    ("current-context: 2024-13-45\n", "not usable"),
    ("current-context: x\nclusters:\n  - name:\n" + _BOMB, "aliases"),
    ("current-context: [x]\n", "current-context is not a name"),
    (_CONTEXT + "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:99999'}}]\n", "no valid server URL"),
    (_CONTEXT + "clusters: [{name: c, cluster: {server: 'https://[::1'}}]\n", "no valid server URL"),
    (_CONTEXT.replace("cluster: c,", "cluster: c, namespace: [1],")
     + "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n", "namespace is not a string"),
    (_CONTEXT.replace("user: {}", "user: {token: 5}")
     + "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]\n", "token is not a string"),
])
def test_damaged_kubeconfigs_are_one_clear_error(tmp_path, content, match):
    """Shapes that once gave an internal error (TypeError, RecursionError, ValueError) or hung."""
    path = tmp_path / "config"
    path.write_text(content)
    began = time.monotonic()
    with pytest.raises(errors.KubeconfigError, match=match):
        Cluster.connect(tool(), kubeconfig=[path])
    assert time.monotonic() - began < 20  # a hang, not a slow machine


def test_unusable_inline_certificate_is_named_once(tmp_path):
    path = tmp_path / "config"
    path.write_text("current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: tool-mytool}}]\n"
                    "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9', insecure-skip-tls-verify: true}}]\n"
                    "users: [{name: u, user: {client-certificate-data: aGVsbG8=, client-key-data: aGVsbG8=}}]\n")
    with pytest.raises(errors.KubeconfigError) as caught:
        Cluster.connect(tool(), kubeconfig=[path])
    assert f"the client certificate in {path} or its key cannot be used" in caught.value.message
    assert "the client certificate the client certificate" not in caught.value.message


def test_inline_certificate_data(standin, tmp_path):
    cert_pem, key_pem = standin.pki.client_pem("mytool")
    config = yaml.safe_load(Path(standin.kubeconfig(str(tmp_path / "config"))).read_text())
    config["users"][0]["user"] = {"client-certificate-data": base64.b64encode(cert_pem).decode(),
                                  "client-key-data": base64.b64encode(key_pem).decode()}
    ca = Path(standin.ca_file).read_bytes()
    config["clusters"][0]["cluster"] = {"server": standin.url, "certificate-authority-data": base64.b64encode(ca).decode()}
    (tmp_path / "config").write_text(yaml.safe_dump(config))
    c = Cluster.connect(tool(), kubeconfig=[tmp_path / "config"])
    assert c.list("Pod")[0] == []
    assert not list(tmp_path.glob("webservice-*"))


def test_namespace_of_another_tool_is_refused_before_any_request(standin, tmp_path):
    path = standin.kubeconfig(str(tmp_path / "config"), user="othertool")
    with pytest.raises(errors.KubeconfigError, match="tool-othertool, not tool-mytool"):
        Cluster.connect(tool(), kubeconfig=[Path(path)])
    assert standin.requests == []


# --- objects and request counts --------------------------------------------------------------


def test_apply_get_list_delete_round_trip(cluster, standin):
    standin.clear_requests()
    created = cluster.apply(configmap("one"))
    assert created["metadata"]["namespace"] == "tool-mytool"
    again = cluster.apply(configmap("one"))  # server-side apply converges
    assert again["metadata"]["uid"] == created["metadata"]["uid"]
    assert cluster.get("ConfigMap", "one")["data"] == {"a": "b"}
    assert cluster.get("ConfigMap", "missing") is None
    items, version = cluster.list("ConfigMap", label_selector=selector())
    assert [i["metadata"]["name"] for i in items] == ["one"] and version
    assert items[0]["kind"] == "ConfigMap"
    assert cluster.delete("ConfigMap", "one") is True
    assert cluster.delete("ConfigMap", "one") is False
    assert cluster.requests == len(standin.requests) == 7
    patch = standin.requests_for("PATCH")[0]
    assert patch.query.get("fieldManager") == "webservice" and patch.query.get("force") == "true"
    assert patch.content_type.startswith("application/apply-patch+yaml")
    assert not standin.requests_for(path="/version") and not standin.requests_for(path="/apis/apps/v1/")


def test_delete_checks_labels_and_uid(cluster, standin):
    cluster.apply(configmap("theirs", app="jobs"))
    with pytest.raises(errors.ForbiddenError, match="does not carry the webservice's labels"):
        cluster.delete("ConfigMap", "theirs", expect_labels={"app.kubernetes.io/managed-by": "webservice"})
    assert standin.get("ConfigMap", "tool-mytool", "theirs") is not None
    mine = cluster.apply(configmap("mine"))
    assert cluster.delete("ConfigMap", "mine", uid="some-other-uid") is False
    assert standin.get("ConfigMap", "tool-mytool", "mine") is not None
    assert cluster.delete("ConfigMap", "mine", uid=mine["metadata"]["uid"]) is True


def test_read_config_map_in_another_namespace(cluster):
    image_config = cluster.read_config_map("tf-public", "image-config")
    assert "images-v1.yaml" in image_config["data"]


def test_missing_kind_lists_as_empty_when_allowed(cluster, standin):
    standin.add_fault(status=404, path="/httproutes", times=5)
    assert cluster.list("HTTPRoute", missing_ok=True) == ([], "")


# --- every error class --------------------------------------------------------------------------


def test_401_without_certificate(standin, tmp_path):
    path = standin.kubeconfig(str(tmp_path / "config"), with_cert=False)
    c = Cluster.connect(tool(), kubeconfig=[Path(path)])
    with pytest.raises(errors.AuthenticationError) as caught:
        c.list("Pod")
    assert "401" in caught.value.message and standin.url in caught.value.message
    assert "renews" in caught.value.hint


def test_401_foreign_certificate(standin, tmp_path):
    path = standin.kubeconfig(str(tmp_path / "config"), foreign=True)
    c = Cluster.connect(tool(), kubeconfig=[Path(path)])
    with pytest.raises(errors.AuthenticationError):
        c.list("Pod")


def test_403_other_namespace(cluster):
    with pytest.raises(errors.ForbiddenError) as caught:
        cluster.list("Pod", namespace="tool-othertool")
    assert "forbidden" in caught.value.message.lower()
    assert "become" in caught.value.hint
    assert caught.value.exit_code == errors.EXIT_CLUSTER


def test_403_quota_exceeded(cluster, standin):
    cluster.apply(service("first"))
    with pytest.raises(errors.QuotaExceededError) as caught:
        cluster.apply(service("second"))
    assert "exceeded quota" in caught.value.message


def test_404_and_409_and_422(cluster, standin):
    with pytest.raises(errors.NotFoundError):
        cluster.request("GET", "/api/v1/namespaces/tool-mytool/nothings")
    standin.add_fault(status=409, method="PATCH")
    with pytest.raises(errors.ConflictError) as caught:
        cluster.apply(configmap("x"))
    assert "again" in caught.value.hint
    bad = configmap("y")
    bad["data"] = {"a": 1}  # ConfigMap data values must be strings
    with pytest.raises(errors.InvalidObjectError) as caught:
        cluster.apply(bad)
    assert "ConfigMap" in caught.value.message or "configmap" in caught.value.message.lower()


@pytest.mark.parametrize("code", [429, 500, 503])
def test_idempotent_requests_are_retried(cluster, standin, code):
    standin.add_fault(status=code, method="GET", path="/pods", times=2)
    standin.clear_requests()
    assert cluster.list("Pod")[0] == []
    assert len(standin.requests_for("GET", "/pods")) == 3


def test_server_errors_give_up_with_a_clear_message(cluster, standin):
    standin.add_fault(status=503, method="GET", path="/pods", times=100)
    with pytest.raises(errors.ServerError) as caught:
        cluster.list("Pod")
    assert "503" in caught.value.message and standin.url in caught.value.message
    assert len(standin.requests_for("GET", "/pods")) == 5  # 1 + 4 retries


def test_apply_is_retried_on_503(cluster, standin):
    standin.add_fault(status=503, method="PATCH", times=1)
    cluster.apply(configmap("z"))
    assert len(standin.requests_for("PATCH")) == 2


def test_retry_after_is_honoured(cluster, standin):
    standin.add_fault(status=429, method="GET", path="/pods", times=1, retry_after=1)
    begin = time.monotonic()
    cluster.list("Pod")
    assert time.monotonic() - begin >= 0.9


def test_dropped_connection_is_retried(cluster, standin):
    standin.add_fault(action="drop", method="GET", path="/pods", times=1)
    assert cluster.list("Pod")[0] == []
    assert len(standin.requests_for("GET", "/pods")) >= 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kubeconfig_for(standin, tmp_path, server):
    path = Path(standin.kubeconfig(str(tmp_path / "config")))
    config = yaml.safe_load(path.read_text())
    config["clusters"][0]["cluster"]["server"] = server
    path.write_text(yaml.safe_dump(config))
    return path


def test_connection_refused_names_the_server(standin, tmp_path):
    server = f"https://127.0.0.1:{_closed_port()}"
    c = Cluster.connect(tool(), kubeconfig=[_kubeconfig_for(standin, tmp_path, server)], backoff=0.01)
    with pytest.raises(errors.ConnectionFailedError) as caught:
        c.list("Pod")
    assert server in caught.value.message and "refused" in caught.value.message


def test_silent_server_times_out(standin, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    threading.Thread(target=lambda: [accepted.append(listener.accept()) for _ in range(8)], daemon=True).start()
    server = f"https://127.0.0.1:{listener.getsockname()[1]}"
    c = Cluster.connect(tool(), kubeconfig=[_kubeconfig_for(standin, tmp_path, server)], timeout=0.3, retries=1,
                        backoff=0.01)
    begin = time.monotonic()
    with pytest.raises(errors.ConnectionFailedError) as caught:
        c.list("Pod")
    assert time.monotonic() - begin < 30  # a hang, not a slow machine
    assert server in caught.value.message
    listener.close()


def test_untrusted_server_certificate(standin, tmp_path):
    path = Path(standin.kubeconfig(str(tmp_path / "config")))
    config = yaml.safe_load(path.read_text())
    cert, _ = standin.pki.client_files("mytool", foreign=True)  # any certificate but the CA
    config["clusters"][0]["cluster"]["certificate-authority"] = cert
    path.write_text(yaml.safe_dump(config))
    try:
        c = Cluster.connect(tool(), kubeconfig=[path])
    except errors.KubeconfigError:
        return  # refused as a CA: also a clear, early error
    with pytest.raises(errors.ClusterError, match="does not trust|certificate"):
        c.list("Pod")


def test_server_certificate_for_another_name_is_refused(standin, tmp_path):
    path = Path(standin.kubeconfig(str(tmp_path / "config")))
    config = yaml.safe_load(path.read_text())
    config["clusters"][0]["cluster"]["tls-server-name"] = "elsewhere.example.org"
    path.write_text(yaml.safe_dump(config))
    c = Cluster.connect(tool(), kubeconfig=[path], retries=0)
    with pytest.raises(errors.ConnectionFailedError, match="not valid for that name"):
        c.list("Pod")
    config["clusters"][0]["cluster"]["tls-server-name"] = "localhost"
    path.write_text(yaml.safe_dump(config))
    assert Cluster.connect(tool(), kubeconfig=[path]).list("Pod")[0] == []


# --- debug ----------------------------------------------------------------------------------------


def test_debug_logs_requests_without_credentials(standin, tmp_path, capsys):
    path = Path(standin.kubeconfig(str(tmp_path / "config")))
    config = yaml.safe_load(path.read_text())
    config["users"][0]["user"]["token"] = "s3cr3t-token"
    path.write_text(yaml.safe_dump(config))
    c = Cluster.connect(tool(), kubeconfig=[path], debug=True)
    c.list("Pod", label_selector=selector())
    c.get("Deployment", "nope")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("webservice: debug:")]
    assert len(lines) == 2
    assert "GET /api/v1/namespaces/tool-mytool/pods?labelSelector=" in lines[0] and "-> 200" in lines[0]
    assert "-> 404" in lines[1] and " ms)" in lines[1]
    assert "s3cr3t" not in err and "BEGIN" not in err


# --- watch and logs -------------------------------------------------------------------------------


def test_watch_starts_with_current_objects_then_changes(cluster, standin):
    cluster.apply(configmap("before"))
    seen = []
    for kind_of, obj in cluster.watch("ConfigMap", label_selector=selector(), timeout=30):
        seen.append((kind_of, obj["metadata"]["name"]))
        if seen == [("ADDED", "before")]:  # the watch is there: now the change
            standin.create(configmap("after"), namespace="tool-mytool")
        if ("ADDED", "after") in seen:
            break
    assert seen[0] == ("ADDED", "before") and ("ADDED", "after") in seen


def test_watch_from_version_ticks_and_ends_at_timeout(cluster, standin):
    _, version = cluster.list("ConfigMap")
    begin = time.monotonic()
    got = list(cluster.watch("ConfigMap", resource_version=version, timeout=1.2, tick=0.5))
    assert 1.0 <= time.monotonic() - begin < 30
    assert got and all(item == (None, None) for item in got)


def test_watch_of_several_kinds_and_expired_version(cluster, standin):
    _, version = cluster.list("ConfigMap")
    cluster.apply(configmap("c1"))
    standin.compact()
    synced = {}
    for kind_of, obj in cluster.watch("ConfigMap", "Service", resource_version=version, timeout=5):
        if kind_of == "SYNC":
            synced[obj["kind"]] = obj["items"]
        if len(synced) == 2:
            break
    assert "c1" in [o["metadata"]["name"] for o in synced["ConfigMap"]]
    assert synced["Service"] == []


def test_watch_errors_surface_in_the_caller(cluster, standin):
    standin.add_fault(status=403, path="/services", times=100)
    with pytest.raises(errors.ForbiddenError):
        for _ in cluster.watch("Service", timeout=3):
            pass


def test_pod_log_and_follow(cluster, standin):
    standin.scenario = "healthy"
    standin.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "labels": {"x": "y"}},
                    "spec": {"containers": [{"name": "c", "image": "img:1"}]}}, namespace="tool-mytool")
    standin.wait_for(lambda: (standin.get("Pod", "tool-mytool", "p1").get("status") or {}).get("phase") == "Running",
                     timeout=10)
    standin.wait_for(lambda: cluster.pod_log("p1", timestamps=False), timeout=10)
    text = cluster.pod_log("p1", timestamps=False, tail_lines=1)
    assert text.strip() and len(text.strip().splitlines()) == 1
    assert cluster.pod_log("p1", previous=True) == ""  # no previous container: not an error
    lines = cluster.pod_log("p1", follow=True, timestamps=False)
    first = next(lines)
    assert first
    standin.append_log("tool-mytool", "p1", "hello from the test")
    seen = []
    for line in lines:
        seen.append(line)
        if line == "hello from the test":
            break
    else:  # the stream ended without the appended line: follow did not follow
        pytest.fail(f"the appended line never came; the stream ended after {seen!r}")
    lines.close()
    assert seen[-1] == "hello from the test" and "hello from the test" not in text


# --- what it must not import ------------------------------------------------------------------


def test_kubernetes_is_not_imported_on_the_common_path():
    code = ("import sys, webservice.kube.cluster, webservice.actions.lifecycle, webservice.ui.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_exec_credential_plugin_through_the_official_loader(standin, tmp_path):
    """Kubeconfigs needing the official client (exec plugins) still work, via kubernetes.config."""
    cert_pem, key_pem = standin.pki.client_pem("mytool")
    plugin = tmp_path / "plugin.py"
    plugin.write_text("import json\nprint(json.dumps(" + repr({
        "apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
        "status": {"clientCertificateData": cert_pem.decode(), "clientKeyData": key_pem.decode()}}) + "))\n")
    path = Path(standin.kubeconfig(str(tmp_path / "config")))
    config = yaml.safe_load(path.read_text())
    config["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                                           "command": sys.executable, "args": [str(plugin)],
                                           "interactiveMode": "Never"}}
    path.write_text(yaml.safe_dump(config))
    c = Cluster.connect(tool(), kubeconfig=[path])
    assert c.namespace == "tool-mytool"
    assert c.list("Pod")[0] == []
    assert "kubernetes" in sys.modules


def test_public_interface_is_stable_and_only_cluster_imports_kubernetes():
    import re

    import webservice
    import webservice.kube.cluster as cluster

    assert set(cluster.__all__) == {"Cluster", "Credentials", "KINDS", "kubeconfig_paths", "load_credentials",
                                    "translate_http_error"}
    for name in cluster.__all__:
        assert getattr(cluster, name) is not None
    assert not hasattr(cluster, "follow_pod_log_since")  # logs.py calls pod_log(..., since_time=...)
    for method in ("apply", "get", "list", "delete", "delete_pod", "read_config_map", "events", "pod_log", "watch",
                   "request", "path", "close", "connect"):
        assert callable(getattr(cluster.Cluster, method))
    importer = re.compile(r"^\s*(import kubernetes|from kubernetes\b)", re.M)
    for path in Path(webservice.__file__).parent.glob("*.py"):
        if path.name != "cluster.py":
            assert not importer.search(path.read_text()), path.name


# --- the client certificate's own dates ------------------------------------------------------


def _cut_handshake_server():
    """A TCP server that accepts TLS connections and closes them at once (a handshake cut
    short, as a server refusing a certificate may do in TLS 1.3); counts connections."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    seen = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            seen.append(1)
            conn.recv(4096)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener, seen


@pytest.mark.parametrize("expired", [True, False], ids=["expired", "valid"])
def test_a_cut_handshake_with_an_expired_certificate_names_the_certificate(standin, tmp_path, expired):
    listener, seen = _cut_handshake_server()
    try:
        crt, key = standin.client_cert(expired=expired)
        path = tmp_path / "config"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "k", "cluster": {"server": f"https://127.0.0.1:{listener.getsockname()[1]}",
                                                  "certificate-authority": standin.ca_file}}],
            "users": [{"name": "u", "user": {"client-certificate": crt, "client-key": key}}],
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "tool-mytool"}}]}))
        c = Cluster.connect(tool(), kubeconfig=[path], backoff=0.01)
        with pytest.raises(errors.ClusterError) as caught:
            c.list("Deployment")
        c.close()
    finally:
        listener.close()
    message = caught.value.message
    if expired:  # said at once, from the certificate's own dates, without retrying
        assert isinstance(caught.value, errors.AuthenticationError)
        assert message.startswith(f"the client certificate {crt} expired on ")
        assert len(seen) == 1
    else:  # a valid certificate: a dropped connection (a restarting server), retried
        assert isinstance(caught.value, errors.ConnectionFailedError)
        assert "closed during the TLS handshake" in message
        assert len(seen) > 1


def test_an_expired_certificate_given_inline_is_named_by_its_kubeconfig(standin, tmp_path):
    crt, key = standin.client_cert(expired=True)
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": standin.url, "certificate-authority": standin.ca_file}}],
        "users": [{"name": "u", "user": {
            "client-certificate-data": base64.b64encode(Path(crt).read_bytes()).decode(),
            "client-key-data": base64.b64encode(Path(key).read_bytes()).decode()}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "tool-mytool"}}]}))
    credentials = load_credentials([path])
    problem = credentials.certificate_problem()
    assert problem.startswith(f"the client certificate in {path} expired on ")
    assert credentials.certificate_problem(now=credentials.certificate.not_after - 60) is None
    before = credentials.certificate.not_before - 60
    assert "is not valid before" in credentials.certificate_problem(now=before)
    c = Cluster.connect(tool(), kubeconfig=[path], backoff=0.01)
    with pytest.raises(errors.AuthenticationError) as caught:  # refused in TLS or with 401
        c.list("Deployment")
    c.close()
    assert caught.value.message.startswith(f"the client certificate in {path} expired on ")
    assert "renews" in caught.value.hint


# --- the 'become <tool>' hint only for someone who is not already that tool --------------------


@pytest.mark.parametrize("source,become", [("override", True), ("unix-user", False)])
def test_missing_kubeconfig_hint_depends_on_who_you_are(tmp_path, source, become):
    me = Tool(name="mytool", project="tools", home=str(tmp_path), source=source)
    with pytest.raises(errors.KubeconfigError) as caught:
        Cluster.connect(me, kubeconfig=[tmp_path / "nope" / "config"])
    assert ("become" in caught.value.hint) is become
    assert become or "#wikimedia-cloud" in caught.value.hint


@pytest.mark.parametrize("source,become", [("override", True), ("unix-user", False)])
def test_forbidden_hint_depends_on_who_you_are(standin, kubeconfig, source, become):
    me = Tool(name="mytool", project="tools", home="/nonexistent", source=source)
    c = Cluster.connect(me, kubeconfig=[Path(kubeconfig)], backoff=0.01)
    try:
        with pytest.raises(errors.ForbiddenError) as caught:
            c.list("Pod", namespace="tool-othertool")
    finally:
        c.close()
    assert ("become" in caught.value.hint) is become
