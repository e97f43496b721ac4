"""start, stop, restart and status end to end: the real CLI (a subprocess) against the
stand-in, for every scenario of issue 4, with the API requests each command makes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.standin.fixtures import deliver
from webservice.builders.objects import selector

OUR_TRACEBACK = re.compile(r'File "[^"]*/(webservice|urllib3|kubernetes|click|yaml)/')
WEB = {"app.kubernetes.io/component": "web", "app.kubernetes.io/managed-by": "webservice"}


@pytest.fixture
def env(python_env):
    return python_env


def run(env, *args, **kw):
    env.standin.clear_requests()
    result = env.run(*args, **kw)
    assert not OUR_TRACEBACK.search(result.stderr), result.stderr
    return result


def requests(env) -> list:
    return list(env.standin.requests)


def manifest(env) -> dict | None:
    path = Path(env.home) / "service.manifest"
    return yaml.safe_load(path.read_text()) if path.exists() else None


def web_objects(env) -> dict:
    ns = env.standin.namespace
    out = {}
    for kind in ("Deployment", "Service", "Ingress", "HTTPRoute"):
        out[kind] = [o["metadata"]["name"] for o in env.standin.objects(kind, ns)
                     if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in WEB.items())]
    return out


def status_json(env) -> tuple[int, dict]:
    result = run(env, "status", "--json")
    return result.returncode, json.loads(result.stdout)


def start_healthy(env, *args):
    result = run(env, "python3.11", "start", *args)
    assert result.returncode == 0, result.stderr
    return result


# --- start --------------------------------------------------------------------------------------


# (routing, name of the routing object, its kind, reads of a start, requests of a status)
ROUTINGS = [("httproute", "HTTPRoute", "mytool", 7, 4), ("ingress", "Ingress", "mytool-subdomain", 7, 4)]


@pytest.mark.parametrize("routing,route_kind,route_name,start_reads,status_requests", ROUTINGS)
def test_healthy_start_status_stop(env, routing, route_kind, route_name, start_reads, status_requests):
    if routing != "httproute":  # the default; another one comes from the config
        env.env["WEBSERVICE_ROUTING"] = routing
    result = run(env, "python3.11", "start")
    assert result.returncode == 0, result.stderr
    assert "mytool: started (python3.11), 1/1 pods ready" in result.stdout
    assert "https://mytool.toolforge.org/" in result.stdout
    assert "starting mytool:" in result.stderr  # plain progress lines: not a terminal
    sent = requests(env)
    # catalogue (cache empty) + deployments + limitranges + resourcequotas + services
    # + ingresses + httproutes (all of the namespace: other owners) + 3 applies + 4 watches (+ the HTTPRoute's; a watch not yet sent when
    # it is ready is not sent at all); no discovery, no polling
    watches = [r for r in sent if r.query.get("watch") == "true"]
    assert len(sent) - len(watches) == start_reads + 3, sent  # reads + 3 applies, exactly
    assert 1 <= len(watches) <= 5, sent  # how many are opened before it is ready varies
    assert [r.method for r in sent].count("PATCH") == 3
    assert len({(r.method, r.path, r.query.get("watch")) for r in sent}) == len(sent)  # nothing asked twice
    assert not [r for r in sent if r.path in ("/version", "/version/", "/api", "/apis")]
    routes = {"Ingress": [], "HTTPRoute": [], route_kind: [route_name]}
    assert web_objects(env) == {"Deployment": ["mytool"], "Service": ["mytool"], **routes}
    data = manifest(env)
    assert data["web"] == "python3.11" and data["backend"] == "kubernetes" and data["version"] == 4
    assert Path(env.home, "service.manifest").read_text().startswith("# This file is used by Toolforge")

    code, status = status_json(env)
    assert code == 0 and status["state"] == "running" and status["healthy"] is True
    assert status["type"] == "python3.11" and status["urls"] == ["https://mytool.toolforge.org/"]
    assert status["replicas"] == {"desired": 1, "ready": 1, "updated": 1}
    assert status["pods"][0]["ready"] is True and status["pods"][0]["restarts"] == 0
    assert status["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    assert status["problems"] == [] and status["events"] == []
    assert len(requests(env)) == status_requests  # deployments, pods, ingresses, httproutes

    text = run(env, "status")
    assert text.returncode == 0
    assert text.stdout.startswith("Your webservice of type python3.11 is running\nmytool: running, 1/1 pods ready")
    for word in ("type:", "python3.11", "URL:", "image:", "resources:", "started:", "NAME", "READY", "RESTARTS"):
        assert word in text.stdout

    stopped = run(env, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert web_objects(env) == {"Deployment": [], "Service": [], "Ingress": [], "HTTPRoute": []}
    assert env.standin.pods() == []
    assert manifest(env) is None  # nothing but the web keys was in it
    assert len(requests(env)) <= 9  # 4 lists + 3 deletes + pod list (+ a pod watch)

    code, status = status_json(env)
    assert code == 3 and status["state"] == "stopped"
    assert len(requests(env)) == 1


def test_second_start_says_already_running(env):
    start_healthy(env)
    again = run(env, "start")
    assert again.returncode == 6
    assert "already running" in again.stderr and "webservice restart" in again.stderr
    assert len(requests(env)) == 1  # the catalogue cache is fresh: one deployment list


def test_start_without_the_app_fails_before_touching_the_cluster(ws_env):
    result = run(ws_env, "python3.11", "start")
    assert result.returncode == 2
    assert "needs ~/www/python/src/app.py" in result.stderr
    assert [r.method for r in requests(ws_env)] in ([], ["GET"])  # at most the catalogue
    assert manifest(ws_env) is None


def test_no_wait_returns_at_once(env):
    env.standin.scenario = "slow"
    env.standin.time_scale = 0.2
    result = run(env, "python3.11", "start", "--no-wait")
    assert result.returncode == 0
    assert "without waiting" in result.stdout
    assert not any(r.query.get("watch") for r in requests(env))
    code, status = status_json(env)
    assert code == 4 and status["state"] == "starting"


def test_timeout(env):
    env.standin.scenario = "slow"
    env.standin.time_scale = 0.2  # 45 simulated seconds to be ready: 9 s here
    result = run(env, "python3.11", "start", "--timeout", "1")
    assert result.returncode == 5
    assert "mytool is not ready within 1 s (0/1 pods ready" in result.stderr


@pytest.mark.parametrize("scenario,words,log", [
    ("crashloop", ["keeps crashing", "exited with code 1"], "ModuleNotFoundError: No module named 'flask'"),
    ("oomkilled", ["out of memory", "--mem 1Gi"], "Loading data into memory"),
    ("imagepull", ["cannot be pulled", "not found"], None),
    ("unschedulable", ["cannot find a node", "Insufficient memory"], None),
])
def test_start_failures_are_explained(env, scenario, words, log):
    env.standin.scenario = scenario
    result = run(env, "python3.11", "start")
    assert result.returncode == 5, result.stderr
    first = result.stderr.splitlines()[-1 if "error:" not in result.stderr else 0]
    error_line = next(line for line in result.stderr.splitlines() if "error:" in line)
    for word in words:
        assert word in error_line, result.stderr
    if log:
        assert "last log lines of" in result.stderr and log in result.stderr
    assert first
    # the failure leaves a consistent state: objects and manifest in place, status agrees
    assert manifest(env)["web"] == "python3.11"
    code, status = status_json(env)
    assert code == 4 and status["state"] == "crashing"
    assert status["problems"] and status["problems"][0]["certain"] is True
    assert status["events"]


def test_never_ready_with_a_health_check(env):
    env.standin.scenario = "neverready"
    result = run(env, "python3.11", "start", "--health-check-path", "/healthz")
    assert result.returncode == 5, result.stderr
    assert "health check" in result.stderr and "503" in result.stderr


def test_over_the_limit_range_is_refused_before_applying(env):
    result = run(env, "python3.11", "start", "--mem", "8Gi")
    assert result.returncode == 2
    assert "over the namespace's maximum of 4Gi memory" in result.stderr
    assert "PATCH" not in [r.method for r in requests(env)]
    assert manifest(env) is None


def test_over_the_quota_is_refused_before_applying(env):
    env.standin.set_quota({"limits.memory": "1Gi"})
    result = run(env, "python3.11", "start", "--replicas", "3")
    assert result.returncode == 2
    assert "quota" in result.stderr and "do not fit" in result.stderr
    assert "PATCH" not in [r.method for r in requests(env)]


def test_quota_rejection_by_the_cluster_is_explained(env):
    # the tool may not read its quota here, so only the cluster can refuse: FailedCreate
    env.standin.add_fault(status=403, path="/resourcequotas", times=10)
    env.standin.set_quota({"limits.memory": "1Gi"})
    result = run(env, "python3.11", "start", "--replicas", "3")
    assert result.returncode == 5, result.stderr
    assert "cannot create the pods" in result.stderr and "exceeded quota" in result.stderr


# --- stop ---------------------------------------------------------------------------------------


def _other_workloads(standin):
    ns = standin.namespace
    labels = {"toolforge": "tool", "app.kubernetes.io/component": "jobs",
              "app.kubernetes.io/managed-by": "toolforge-jobs-framework", "app.kubernetes.io/name": "myjob"}
    pod_spec = {"containers": [{"name": "job", "image": "docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest",
                                "command": ["sleep", "infinity"]}]}
    standin.create({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "myjob", "labels": labels},
                    "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                             "template": {"metadata": {"labels": labels}, "spec": pod_spec}}}, namespace=ns)
    standin.create({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "shell-1234", "labels": {"app.kubernetes.io/component": "webservice-interactive",
                                                                 "app.kubernetes.io/managed-by": "webservice",
                                                                 "name": "shell-1234"}},
                    "spec": pod_spec}, namespace=ns)
    standin.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mytool", "labels": {"name": "mytool"}},
                    "data": {"x": "y"}}, namespace=ns)


def test_stop_leaves_other_workloads_alone(env):
    _other_workloads(env.standin)
    start_healthy(env, "--replicas", "2")
    Path(env.home, "service.manifest").write_text(
        Path(env.home, "service.manifest").read_text() + "other-tool-key: keep me\n")
    env.standin.wait_for(lambda: len(env.standin.pods(name="myjob") or env.standin.pods(**{"app.kubernetes.io/name": "myjob"})) >= 1,
                         timeout=10)
    result = run(env, "stop")
    assert result.returncode == 0, result.stderr
    ns = env.standin.namespace
    assert env.standin.get("Deployment", ns, "myjob") is not None
    assert env.standin.pods(**{"app.kubernetes.io/name": "myjob"})
    assert env.standin.get("Pod", ns, "shell-1234") is not None
    assert env.standin.get("ConfigMap", ns, "mytool") is not None
    assert web_objects(env) == {"Deployment": [], "Service": [], "Ingress": [], "HTTPRoute": []}
    assert env.standin.pods(**WEB) == []
    deletes = [r for r in requests(env) if r.method == "DELETE"]
    assert sorted("/".join(r.path.split("/")[-2:]) for r in deletes) == [
        "deployments/mytool", "httproutes/mytool", "services/mytool"]
    assert all((r.body or {}).get("preconditions", {}).get("uid") for r in deletes)
    assert manifest(env) == {"version": 4, "other-tool-key": "keep me"}


def test_start_does_not_take_over_a_job_of_the_same_name(env):
    labels = {"app.kubernetes.io/component": "jobs", "app.kubernetes.io/managed-by": "toolforge-jobs-framework"}
    env.standin.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mytool", "labels": labels},
                        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                                 "template": {"metadata": {"labels": labels},
                                              "spec": {"containers": [{"name": "job", "image": "img:1"}]}}}},
                       namespace=env.standin.namespace)
    result = run(env, "python3.11", "start")
    assert result.returncode == 2
    assert "Deployment 'mytool' is not managed by webservice (it belongs to the job 'mytool')" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "PATCH" not in [r.method for r in requests(env)]
    job = env.standin.get("Deployment", env.standin.namespace, "mytool")
    assert job["metadata"]["labels"] == labels


def test_stop_where_httproutes_are_not_served_or_not_allowed(env):
    start_healthy(env, "--routing", "ingress")  # a site that still runs an ingress controller
    env.standin.add_fault(status=403, path="/httproutes", times=10)
    result = run(env, "stop")
    assert result.returncode == 0, result.stderr
    assert web_objects(env)["Deployment"] == []


def test_stop_when_not_running(env):
    result = run(env, "stop")
    assert result.returncode == 0
    assert "not running" in result.stdout
    assert [r.method for r in requests(env)] == ["GET"] * 4
    json_result = run(env, "stop", "--json")
    assert json.loads(json_result.stdout)["was_running"] is False


# --- restart ------------------------------------------------------------------------------------


def _pod_timeline(env, stop: threading.Event, record: list):
    from webservice.kube.cluster import Cluster
    from webservice.model.tool import Tool

    cluster = Cluster.connect(Tool("mytool", "tools", Path(env.home), "override"), kubeconfig=[Path(env.kubeconfig)])
    for kind_of, pod in cluster.watch("Pod", label_selector=selector(), timeout=30, tick=0.2):
        if stop.is_set():
            return
        if kind_of is None:
            continue
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (pod.get("status") or {}).get("conditions") or [])
        record.append((time.monotonic(), kind_of, pod["metadata"]["name"], ready,
                       bool(pod["metadata"].get("deletionTimestamp"))))


def test_restart_rolls_new_pods_in_before_old_ones_go(env):
    start_healthy(env)
    old = [p["metadata"]["name"] for p in env.standin.pods(**WEB)]
    record: list = []
    stop = threading.Event()
    watcher = threading.Thread(target=_pod_timeline, args=(env, stop, record), daemon=True)
    watcher.start()
    time.sleep(0.5)
    result = run(env, "restart")
    assert result.returncode == 0, result.stderr
    assert "restarted (python3.11)" in result.stdout
    stop.set()
    new_ready = min(t for t, _, name, ready, _ in record if name not in old and ready)
    old_going = min(t for t, kind_of, name, _, deleting in record if name in old and (deleting or kind_of == "DELETED"))
    assert new_ready <= old_going
    code, status = status_json(env)
    assert code == 0 and [p["name"] for p in status["pods"]] != old


def test_restart_applies_and_saves_changed_options(env):
    start_healthy(env, "--replicas", "2")
    assert manifest(env)["replicas"] == 2
    result = run(env, "restart", "--mem", "1Gi", "--cpu", "0.75", "--replicas", "1")
    assert result.returncode == 0, result.stderr
    assert "restarted with cpu 500m -> 750m, memory 512Mi -> 1Gi, replicas 2 -> 1 (python3.11)" in result.stdout
    assert "memory 512Mi -> 1Gi" in result.stdout and "replicas 2 -> 1" in result.stdout
    data = manifest(env)
    assert (data["memory"], data["cpu"], data["replicas"]) == ("1Gi", "750m", 1)
    deployment = env.standin.get("Deployment", env.standin.namespace, "mytool")
    limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "750m", "memory": "1Gi"} and deployment["spec"]["replicas"] == 1
    code, status = status_json(env)
    assert code == 0 and status["replicas"]["desired"] == 1
    # a plain restart keeps what was saved
    assert run(env, "restart").returncode == 0
    assert manifest(env)["memory"] == "1Gi"


def test_restart_of_a_crashing_service_fixes_it(env):
    env.standin.scenario = "crashloop"
    assert run(env, "python3.11", "start").returncode == 5
    env.standin.scenario = "healthy"
    result = run(env, "restart")
    assert result.returncode == 0, result.stderr
    code, status = status_json(env)
    assert code == 0 and status["state"] == "running"
    assert all(p["restarts"] == 0 for p in status["pods"] if not p["terminating"])


def test_restart_when_not_running_starts_it(env):
    result = run(env, "python3.11", "restart")
    assert result.returncode == 0, result.stderr
    assert "restarted" in result.stdout
    assert status_json(env)[0] == 0


def test_restart_to_a_crash_is_explained_and_old_pod_keeps_serving(env):
    start_healthy(env)
    env.standin.scenario = "crashloop"
    result = run(env, "restart")
    assert result.returncode == 5
    assert "keeps crashing" in result.stderr
    code, status = status_json(env)
    assert code == 4 and status["state"] == "degraded" and status["replicas"]["ready"] == 1


# --- API failures through the CLI ----------------------------------------------------------------


def test_no_kubeconfig(env):
    os.unlink(env.kubeconfig)
    result = run(env, "status")
    assert result.returncode == 7
    assert env.kubeconfig in result.stderr and "become" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreadable_certificate(env):
    os.unlink(Path(env.home) / ".toolskube" / "client.crt")
    result = run(env, "status")
    assert result.returncode == 7
    assert "client.crt" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("code,words", [
    (409, ["conflict", "run the command again"]),
    (422, ["refused to apply Deployment mytool"]),
])
def test_refused_apply_on_start_leaves_nothing_running(env, code, words):
    env.standin.add_fault(status=code, method="PATCH", path="/deployments", times=1)
    result = run(env, "python3.11", "start")
    assert result.returncode == 7, result.stderr
    for word in words:
        assert word in result.stderr
    assert manifest(env) is None


@pytest.mark.parametrize("routing,path", [("httproute", "/httproutes"), ("ingress", "/ingresses")])
def test_first_start_whose_route_is_refused_removes_every_object_it_applied(env, routing, path):
    env.standin.add_fault(status=422, method="PATCH", path=path, times=1)
    result = run(env, "--routing", routing, "python3.11", "start")
    assert result.returncode == 7, result.stderr
    assert "nothing was started" in result.stderr
    # the Deployment and the Service applied before the refused route are gone again
    assert web_objects(env) == {"Deployment": [], "Service": [], "Ingress": [], "HTTPRoute": []}
    deletes = [r.path.rsplit("/", 2)[-2] for r in env.standin.requests if r.method == "DELETE"]
    assert deletes == ["services", "deployments"], deletes  # newest first
    assert manifest(env) is None
    assert run(env, "--routing", routing, "python3.11", "start").returncode == 0


def test_quota_refusal_while_applying(env):
    # the tool may not read its quota here (the preflight that names what uses the quota
    # cannot run), so the cluster refuses the Service while applying
    env.standin.add_fault(status=403, path="/resourcequotas", times=10)
    env.standin.set_quota({"services": "0"})
    result = run(env, "python3.11", "start")
    assert result.returncode == 7, result.stderr
    assert "exceeded quota" in result.stderr and "nothing was started" in result.stderr
    assert web_objects(env)["Deployment"] == [] and manifest(env) is None
    env.standin.set_quota({"services": "1"})
    assert run(env, "python3.11", "start").returncode == 0


def test_certificate_refused(env):
    env.standin.kubeconfig(env.kubeconfig, foreign=True, relative_to_toolskube=True)
    result = run(env, "status")
    assert result.returncode == 7
    assert "refused the credentials" in result.stderr or "TLS handshake" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_wrong_tool(env):
    result = run(env, "status", env_extra={"WEBSERVICE_TOOL": "othertool"})
    assert result.returncode == 7
    assert "tool-mytool, not tool-othertool" in result.stderr


def test_forbidden(env):
    env.standin.add_fault(status=403, path="/deployments", times=10)
    result = run(env, "status")
    assert result.returncode == 7 and "not allowed" in result.stderr and "right tool" in result.stderr


def test_server_errors_are_retried_then_explained(env):
    env.standin.add_fault(status=503, path="/deployments", times=2)
    assert run(env, "status", "--check").returncode == 3
    assert len(requests(env)) == 3
    env.standin.add_fault(status=500, path="/deployments", times=100)
    result = run(env, "status")
    assert result.returncode == 7 and "500" in result.stderr and "try again" in result.stderr


def test_connection_refused(env):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = yaml.safe_load(Path(env.kubeconfig).read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    Path(env.kubeconfig).write_text(yaml.safe_dump(config))
    result = run(env, "status")
    assert result.returncode == 7
    assert f"https://127.0.0.1:{port}" in result.stderr and "refused" in result.stderr


def test_debug_shows_requests(env):
    result = run(env, "status", "--debug")
    assert result.returncode == 0
    assert "webservice: debug: GET /apis/apps/v1/namespaces/tool-mytool/deployments" in result.stderr
    assert "BEGIN" not in result.stderr


# --- interruption ---------------------------------------------------------------------------------


def test_ctrl_c_while_waiting(env):
    env.standin.scenario = "slow"
    env.standin.time_scale = 0.2
    env.standin.clear_requests()
    process = env.popen("python3.11", "start")
    line = process.stderr.readline()
    assert "starting mytool" in line
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 130
    assert "stopped waiting" in err and "webservice status" in err
    assert not OUR_TRACEBACK.search(err) and "Traceback" not in err
    assert manifest(env)["web"] == "python3.11"
    assert not list(Path(env.home).glob(".service.manifest.*.tmp"))
    assert web_objects(env)["Deployment"] == ["mytool"]
    code, status = status_json(env)
    assert code == 4 and status["state"] == "starting"


def test_sigterm_while_waiting_says_the_state_and_exits_143(env):
    env.standin.scenario = "slow"
    env.standin.time_scale = 0.2
    process = env.popen("python3.11", "start")
    assert "starting mytool" in process.stderr.readline()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 143, (process.returncode, err)
    assert "stopped waiting" in err.splitlines()[-1] and "Traceback" not in err
    assert manifest(env)["web"] == "python3.11" and web_objects(env)["Deployment"] == ["mytool"]


@pytest.mark.parametrize("command,sig,code", [("start", signal.SIGINT, 130), ("stop", signal.SIGTERM, 143)])
def test_interrupted_before_any_change_says_nothing_changed(env, command, sig, code):
    if command == "stop":
        start_healthy(env)
    before = (manifest(env), web_objects(env))
    path = "/limitranges" if command == "start" else "/services"
    held = env.standin.add_fault(action="hold", method="GET", path=path, times=1)
    env.standin.clear_requests()
    process = env.popen(*(["python3.11", "start"] if command == "start" else ["stop"]))
    try:
        assert held.arrived.wait(60), "the command never sent the request to hold"
        deliver(process, sig)
        out, err = process.communicate(timeout=60)
    finally:
        held.release()
    assert process.returncode == code, (process.returncode, err)
    assert "nothing was changed" in err.splitlines()[-1] and "Traceback" not in err
    assert (manifest(env), web_objects(env)) == before


def test_sigterm_while_applying_finishes_the_changes_then_exits_143(env):
    held = env.standin.add_fault(action="hold", method="PATCH", path="/services/", times=1)
    process = env.popen("python3.11", "start")
    try:
        assert held.arrived.wait(60), "the start never applied its Service"
        deliver(process, signal.SIGTERM)  # while the Service apply is in flight
    finally:
        held.release()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, (process.returncode, err)
    assert "keeps coming up" in err.splitlines()[-1]
    assert manifest(env)["web"] == "python3.11" and web_objects(env)["HTTPRoute"] == ["mytool"]


def _memory(env):
    deployment = env.standin.get("Deployment", env.standin.namespace, "mytool")
    return deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]


def test_two_restarts_one_held_mid_apply_end_with_manifest_and_deployment_agreeing(env):
    """The command lock spans read, apply and manifest write: the second restart runs its
    steps after the first's, never between its apply and its manifest write."""
    start_healthy(env)
    env.standin.clear_requests()
    env.standin.add_fault(action="delay", delay=1.5, method="PATCH", path="/services/", times=1)
    first = env.popen("restart", "--mem", "1Gi", "--no-wait")
    env.standin.wait_for(lambda: env.standin.requests_for("PATCH", "/services/"), timeout=20)
    second = env.popen("restart", "--mem", "2Gi", "--no-wait")
    results = [(p.wait(timeout=60), p.stderr.read()) for p in (first, second)]
    assert [code for code, _ in results] == [0, 0], results
    assert manifest(env)["memory"] == _memory(env) == "2Gi"


