"""start/restart/status/stop with Gateway API routing, end to end: the real CLI against the
stand-in and its Gateway controller (tests/standin/gateway.py, ``standin.gateway``).

"Serving" means the HTTPRoute is attached: the Gateway's controller accepted it and
resolved its backend for its current generation. No sleeps: the stand-in's gate holds the
controller until the test releases it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.test_lifecycle_e2e import WEB, env, run, web_objects  # noqa: F401 - env is a fixture

GATEWAY = "istio-gateway/toolforge"


def site_config(env, text: str) -> None:
    path = Path(env.env["WEBSERVICE_SITE_CONFIG"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def error_line(result) -> str:
    """The one error line (progress lines come before it on stderr)."""
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("webservice: error: ")]
    return line


def route_conditions(env, name="mytool") -> dict:
    route = env.standin.get("HTTPRoute", env.standin.namespace, name)
    (parent,) = route["status"]["parents"]
    return {c["type"]: c["status"] for c in parent["conditions"]}


def test_default_start_serves_through_the_gateway_and_says_so(env):
    result = run(env, "python3.11", "start")
    assert result.returncode == 0, result.stderr
    assert f"route: accepted by {GATEWAY}" in result.stdout
    assert route_conditions(env) == {"Accepted": "True", "ResolvedRefs": "True"}
    route = env.standin.get("HTTPRoute", env.standin.namespace, "mytool")
    assert route["spec"]["parentRefs"] == [{"name": "toolforge", "namespace": "istio-gateway"}]
    watched = [r for r in env.standin.requests if r.query.get("watch") == "true" and "httproutes" in r.path]
    assert len(watched) == 1  # the route is watched, not polled

    status = run(env, "status")
    assert status.returncode == 0
    assert f"route:     accepted by {GATEWAY}" in status.stdout
    data = json.loads(run(env, "status", "--json").stdout)
    (entry,) = data["routes"]
    assert (entry["kind"], entry["name"], entry["hostnames"]) == ("HTTPRoute", "mytool", ["mytool.toolforge.org"])
    assert entry["state"] == "attached" and entry["parent"] == GATEWAY
    assert {c["type"]: c["status"] for c in entry["conditions"]} == {"Accepted": "True", "ResolvedRefs": "True"}
    assert data["urls"] == ["https://mytool.toolforge.org/"]  # the fields of before are still there


def test_start_waits_until_the_gateway_accepts_the_route(env):
    standin = env.standin
    standin.gateway.mode = "gate"
    standin.clear_requests()
    process = env.popen("python3.11", "start", "--timeout", "60")
    try:
        # the pods serve and the route exists, but the controller has not looked at it yet
        standin.wait_for(lambda: standin.get("HTTPRoute", standin.namespace, "mytool")
                         and any(c["type"] == "Ready" and c["status"] == "True"
                                 for p in standin.pods(**WEB) for c in (p.get("status") or {}).get("conditions") or []),
                         timeout=30)
        assert process.poll() is None  # still waiting: a ready pod is not yet a served route
        standin.gateway.release()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert f"route: accepted by {GATEWAY}" in out


def test_a_gateway_that_does_not_exist_is_explained_and_fails(env):
    site_config(env, "gateway_namespace: toolforge-gateway\n")  # the 2021 layout
    result = run(env, "python3.11", "start")
    assert result.returncode == 5, result.stdout + result.stderr
    first = error_line(result)
    assert "did not accept the route HTTPRoute/mytool" in first and "NoMatchingParent" in first
    assert "gateway_namespace" in first  # what to do
    assert "Traceback" not in result.stderr
    status = run(env, "status")
    assert "route:     not accepted by toolforge-gateway/toolforge (NoMatchingParent:" in status.stdout
    data = json.loads(run(env, "status", "--json").stdout)
    assert data["routes"][0]["state"] == "refused" and data["routes"][0]["reason"] == "NoMatchingParent"
    # fixed config: the restart's new route version is accepted (the old refusal is not taken for it)
    site_config(env, "")
    fixed = run(env, "python3.11", "restart")
    assert fixed.returncode == 0, fixed.stderr
    assert f"route: accepted by {GATEWAY}" in fixed.stdout


def test_no_gateway_controller_means_unconfirmed_and_non_zero(env):
    env.standin.gateway.mode = "none"
    result = run(env, "python3.11", "start", "--timeout", "4")
    assert result.returncode == 5, result.stdout + result.stderr
    first = error_line(result)
    assert f"no Gateway controller has accepted the route HTTPRoute/mytool on {GATEWAY} within 4 s" in first
    assert "serves at" not in result.stdout + result.stderr
    data = json.loads(run(env, "status", "--json").stdout)
    assert data["routes"][0]["state"] == "unconfirmed" and data["routes"][0]["conditions"] == []


def test_an_older_route_on_the_host_wins_and_start_says_which(env):
    # an older route on the tool's host in a namespace the tool cannot read (one in its own
    # namespace, e.g. a published job's, is refused before applying: test_conflicts_e2e.py),
    # so only the Gateway's verdict tells
    env.standin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-gateway"}})
    env.standin.create({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                        "metadata": {"name": "a-route", "namespace": "istio-gateway"},
                        "spec": {"parentRefs": [{"name": "toolforge", "namespace": "istio-gateway"}],
                                 "hostnames": ["mytool.toolforge.org"],
                                 "rules": [{"backendRefs": [{"name": "a-route", "port": 8080}]}]}})
    result = run(env, "python3.11", "start")
    assert result.returncode == 5, result.stdout + result.stderr
    first = error_line(result)
    assert "HostnameConflict" in first and "istio-gateway/a-route" in first
    assert env.standin.get("HTTPRoute", "istio-gateway", "a-route") is not None  # never touched


def test_restart_moves_a_tool_from_its_old_ingress_to_an_httproute(env):
    ns = env.standin.namespace
    started = run(env, "python3.11", "start", "--routing", "ingress")  # as an earlier version did
    assert started.returncode == 0, started.stderr
    foreign = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "handmade", "labels": {"name": "mytool"}},
               "spec": {"rules": [{"host": "mytool.toolforge.org", "http": {"paths": [
                   {"path": "/api", "pathType": "Prefix",
                    "backend": {"service": {"name": "mytool", "port": {"number": 8000}}}}]}}]}}
    env.standin.create(foreign)
    old = env.standin.get("Ingress", ns, "mytool-subdomain")
    result = run(env, "python3.11", "restart")
    assert result.returncode == 0, result.stderr
    assert web_objects(env)["Ingress"] == [] and web_objects(env)["HTTPRoute"] == ["mytool"]
    assert env.standin.get("Ingress", ns, "handmade") is not None  # not ours: left alone
    (delete,) = [r for r in env.standin.requests if r.method == "DELETE"]
    assert delete.path.endswith("/ingresses/mytool-subdomain")
    assert delete.body["preconditions"]["uid"] == old["metadata"]["uid"]
    assert f"route: accepted by {GATEWAY}" in result.stdout


def test_moving_back_to_ingress_routing_deletes_the_httproute(env):
    assert run(env, "python3.11", "start").returncode == 0
    route = env.standin.get("HTTPRoute", env.standin.namespace, "mytool")
    result = run(env, "python3.11", "restart", "--routing", "ingress")
    assert result.returncode == 0, result.stderr
    assert web_objects(env)["Ingress"] == ["mytool-subdomain"] and web_objects(env)["HTTPRoute"] == []
    (delete,) = [r for r in env.standin.requests if r.method == "DELETE"]
    assert delete.path.endswith("/httproutes/mytool")
    assert delete.body["preconditions"]["uid"] == route["metadata"]["uid"]


def test_stop_removes_every_routing_kind_it_owns(env):
    ns = env.standin.namespace
    assert run(env, "python3.11", "start").returncode == 0
    # an Ingress left by an earlier version, with our labels
    env.standin.create({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                        "metadata": {"name": "mytool-subdomain", "labels": dict(WEB, name="mytool", toolforge="tool")},
                        "spec": {"rules": [{"host": "mytool.toolforge.org", "http": {"paths": [
                            {"path": "/", "pathType": "Prefix",
                             "backend": {"service": {"name": "mytool", "port": {"number": 8000}}}}]}}]}})
    result = run(env, "stop")
    assert result.returncode == 0, result.stderr
    assert web_objects(env) == {"Deployment": [], "Service": [], "Ingress": [], "HTTPRoute": []}
    assert env.standin.objects("HTTPRoute", ns) == []
    deleted = json.loads(run(env, "stop", "--json").stdout)
    assert deleted["was_running"] is False


def test_ingress_routing_is_not_waited_for(env):
    os.makedirs(env.tmp, exist_ok=True)
    site_config(env, "routing: ingress\ningress_class: istio\n")
    result = run(env, "python3.11", "start")
    assert result.returncode == 0, result.stderr
    ingress = env.standin.get("Ingress", env.standin.namespace, "mytool-subdomain")
    assert ingress["spec"]["ingressClassName"] == "istio"
    assert not [r for r in env.standin.requests if "httproutes" in r.path and r.method != "GET"]
    data = json.loads(run(env, "status", "--json").stdout)
    assert data["routes"][0]["kind"] == "Ingress" and data["routes"][0]["state"] == "unchecked"
