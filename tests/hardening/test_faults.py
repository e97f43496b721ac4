"""Faults of the API server and the network, for start, stop, restart, status, logs -f
and shell: success after retries, or one clear line saying what failed and that the
command can be run again; never a traceback; a second run repairs; the manifest is never
lost or truncated.

The commands run in this process (``run_in``) against the stand-in, whose faults are
injected per request (``standin.add_fault``), per stream (``cut_streams``: a watch ended
early or dropped mid-stream) or by a TCP proxy that "restarts" the API server (``proxy``).
"""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.hardening.conftest import TRACEBACK, cut_streams, fake_kubectl, manifest_state, run_in

HEALTHY = {"start": 0, "restart": 0, "stop": 0, "status": 0}
AGAIN = re.compile(r"again|retry|re-run|rerun", re.I)


def _prepare(tool_env, command: str) -> None:
    """The state before ``command``: running for restart/stop/status, nothing for start."""
    if command != "start":
        result = run_in(tool_env, "python3.11", "start")
        assert result.code == 0, result.err
    tool_env.standin.clear_requests()


def _args(command: str) -> list[str]:
    return ["python3.11", "start"] if command == "start" else [command]


def _no_traceback(result) -> None:
    assert not TRACEBACK.search(result.err), result.err
    assert "internal error" not in result.err, result.err


def _web_objects(standin) -> dict:
    out = {}
    for kind in ("Deployment", "Service", "Ingress", "HTTPRoute"):
        out[kind] = sorted(o["metadata"]["name"] for o in standin.objects(kind, standin.namespace)
                           if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "webservice")
    return out


def _converged(tool_env, command: str) -> None:
    """The end state of a successful ``command``."""
    objects = _web_objects(tool_env.standin)
    if command == "stop":
        assert objects == {"Deployment": [], "Service": [], "Ingress": [], "HTTPRoute": []}, objects
        assert manifest_state(tool_env.home) is None
    else:
        assert objects == {"Deployment": ["mytool"], "Service": ["mytool"], "Ingress": [], "HTTPRoute": ["mytool"]}, objects
        assert manifest_state(tool_env.home)["web"] == "python3.11"


# --- transient faults: success after retries ------------------------------------------------------

TRANSIENT = {
    "500 on the first list": dict(status=500, method="GET", times=1),
    "503 twice on apply": dict(status=503, method="PATCH", times=2),
    "503 on delete": dict(status=503, method="DELETE", times=1),
    "429 with Retry-After on a request": dict(status=429, retry_after=1, times=1, nth=2),
    "connection dropped before the answer (GET)": dict(action="drop", method="GET", times=1),
    "connection dropped before the answer (apply)": dict(action="drop", method="PATCH", times=1),
    "slow answer past the client timeout": dict(action="delay", delay=2.5, method="GET", times=1, nth=2),
}


def _transient_cases():
    for fault, spec in sorted(TRANSIENT.items()):
        for command in sorted(HEALTHY):
            method = spec.get("method")
            if method == "PATCH" and command not in ("start", "restart") or method == "DELETE" and command != "stop":
                continue  # the command sends no such request: the fault could not fire
            yield pytest.param(fault, command, id=f"{fault}-{command}")


@pytest.mark.parametrize("fault,command", list(_transient_cases()))
def test_transient_fault_is_retried(row, tool_env, command, fault):
    row.describe("faults", f"{fault}: {command} succeeds after retrying")
    _prepare(tool_env, command)
    injected = tool_env.standin.add_fault(**TRANSIENT[fault])
    env = {"WEBSERVICE_API_TIMEOUT": "1"} if "slow" in fault else None
    result = run_in(tool_env, *_args(command), env_extra=env)
    row.case()
    _no_traceback(result)
    assert injected.fired, "the fault did not fire"
    assert result.code == HEALTHY[command], result.err
    if command != "status":
        _converged(tool_env, command)


STREAMS = {
    "watch ended early by the server": dict(how="end", after=0),
    "watch dropped mid-stream": dict(how="drop", after=1),
    "watch dropped at once": dict(how="drop", after=0),
}