def test_stop_held_while_listing_and_a_start_end_running_or_stopped(env):
    env.standin.add_fault(action="delay", delay=1.5, method="GET", path="/services", times=1)
    stop = env.popen("stop")
    env.standin.wait_for(lambda: env.standin.requests_for("GET", "/services"), timeout=20)
    start = env.popen("python3.11", "start")
    assert [start.wait(timeout=60), stop.wait(timeout=60)] == [0, 0], (start.stderr.read(), stop.stderr.read())
    time.sleep(0.2)
    assert web_objects(env) == {"Deployment": ["mytool"], "Service": ["mytool"], "Ingress": [], "HTTPRoute": ["mytool"]}
    assert manifest(env)["web"] == "python3.11"


def test_a_restart_superseded_by_another_follows_the_newer_rollout(env):
    start_healthy(env)
    env.standin.clear_requests()
    held = env.standin.add_fault(action="hold", method="GET", path="/deployments",
                                 match=lambda r: "watch" in r.query, times=1)
    first = env.popen("restart", "--timeout", "60")
    try:
        assert held.arrived.wait(60), "the first restart never watched"
        time.sleep(1.1)  # another second: another template (restart stamps the template in seconds)
        assert run(env, "restart").returncode == 0  # runs to the end while the first's watch is held
    finally:
        held.release()
    code = first.wait(timeout=120)
    assert code == 0, first.stderr.read()
    assert "another restart replaced" in first.stdout.read() + first.stderr.read()


