"""kubectl (the dispatcher at /usr/bin/kubectl and the version it picks) against the
stand-in: get, apply (client- and server-side), logs, delete, and ``run --attach`` as
``webservice shell`` uses it."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from tests.standin.fixtures import KUBECTL

NS = "tool-mytool"
IMAGE = "docker-registry.tools.wmflabs.org/toolforge-python311-sssd-web:latest"

pytestmark = pytest.mark.kubectl  # skipped when kubectl is not installed (tests/conftest.py)

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "labels": {"app": "x"}},
      "data": {"a": "1"}}


def test_get_table_and_json(kubectl, standin):
    standin.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one"}})
    r = kubectl("get", "configmaps")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0].split() == ["NAME", "AGE"]
    assert r.stdout.split("\n")[1].split()[0] == "one"
    r = kubectl("get", "configmap", "one", "-o", "json")
    assert json.loads(r.stdout)["metadata"]["name"] == "one"
    r = kubectl("get", "pods", "-n", "tool-othertool")
    assert r.returncode == 1
    assert 'User "mytool" cannot list resource "pods" in API group "" in the namespace "tool-othertool"' in r.stderr
    r = kubectl("get", "configmap", "nope")
    assert r.returncode == 1 and 'configmaps "nope" not found' in r.stderr


def test_apply_client_side_then_server_side(kubectl, standin, tmp_path):
    f = tmp_path / "cm.yaml"
    f.write_text(yaml.safe_dump(CM))
    r = kubectl("apply", "-f", str(f))
    assert r.returncode == 0, r.stderr
    assert "configmap/cfg created" in r.stdout
    # kubectl found fieldValidation in the OpenAPI v3 document and left validation to the server
    assert standin.requests_for("POST", "/configmaps")[0].query["fieldValidation"] == "Strict"
    cm = standin.get("ConfigMap", NS, "cfg")
    assert "kubectl.kubernetes.io/last-applied-configuration" in cm["metadata"]["annotations"]
    f.write_text(yaml.safe_dump({**CM, "data": {"a": "2"}}))
    r = kubectl("apply", "-f", str(f))
    assert r.returncode == 0 and "configmap/cfg configured" in r.stdout, r.stderr
    assert standin.get("ConfigMap", NS, "cfg")["data"] == {"a": "2"}
    patch_types = [q.content_type for q in standin.requests_for("PATCH", "/configmaps/cfg")]
    assert patch_types == ["application/strategic-merge-patch+json"]
    f.write_text(yaml.safe_dump({**CM, "data": {"a": "3", "b": "4"}}))
    r = kubectl("apply", "--server-side", "--force-conflicts", "-f", str(f))
    assert r.returncode == 0, r.stderr
    assert standin.get("ConfigMap", NS, "cfg")["data"] == {"a": "3", "b": "4"}
    apply_req = standin.requests_for("PATCH", "/configmaps/cfg")[-1]
    assert apply_req.content_type == "application/apply-patch+yaml"
    assert apply_req.query["fieldManager"] == "kubectl"


def test_apply_refused_by_validation(kubectl, tmp_path):
    f = tmp_path / "cm.yaml"
    f.write_text(yaml.safe_dump({**CM, "metadata": {"name": "Bad_Name"}}))
    r = kubectl("apply", "-f", str(f))
    assert r.returncode == 1
    assert 'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"' in r.stderr


def test_logs_and_delete(kubectl, standin):
    standin.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                    "spec": {"containers": [{"name": "webservice", "image": IMAGE}]}})
    standin.wait_for(lambda: standin.get("Pod", NS, "web")["status"].get("phase") == "Running")
    standin.append_log(NS, "web", "hello from the pod")
    r = kubectl("logs", "web")
    assert r.returncode == 0 and r.stdout.endswith("hello from the pod\n"), r.stderr
    r = kubectl("logs", "web", "--tail=1", "--timestamps")
    assert r.stdout.split(" ", 1)[1] == "hello from the pod\n"
    r = kubectl("get", "pod", "web")
    assert r.stdout.split("\n")[1].split()[:3] == ["web", "1/1", "Running"]
    r = kubectl("delete", "pod", "web", "--wait=true")
    assert r.returncode == 0 and 'pod "web" deleted' in r.stdout, r.stderr
    assert standin.get("Pod", NS, "web") is None


def _run_args(name, *command, overrides=None):
    args = ["run", name, "--attach", "--stdin", "--tty", "--rm", "--restart=Never", f"--image={IMAGE}",
            "--pod-running-timeout=1m"]
    if overrides:
        args.append("--overrides=" + json.dumps(overrides))
    return args + ["--command", "--", *command]


def test_run_attach_echo_and_pod_removed(kubectl, standin):
    overrides = {"apiVersion": "v1", "spec": {"containers": [{
        "name": "shell-abc", "image": IMAGE, "stdin": True, "stdinOnce": True, "tty": True,
        "workingDir": "/data/project/mytool/", "env": [{"name": "GREETING", "value": "hello"}],
        "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "125m", "memory": "256Mi"}},
        "command": ["sh", "-c", "echo $GREETING"]}]},
        "metadata": {"labels": {"name": "shell-abc", "toolforge": "tool",
                                "app.kubernetes.io/component": "webservice-interactive",
                                "app.kubernetes.io/managed-by": "webservice"}}}
    r = kubectl(*_run_args("shell-abc", "sh", "-c", "echo $GREETING", overrides=overrides))
    assert r.returncode == 0, r.stderr
    assert "hello" in r.stdout
    assert standin.get("Pod", NS, "shell-abc") is None
    created = standin.requests_for("POST", "/pods")[0].body
    assert created["metadata"]["labels"]["app.kubernetes.io/component"] == "webservice-interactive"
    attach = standin.requests_for("GET", "/pods/shell-abc/attach")[0]
    assert attach.status == 101 and attach.query["stdin"] == "true"
    assert [r.method for r in standin.requests_for(path="/pods/shell-abc")][-1] == "DELETE"


def test_run_attach_exit_code_is_propagated(kubectl, standin):
    r = kubectl(*_run_args("shell-exit", "sh", "-c", "echo failing; exit 7"))
    assert r.returncode == 7
    assert "failing" in r.stdout
    assert f"pod {NS}/shell-exit terminated (Error)" in r.stderr
    assert standin.get("Pod", NS, "shell-exit") is None


def test_run_attach_reads_stdin(kubectl, standin):
    r = kubectl(*_run_args("shell-cat", "sh", "-c", "read line; echo got:$line"), input="ping\n")
    assert r.returncode == 0, r.stderr
    assert "got:ping" in r.stdout


def test_run_attach_under_a_real_terminal(kubectl, standin, kubeconfig):
    # `script` gives kubectl a pty, so it really asks for tty=true and the process gets one
    script = shutil.which("script")
    if not script:
        pytest.skip("script(1) is not installed")
    import shlex
    import subprocess
    argv = [KUBECTL, "--kubeconfig", kubeconfig, *_run_args("shell-tty", "sh", "-c", "test -t 0 && echo is-a-tty")]
    env = {**os.environ, "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "true", "TERM": "dumb"}
    env.pop("KUBECONFIG", None)
    r = subprocess.run([script, "-qfec", shlex.join(argv), "/dev/null"], capture_output=True, text=True, env=env,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert "is-a-tty" in r.stdout, r.stdout + r.stderr
    attach = standin.requests_for("GET", "/pods/shell-tty/attach")[0]
    assert attach.query.get("tty") == "true"


def test_exec(kubectl, standin):
    standin.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                    "spec": {"containers": [{"name": "webservice", "image": IMAGE}]}})
    standin.wait_for(lambda: standin.get("Pod", NS, "web")["status"].get("phase") == "Running")
    r = kubectl("exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3
    assert r.stdout == "out\n" and "err" in r.stderr


@pytest.mark.parametrize("version", ["1.31", "1.33"])
def test_run_attach_with_newer_kubectl(version, tmp_path):
    """The dispatcher picks kubectl by the reported server version; 1.30+ attach over WebSocket
    by default (1.27/1.28 only speak SPDY, which the stand-in does not)."""
    import subprocess
    from tests.standin import StandIn
    from tests.standin.fixtures import KUBECTL_ENV
    s = StandIn(k8s_version=version, directory=str(tmp_path / "s")).start()
    try:
        kc = s.kubeconfig(str(tmp_path / "config"))
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBECTL_REMOTE_COMMAND_WEBSOCKETS")}
        env["CLOUDSDK_CORE_DISABLE_PROMPTS"] = KUBECTL_ENV["CLOUDSDK_CORE_DISABLE_PROMPTS"]
        r = subprocess.run([KUBECTL, "--kubeconfig", kc, *_run_args("shell-v", "sh", "-c", "echo hi; exit 5")],
                           capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 5, r.stderr
        assert "hi" in r.stdout
        ua = s.requests_for("POST", "/pods")[0].user_agent
        assert ua.startswith(f"kubectl/v{version}.")
        assert s.get("Pod", NS, "shell-v") is None
    finally:
        s.stop()
