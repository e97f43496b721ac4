"""The real CLI as a tool account under the stand-in's ``tools-user`` RBAC (REFERENCE 8):
start/status/logs/stop need no verb the role lacks (the stand-in logs no 403); without
HTTPRoute verbs a default start fails in one line and leaves nothing; a forbidden read is
one line naming the resource; and a default start/status/stop passes on preset
``toolforge`` (RBAC, Kyverno pod rule, Gateway controller, quotas all on)."""

from __future__ import annotations

import json

import pytest

NS = "tool-mytool"
KINDS = ("Deployment", "Service", "HTTPRoute", "Ingress", "ReplicaSet", "Pod")


@pytest.fixture
def env(python_env):
    return python_env


def forbidden(standin):
    return [(r.method, r.path) for r in standin.requests if r.status == 403]


def left(standin):
    return {k: [o["metadata"]["name"] for o in standin.objects(k, NS)] for k in KINDS if standin.objects(k, NS)}


def one_line_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_start_status_logs_stop_need_only_the_tools_user_role(env):
    env.standin.configure(rbac="tools-user")
    for args in (("python3.11", "start"), ("status",), ("logs",), ("stop",)):
        result = env.run(*args)
        assert result.returncode == 0, (args, result.stderr)
    assert forbidden(env.standin) == []
    assert any(r.user == "mytool" for r in env.standin.requests)  # the calls were made as the tool


def test_without_httproute_verbs_a_default_start_says_so_and_leaves_nothing(env):
    env.standin.configure(rbac="tools-user-no-httproute")
    result = env.run("python3.11", "start")
    line = one_line_error(result)
    assert "may not manage HTTPRoutes in tool-mytool" in line and "--routing ingress" in line, line
    assert "own namespace" not in line  # it is the tool's own namespace: no 'become <tool>' advice
    env.standin.wait_for(lambda: not env.standin.objects("Pod", NS))  # the removed Deployment's pods go
    assert left(env.standin) == {}


def test_without_httproute_verbs_the_advised_ingress_routing_works(env):
    """The advice is true: start/status/stop with '--routing ingress' pass; the client's
    list of HTTPRoutes (both routing kinds are listed) is refused and tolerated."""
    env.standin.configure(rbac="tools-user-no-httproute")
    for args in (("python3.11", "start", "--routing", "ingress"), ("status",), ("stop",)):
        result = env.run(*args)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (args, result.stderr)
    assert {path for _, path in forbidden(env.standin)} == {
        "/apis/gateway.networking.k8s.io/v1/namespaces/tool-mytool/httproutes"}
    env.standin.wait_for(lambda: not env.standin.objects("Pod", NS))
    assert left(env.standin) == {}


@pytest.mark.parametrize("rbac,path,names", [
    ("tools-user-no-httproute", "/apis/gateway.networking.k8s.io/v1/namespaces/tool-mytool/httproutes",
     "may not manage HTTPRoutes in tool-mytool"),
    ("tools-user", "/api/v1/namespaces/tool-othertool/pods", 'cannot list resource "pods"'),
    ("tools-user", "/api/v1/namespaces", 'cannot list resource "namespaces"'),
])
def test_a_forbidden_read_is_one_line_naming_the_resource(env, rbac, path, names):
    """The stand-in's real 403 answer, through the client's translation at the cluster boundary."""
    from webservice.kube.apierrors import translate_http_error

    env.standin.configure(rbac=rbac)
    code, _, body = env.standin.http("GET", path)
    assert code == 403
    error = translate_http_error(code, json.dumps(body), server=env.standin.url, what=f"GET {path}",
                                 namespace=NS, as_tool=True)
    text = str(error)
    assert "\n" not in text and names in text, text
    assert error.hint


def test_preset_toolforge_default_start_status_stop(env):
    env.standin.configure("toolforge")
    start = env.run("python3.11", "start")
    assert start.returncode == 0, start.stderr
    (pod,) = env.standin.objects("Pod", NS)
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    (route,) = env.standin.objects("HTTPRoute", NS)
    accepted = {c["type"]: c["status"] for c in route["status"]["parents"][0]["conditions"]}
    assert accepted == {"Accepted": "True", "ResolvedRefs": "True"}
    status = env.run("status")
    assert status.returncode == 0 and "is running" in status.stdout, status.stderr
    stop = env.run("stop")
    assert stop.returncode == 0, stop.stderr
    assert forbidden(env.standin) == []
    env.standin.wait_for(lambda: not env.standin.objects("Pod", NS))
    assert left(env.standin) == {}