def test_start_notices_a_stop_that_came_before_its_watch(env):
    held = env.standin.add_fault(action="hold", method="GET", path="/deployments",
                                 match=lambda r: "watch" in r.query, times=1)
    start = env.popen("python3.11", "start", "--timeout", "60")
    try:
        assert held.arrived.wait(60), "the start never watched"
        assert run(env, "stop").returncode == 0  # the whole stop, while start's watch is held
    finally:
        held.release()
    assert start.wait(timeout=120) == 5
    err = start.stderr.read()
    assert "stopped" in err and "within" not in err, err  # it said so, not after its timeout


def test_spinner_on_a_terminal(env):
    env.standin.scenario = "slow"
    env.standin.time_scale = 0.05
    command = " ".join(env.command("python3.11", "start", "--timeout", "20"))
    result = subprocess.run(["script", "-qfec", command, "/dev/null"], capture_output=True, text=True,
                            env={**env.env, "TERM": "xterm"}, cwd=env.home, timeout=60)
    assert "started (python3.11)" in result.stdout
    assert "\r" in result.stdout or "\x1b[" in result.stdout  # redrawn in place, not one line per change


def test_restart_without_room_for_an_extra_pod_replaces_them_one_at_a_time(env):
    env.standin.set_quota({"pods": "1"})
    start_healthy(env)
    result = run(env, "restart")
    assert result.returncode == 0, result.stderr
    assert "no room for an extra pod" in result.stderr
    strategy = env.standin.get("Deployment", env.standin.namespace, "mytool")["spec"]["strategy"]["rollingUpdate"]
    assert strategy == {"maxSurge": 0, "maxUnavailable": 1}


