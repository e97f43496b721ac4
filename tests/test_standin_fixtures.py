"""The fixtures other tests build on: ``standin`` resets, ``ws_env`` isolation and its
Toolforge-like kubeconfig, ``kube_client``, ``kubectl``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

NS = "tool-mytool"


def test_standin_is_reset_between_tests_part1(standin):
    standin.scenario = "crashloop"
    standin.time_scale = 0.5
    standin.set_quota({"pods": "1"})
    standin.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "leftover"}})
    standin.add_fault(status=500)


def test_standin_is_reset_between_tests_part2(standin):
    assert standin.scenario == "healthy" and standin.time_scale == 0.01 and standin.faults == []
    assert standin.get("ConfigMap", NS, "leftover") is None
    assert standin.get("ResourceQuota", NS, NS)["spec"]["hard"]["pods"] == "4"
    assert standin.requests == []
    assert {n["metadata"]["name"] for n in standin.objects("Namespace")} == {"tool-mytool", "tool-othertool",
                                                                              "tf-public"}
    lr = standin.get("LimitRange", NS, NS)["spec"]["limits"][0]
    assert lr["max"] == {"cpu": "1", "memory": "4Gi"} and lr["min"] == {"cpu": "50m", "memory": "100Mi"}


def test_ws_env_layout_and_environment(ws_env, monkeypatch):
    env = ws_env.env
    assert env["HOME"] == ws_env.home and os.path.isdir(ws_env.home)
    assert ws_env.kubeconfig == os.path.join(ws_env.home, ".kube", "config")
    cfg = yaml.safe_load(open(ws_env.kubeconfig))
    user = cfg["users"][0]["user"]
    assert user == {"client-certificate": "../.toolskube/client.crt", "client-key": "../.toolskube/client.key"}
    assert os.path.exists(os.path.join(ws_env.home, ".toolskube", "client.key"))
    assert cfg["contexts"][0]["context"]["namespace"] == NS
    assert "KUBECONFIG" not in env
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        assert env[var].startswith(ws_env.tmp)
    assert env["WEBSERVICE_TOOL"] == "mytool" and not os.path.exists(env["WEBSERVICE_SITE_CONFIG"])
    assert (env["NO_COLOR"], env["COLUMNS"], env["TERM"]) == ("1", "100", "dumb")
    assert env["PATH"] == os.environ["PATH"]
    cmd = ws_env.command("status")
    assert cmd[-1] == "status" and (cmd[0].endswith("/webservice") or cmd[:3] == [sys.executable, "-m", "webservice"])


def test_ws_env_kubeconfig_works_for_the_client_in_a_subprocess(ws_env, standin):
    # the default ~/.kube/config, with its relative certificate paths, through the client's own
    # configuration and connection pool (the API classes are slow to import in kubernetes 37)
    code = ("import json; from kubernetes import config; c = config.new_client_from_config(); "
            "r = c.rest_client.pool_manager.request('GET', c.configuration.host + "
            "'/api/v1/namespaces/tool-mytool/configmaps'); "
            "print(r.status, [i['metadata']['name'] for i in json.loads(r.data)['items']])")
    r = subprocess.run([sys.executable, "-c", code], env=ws_env.env, cwd=ws_env.home, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "200 []"
    assert standin.requests[-1].user == "mytool"


@pytest.mark.kubectl  # skipped when kubectl is not installed (tests/conftest.py)
def test_ws_env_kubeconfig_works_for_kubectl(ws_env, standin):
    from tests.standin.fixtures import KUBECTL
    r = subprocess.run([KUBECTL, "get", "configmaps"], env=ws_env.env, cwd="/", capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert any(q.path == f"/api/v1/namespaces/{NS}/configmaps" for q in standin.requests)


def test_ws_env_run_and_popen_use_the_environment(ws_env, monkeypatch):
    # run a stand-in "webservice" (python -c) through the same plumbing
    monkeypatch.setattr(ws_env, "command", lambda *a: [sys.executable, "-c",
                                                       "import os,sys; print(os.environ['HOME'], sys.argv[1:])", *a])
    r = ws_env.run("status", "--x")
    assert r.returncode == 0 and r.stdout == f"{ws_env.home} ['status', '--x']\n"
    r = ws_env.run("a", env_extra={"HOME": "/elsewhere"})
    assert r.stdout.startswith("/elsewhere ")
    p = ws_env.popen("b")
    out, _ = p.communicate(timeout=30)
    assert out.startswith(ws_env.home)


def test_kube_client_factory_users(kube_client, standin):
    from kubernetes import client
    client.CoreV1Api(kube_client("othertool")).list_namespaced_config_map("tool-othertool")
    assert standin.requests[-1].user == "othertool"


def test_wait_for_timeout(standin):
    import pytest
    with pytest.raises(TimeoutError, match="never"):
        standin.wait_for(lambda: False, timeout=0.05, message="never")


def test_quota_and_limits_assignment_takes_effect(standin):
    standin.quota = {"pods": "2", "services": "1"}
    assert standin.get("ResourceQuota", NS, NS)["spec"]["hard"] == {"pods": "2", "services": "1"}
    standin.limits = {"max": {"cpu": "2"}}
    assert standin.get("LimitRange", NS, NS)["spec"]["limits"] == [{"type": "Container", "max": {"cpu": "2"}}]
    standin.set_limits(min={"memory": "1Mi"})
    assert standin.get("LimitRange", NS, NS)["spec"]["limits"][0]["min"] == {"memory": "1Mi"}


def test_pause_freezes_the_simulation(standin):
    standin.pause()
    standin.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                    "spec": {"containers": [{"name": "c", "image": "img"}]}})
    import time
    time.sleep(0.2)
    assert standin.get("Pod", NS, "p")["status"]["phase"] == "Pending"
    assert not standin.get("Pod", NS, "p")["spec"].get("nodeName")
    standin.resume()
    standin.wait_for(lambda: standin.get("Pod", NS, "p")["status"]["phase"] == "Running")