@pytest.mark.parametrize("command", ["start", "restart", "stop"])
@pytest.mark.parametrize("fault", sorted(STREAMS))
def test_watch_faults_are_resumed(row, tool_env, monkeypatch, command, fault):
    row.describe("faults", f"{fault}: {command} resumes the watch and succeeds")
    _prepare(tool_env, command)
    # the Deployment's change waits for the pods watch: the fault applies however fast the
    # simulation is compared with the client (a busy CI machine once let the start finish first)
    cut = cut_streams(tool_env.standin, monkeypatch, path="/pods", times=2, hold_after_write="/deployments",
                      **STREAMS[fault])
    result = run_in(tool_env, *_args(command))
    row.case()
    _no_traceback(result)
    assert result.code == 0, result.err
    assert cut, "no watch was cut: the fault did not apply"
    _converged(tool_env, command)


@pytest.mark.parametrize("command", ["start", "restart", "stop"])
def test_410_gone_on_watch_resume(row, tool_env, monkeypatch, command):
    """The watch drops; meanwhile the server forgot the history: the resume gets 410 Gone."""
    row.describe("faults", f"410 Gone on watch resume: {command} lists again and succeeds")
    _prepare(tool_env, command)
    standin = tool_env.standin
    original = standin.api.handle
    state = {"cut": 0}

    def handle(req):
        resp = original(req)
        if resp.stream is not None and "/pods" in req.path and "watch" in req.query and state["cut"] == 0:
            state["cut"] = 1
            inner = resp.stream

            def stream():
                try:
                    first = next(inner, None)
                    if first:
                        yield first
                    standin.compact()  # the version the client resumes from is now too old
                    raise ConnectionResetError("injected")
                finally:
                    inner.close()

            resp.stream = stream()
        return resp

    monkeypatch.setattr(standin.api, "handle", handle)
    result = run_in(tool_env, *_args(command))
    row.case()
    _no_traceback(result)
    assert result.code == 0, result.err
    assert state["cut"] == 1
    _converged(tool_env, command)


@pytest.mark.parametrize("command", sorted(HEALTHY))
def test_api_server_restart_between_two_requests(row, tool_env, proxy, command):
    row.describe("faults", f"API server restart (connections cut, refused for 0.3 s) between two requests: {command}")
    _prepare(tool_env, command)
    standin = tool_env.standin
    done = threading.Event()

    def restart_after_first_answer():
        while not done.is_set():
            if any(r.status for r in list(standin.requests)):
                proxy.restart(0.3)
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=restart_after_first_answer, daemon=True)
    watcher.start()
    try:
        result = run_in(tool_env, *_args(command))
    finally:
        done.set()
        watcher.join(5)
    row.case()
    _no_traceback(result)
    assert proxy.restarts == 1
    assert result.code == HEALTHY[command], result.err
    if command != "status":
        _converged(tool_env, command)


# --- persistent faults: one clear line, then a second run repairs ------------------------------------

PERSISTENT = {
    "503 on every apply": dict(status=503, method="PATCH", times=1000),
    "503 on the second apply onwards": dict(status=503, method="PATCH", nth=2, times=1000),
    "500 on every list": dict(status=500, method="GET", times=1000),
    "every connection dropped": dict(action="drop", times=1000),
    "503 on every delete": dict(status=503, method="DELETE", times=1000),
}
def _cases():
    for fault in sorted(PERSISTENT):
        for command in sorted(HEALTHY):
            if "delete" in fault and command != "stop":
                continue
            if "apply" in fault and command in ("stop", "status"):
                continue
            yield pytest.param(fault, command, id=f"{fault}-{command}")


@pytest.mark.parametrize("fault,command", list(_cases()))
def test_persistent_fault_is_one_clear_line_and_a_second_run_repairs(row, tool_env, monkeypatch, fault, command):
    from webservice.kube.cluster import Cluster

    row.describe("faults", f"{fault}: {command} fails with one clear line; running it again repairs")
    _prepare(tool_env, command)
    # the outcome is under test, not the back-off: retry at once (the retries still happen)
    monkeypatch.setattr(Cluster, "_sleep", lambda self, attempt, retry_after: time.sleep(0.01))
    before = manifest_state(tool_env.home)
    injected = tool_env.standin.add_fault(**PERSISTENT[fault])
    result = run_in(tool_env, *_args(command), env_extra={"WEBSERVICE_API_TIMEOUT": "2"})
    row.case()
    _no_traceback(result)
    assert injected.fired, "the fault did not fire"
    assert result.code == 7, (result.code, result.err)
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("webservice: error: "), result.err
    assert AGAIN.search(lines[0]), lines[0]
    after = manifest_state(tool_env.home)
    assert after in (before, None) or after.get("web") == "python3.11"  # never damaged
    tool_env.standin.faults.clear()
    again = run_in(tool_env, *_args(command))
    row.case()
    _no_traceback(again)
    assert again.code == HEALTHY[command], again.err
    if command != "status":
        _converged(tool_env, command)