def test_json_outcomes(env):
    env.standin.scenario = "crashloop"
    result = run(env, "python3.11", "start", "--json")
    assert result.returncode == 5
    data = json.loads(result.stdout)
    assert data["outcome"] == "failed" and data["exit_code"] == 5 and data["action"] == "start"
    assert data["problems"][0]["code"] == "crashloop" and data["problems"][0]["log"]
    assert data["status"]["state"] == "crashing"
    assert "starting mytool" not in result.stderr  # no progress lines with --json
    stopped = json.loads(run(env, "stop", "--json").stdout)
    assert stopped["was_running"] is True and "Deployment/mytool" in stopped["deleted"]
    missing = run(env, "status", "--json", env_extra={"KUBECONFIG": "/nonexistent/config"})
    assert missing.returncode == 7
    assert json.loads(missing.stdout)["error"]["kind"] == "KubeconfigError"


# --- status exit codes: plain status succeeds whenever it found out the state ---------------


def _bring_to(env, state: str) -> None:
    if state == "running":
        start_healthy(env)
    elif state == "crashing":
        env.standin.scenario = "crashloop"
        assert run(env, "python3.11", "start").returncode == 5


@pytest.mark.parametrize("state,headline,plain,check", [
    ("stopped", "Your webservice is not running", 0, 3),
    ("running", "Your webservice of type python3.11 is running", 0, 0),
    ("crashing", "Your webservice of type python3.11 is running", 0, 4),
])
def test_status_exit_codes_plain_check_and_json(env, state, headline, plain, check):
    _bring_to(env, state)
    result = run(env, "status")
    assert (result.returncode, result.stdout.splitlines()[0]) == (plain, headline), result.stderr
    assert run(env, "status", "--check").returncode == check
    code, data = status_json(env)
    assert code == check and data["state"] == state  # --json keeps the state codes


@pytest.mark.parametrize("args", [["status"], ["status", "--check"], ["status", "--json"]])
def test_status_that_cannot_find_out_fails_in_every_form(env, args):
    os.unlink(env.kubeconfig)
    result = run(env, *args)
    assert result.returncode == 7 and "Your webservice" not in result.stdout
# --- a service.manifest as 0.98 left it (issue 13 section 3) --------------------------------------

MANIFEST_098 = ("# This file is used by Toolforge infrastructure.\n# Please do not edit manually at this time.\n"
                "# Tue May  7 19:14:04 2024\nbackend: gridengine\nbuildservice-image: tool-mytool/tool-mytool:latest\n"
                "distribution: debian\nversion: 2\nweb: python3.11\nweb::extra_args: --processes 2\n")


def test_a_098_manifest_never_blocks_and_the_next_write_cleans_it(env):
    Path(env.home, "service.manifest").write_text(MANIFEST_098)
    started = run(env, "start")
    assert started.returncode == 0, started.stderr
    assert "ignored 'backend: gridengine'" in started.stderr
    deployment = env.standin.get("Deployment", env.standin.namespace, "mytool")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["command"][-2:] == ["--processes", "2"]
    assert manifest(env) == {"version": 4, "backend": "kubernetes", "web": "python3.11",
                             "web::extra_args": ["--processes", "2"], "distribution": "debian"}
    status = run(env, "status")
    assert status.returncode == 0 and "gridengine" not in status.stderr, status.stderr
    stopped = run(env, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert manifest(env) == {"version": 4, "distribution": "debian"}  # keys other tooling owns stay