# --- unreachable server, refused or expired credentials -------------------------------------------


def test_unreachable_expired_and_refused_credentials(row, tool_env):
    import yaml

    row.describe("faults", "API server unreachable (refused port), expired client certificate, certificate "
                           "of another CA: start/status/stop give one actionable line")
    standin = tool_env.standin
    path = Path(tool_env.kubeconfig)
    good = path.read_text()
    data = yaml.safe_load(good)
    variants = {}
    down = dict(data, clusters=[{"name": "toolforge", "cluster": dict(data["clusters"][0]["cluster"],
                                                                       server="https://127.0.0.1:9")}])
    variants["unreachable"] = (down, re.compile(r"cannot connect|refused|down", re.I))
    crt, key = standin.client_cert(expired=True)
    expired = yaml.safe_load(good)
    expired["users"][0]["user"] = {"client-certificate": crt, "client-key": key}
    # the certificate's own dates name the cause, however the server's refusal arrives
    variants["expired"] = (expired, re.compile(r"client certificate \S+ expired on \d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    foreign_crt, foreign_key = standin.client_cert(foreign=True)
    foreign = yaml.safe_load(good)
    foreign["users"][0]["user"] = {"client-certificate": foreign_crt, "client-key": foreign_key}
    variants["other CA"] = (foreign, re.compile(r"credentials|certificate", re.I))
    for name, (config, words) in variants.items():
        path.write_text(yaml.safe_dump(config))
        for args in (["python3.11", "start"], ["status"], ["stop"]):
            began = time.monotonic()
            result = run_in(tool_env, *args)
            row.case()
            _no_traceback(result)
            assert result.code == 7, (name, args, result.err)
            lines = result.err.splitlines()
            assert len(lines) == 1 and lines[0].startswith("webservice: error: ") and words.search(lines[0]), lines
            assert time.monotonic() - began < 10, (name, args, "too slow to say so")
            assert manifest_state(tool_env.home) is None
    path.write_text(good)


# --- logs -f and shell -------------------------------------------------------------------------------


def _started(tool_env):
    result = run_in(tool_env, "python3.11", "start")
    assert result.code == 0, result.err
    pods = tool_env.standin.pods(tool_env.standin.namespace, name="mytool")
    return pods[0]["metadata"]["name"]


@pytest.mark.parametrize("fault", ["log stream ended early", "log stream dropped", "503 on the pod list",
                                   "pod watch dropped"])
def test_logs_follow_survives(row, tool_env, monkeypatch, fault):
    row.describe("faults", f"logs -f: {fault}; it carries on (or ends with one clear line), no traceback")
    pod = _started(tool_env)
    standin = tool_env.standin
    if fault == "log stream ended early":
        cut_streams(standin, monkeypatch, path="/log", how="end", after=1, query=None)
    elif fault == "log stream dropped":
        cut_streams(standin, monkeypatch, path="/log", how="drop", after=1, query=None)
    elif fault == "pod watch dropped":
        cut_streams(standin, monkeypatch, path="/pods", how="drop", after=1)
    else:
        standin.add_fault(status=503, method="GET", path="/pods", times=1)
    process = tool_env.popen("logs", "-f")
    try:
        out = []
        reader = threading.Thread(target=lambda: out.extend(process.stdout), daemon=True)
        reader.start()
        # wait for the stand-in to see logs -f following (again, after a cut stream), not for
        # the clock: a loaded machine may take seconds to start the subprocess
        follows = 2 if fault.startswith("log stream") else 1
        standin.wait_for(lambda: process.poll() is not None or len(
            [r for r in standin.requests_for("GET", "/log") if r.query.get("follow") == "true"]) >= follows,
            timeout=60, message="logs -f never followed the pod's log")
        standin.append_log(standin.namespace, pod, "after the fault")
        deadline = time.monotonic() + 60  # an upper bound only: the loop ends when the line is seen
        while time.monotonic() < deadline and not any("after the fault" in line for line in out):
            if process.poll() is not None:
                break
            time.sleep(0.05)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
        reader.join(5)
        err = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    row.case()
    assert not TRACEBACK.search(err) and "internal error" not in err, err
    if process.returncode == 0:
        assert any("after the fault" in line for line in out), (out, err)
    else:
        errors = [line for line in err.splitlines() if line.startswith("webservice: error: ")]
        assert len(errors) == 1 and AGAIN.search(errors[0]), err


@pytest.mark.parametrize("fault", ["503 on the name check", "503 on the pod deletion afterwards",
                                   "dropped connection on the pod deletion"])
def test_shell_around_kubectl(row, tool_env, monkeypatch, fault):
    """The API calls webservice itself makes around kubectl (kubectl is faked: its own
    retries are kubectl's business)."""
    from webservice.actions import shell as shell_mod
    from webservice.model.request import Request

    row.describe("faults", f"shell: {fault}; retried, or the leftover pod is named in one warning")

    fake_kubectl(monkeypatch, tool_env)
    standin = tool_env.standin
    if fault == "503 on the name check":
        standin.add_fault(status=503, method="GET", path="/pods/shell-", times=2)
    elif fault == "503 on the pod deletion afterwards":
        standin.add_fault(status=503, path="/pods/shell-", times=1000, nth=2)
    else:
        standin.add_fault(action="drop", method="DELETE", path="/pods/shell-", times=1)
    result = shell_mod.shell(Request(action="shell", type="python3.11", extra_args=("true",)))
    row.case()
    assert result.exit_code == 0
    if "503 on the pod deletion" in fault:
        assert result.cleanup_problem and result.pod in result.cleanup_problem
        assert "kubectl delete pod" in result.cleanup_problem
    else:
        assert result.deleted and not result.cleanup_problem


# --- a later apply fails: the manifest still describes what was applied (issue 16, defect 3) ----


def _memory_limit(standin) -> str:
    deployment = standin.get("Deployment", standin.namespace, "mytool")
    return deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]


def test_restart_whose_later_apply_fails_leaves_the_manifest_true(row, tool_env, monkeypatch):
    from webservice.kube.cluster import Cluster

    row.describe("faults", "restart --mem whose Service apply fails: the manifest records the applied "
                           "--mem, and the next plain restart keeps it")
    assert run_in(tool_env, "python3.11", "start").code == 0
    monkeypatch.setattr(Cluster, "_sleep", lambda self, attempt, retry_after: time.sleep(0.01))
    injected = tool_env.standin.add_fault(status=503, method="PATCH", nth=2, times=1000)
    failed = run_in(tool_env, "restart", "--mem", "1Gi", env_extra={"WEBSERVICE_API_TIMEOUT": "2"})
    row.case()
    _no_traceback(failed)
    assert injected.fired and failed.code == 7, failed.err
    assert _memory_limit(tool_env.standin) == "1Gi"  # the Deployment was applied
    assert manifest_state(tool_env.home)["memory"] == "1Gi"  # and the manifest says so
    tool_env.standin.faults.clear()
    again = run_in(tool_env, "restart")
    row.case()
    assert again.code == 0, again.err
    assert _memory_limit(tool_env.standin) == "1Gi"  # not silently reverted to 512Mi
    assert manifest_state(tool_env.home)["memory"] == "1Gi"


def test_first_start_rolled_back_puts_the_manifest_back(row, tool_env, monkeypatch):
    from webservice.kube.cluster import Cluster

    from webservice.state.manifest import MANIFEST_HEADER

    # (a guard for the early manifest write above: a rolled-back start must not leave it behind)
    row.describe("faults", "first start whose Service apply fails: Deployment deleted and the manifest as before")
    (Path(tool_env.home) / "service.manifest").write_text(MANIFEST_HEADER + "version: 4\nother-tooling: {keep: me}\n")
    monkeypatch.setattr(Cluster, "_sleep", lambda self, attempt, retry_after: time.sleep(0.01))
    tool_env.standin.add_fault(status=503, method="PATCH", nth=2, times=1000)
    failed = run_in(tool_env, "python3.11", "start", "--mem", "1Gi", env_extra={"WEBSERVICE_API_TIMEOUT": "2"})
    row.case()
    assert failed.code == 7 and "nothing was started" in failed.err, failed.err
    assert tool_env.standin.get("Deployment", tool_env.standin.namespace, "mytool") is None
    assert manifest_state(tool_env.home) == {"version": 4, "other-tooling": {"keep": "me"}}
