"""Sharing the namespace with jobs and other owners (issue 14 section 3), end to end: the
real CLI as the tool account against the stand-in as today's Toolforge (tools-user RBAC,
Kyverno rule, Gateway controller, the 2023 quota: services 1, count/deployments.apps 3).

A job published on the tool's host, an object made by hand under the webservice's name,
or a quota used up by jobs: start and restart refuse in one line naming the object and its
owner, before anything is changed; stop never deletes what is not the webservice's."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.standin.toolforge import job_labels

NS = "tool-mytool"
WEB = {"app.kubernetes.io/component": "web", "app.kubernetes.io/managed-by": "webservice"}
KINDS = ("Deployment", "Service", "HTTPRoute", "Ingress")


@pytest.fixture
def env(python_env):
    return python_env


def run(env, *args):
    env.standin.clear_requests()
    result = env.run(*args)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def snapshot(standin) -> dict:
    """Every object of the four kinds in the namespace: what a change by webservice would alter
    (its uid, labels, annotations, field managers and spec; not the status the stand-in's
    controllers keep writing)."""
    def kept(o):
        meta = o["metadata"]
        managers = sorted(m.get("manager", "") for m in meta.get("managedFields") or []
                          if m.get("subresource") != "status")
        return copy.deepcopy((meta.get("uid"), meta.get("labels"), meta.get("annotations"), managers, o.get("spec")))
    return {(k, o["metadata"]["name"]): kept(o) for k in KINDS for o in standin.objects(k, NS)}


def web_objects(standin) -> list:
    return sorted((k, o["metadata"]["name"]) for k in KINDS for o in standin.objects(k, NS)
                  if all((o["metadata"].get("labels") or {}).get(key) == v for key, v in WEB.items()))


def changes(standin) -> list:
    return [(r.method, r.path) for r in standin.requests if r.method in ("PATCH", "POST", "PUT", "DELETE")]


def quota_used(standin, key: str, value: str) -> None:
    """Wait until the stand-in's quota controller has counted what exists (no clock involved:
    the condition is the stored status)."""
    standin.wait_for(lambda: ((standin.get("ResourceQuota", NS, NS) or {}).get("status") or {})
                     .get("used", {}).get(key) == value, message=f"quota {key} used {value}")


def manifest_absent(env) -> bool:
    return not Path(env.home, "service.manifest").exists()


# --- a job published on the tool's host --------------------------------------------------------------


@pytest.mark.parametrize("command", [("python3.11", "start"), ("python3.11", "restart")])
def test_a_job_published_on_our_host_refuses_start_in_one_line(toolforge_with_job, env, command):
    before = snapshot(toolforge_with_job)
    result = run(env, *command)
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert "the job 'myjob' publishes HTTPRoute 'myjob' on mytool.toolforge.org" in line
    assert "nothing was changed" in line and "'toolforge jobs delete myjob'" in line
    assert changes(toolforge_with_job) == []
    assert snapshot(toolforge_with_job) == before  # the job's objects untouched, nothing of ours created
    assert web_objects(toolforge_with_job) == []
    assert manifest_absent(env)


def test_once_the_job_is_gone_the_start_serves(toolforge_with_job, env):
    assert run(env, "python3.11", "start").returncode == 2
    for kind in ("HTTPRoute", "Service", "Deployment"):  # what 'toolforge jobs delete myjob' does
        assert toolforge_with_job.http("DELETE", f"{_path(kind)}/myjob", user="kubernetes-admin")[0] == 200
    quota_used(toolforge_with_job, "services", "0")
    result = run(env, "python3.11", "start")
    assert result.returncode == 0, result.stderr
    assert web_objects(toolforge_with_job) == [("Deployment", "mytool"), ("HTTPRoute", "mytool"), ("Service", "mytool")]


def _path(kind: str) -> str:
    return {"HTTPRoute": f"/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes",
            "Service": f"/api/v1/namespaces/{NS}/services",
            "Deployment": f"/apis/apps/v1/namespaces/{NS}/deployments",
            "Ingress": f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses"}[kind]


def test_a_job_published_after_the_webservice_does_not_block_its_restart(toolforge, env):
    """The webservice's route is the older: it keeps the host (the job's route is refused by
    the Gateway), so a restart goes on, with a warning naming the job."""
    toolforge.set_quota({"services": "2"})
    assert run(env, "python3.11", "start").returncode == 0
    toolforge.publish_job("myjob", 8080, older_by=-3600)  # created after ours
    job_route = toolforge.get("HTTPRoute", NS, "myjob")
    result = run(env, "restart")
    assert result.returncode == 0, result.stderr
    assert ("warning: the job 'myjob' publishes HTTPRoute 'myjob' on mytool.toolforge.org, but the webservice's "
            "older HTTPRoute 'mytool' keeps that host") in result.stderr
    assert "route: accepted by" in result.stdout
    assert toolforge.get("HTTPRoute", NS, "myjob")["spec"] == job_route["spec"]
    conditions = toolforge.wait_for(lambda: [c for p in (toolforge.get("HTTPRoute", NS, "myjob").get("status") or {})
                                             .get("parents", []) for c in p.get("conditions", [])
                                             if c["type"] == "Accepted"])
    assert conditions[0]["reason"] == "HostnameConflict"  # the Gateway agrees: the job's route lost


def test_an_ingress_made_by_hand_on_our_host_refuses_start(toolforge, env):
    toolforge.create({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                      "metadata": {"name": "custom", "labels": {"app": "custom"}},
                      "spec": {"rules": [{"host": "mytool.toolforge.org", "http": {"paths": [
                          {"path": "/", "pathType": "Prefix",
                           "backend": {"service": {"name": "custom", "port": {"number": 80}}}}]}}]}}, NS)
    before = snapshot(toolforge)
    result = run(env, "python3.11", "start")
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert "Ingress 'custom' (made by hand or by another tool) claims mytool.toolforge.org" in line
    assert "'kubectl delete ingress custom' if it is not needed" in line
    assert changes(toolforge) == [] and snapshot(toolforge) == before


# --- objects named like ours that are not ours ---------------------------------------------------------

HAND_SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mytool", "labels": {"app": "mine"}},
                "spec": {"selector": {"app": "mine"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def test_a_service_made_by_hand_with_our_name_is_never_taken_over(toolforge, env):
    toolforge.create(copy.deepcopy(HAND_SERVICE), NS)
    before = snapshot(toolforge)
    for command in (("python3.11", "start"), ("python3.11", "restart")):
        result = run(env, *command)
        assert result.returncode == 2, result.stderr
        line = one_line(result)
        assert "Service 'mytool' is not managed by webservice (it was made by hand or by another tool)" in line
        assert "nothing was changed" in line and "'kubectl delete service mytool'" in line
        assert changes(toolforge) == [] and snapshot(toolforge) == before
    assert manifest_absent(env)

    result = run(env, "stop")
    assert result.returncode == 0, result.stderr  # nothing of the webservice's to stop: as before
    assert "not running" in result.stdout
    assert ("Service 'mytool' is not managed by webservice (it was made by hand or by another tool): "
            "left as it is") in one_line(result)
    assert changes(toolforge) == [] and snapshot(toolforge) == before


def test_stop_deletes_ours_and_leaves_a_foreign_object_of_our_name(toolforge, env):
    assert run(env, "python3.11", "start").returncode == 0
    # someone adds by hand an Ingress under the name the webservice's ingress routing uses
    toolforge.create({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                      "metadata": {"name": "mytool-subdomain"},
                      "spec": {"rules": [{"host": "mytool.toolforge.org", "http": {"paths": [
                          {"path": "/", "pathType": "Prefix",
                           "backend": {"service": {"name": "mytool", "port": {"number": 8000}}}}]}}]}}, NS)
    foreign = copy.deepcopy(toolforge.get("Ingress", NS, "mytool-subdomain"))
    result = run(env, "stop")
    assert result.returncode == 0, result.stderr
    assert ("Ingress 'mytool-subdomain' is not managed by webservice (it was made by hand or by another tool): "
            "left as it is") in result.stderr
    assert web_objects(toolforge) == []
    assert toolforge.get("Ingress", NS, "mytool-subdomain") == foreign
    deleted = sorted(p.rsplit("/", 2)[-2] for m, p in changes(toolforge) if m == "DELETE")
    assert deleted == ["deployments", "httproutes", "services"]


def test_a_job_deployment_of_our_name_stays_and_stop_says_whose_it_is(toolforge, env):
    toolforge.create({"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": "mytool", "labels": job_labels("mytool", "mytool")},
                      "spec": {"replicas": 0, "selector": {"matchLabels": {"app.kubernetes.io/name": "mytool"}},
                               "template": {"metadata": {"labels": job_labels("mytool", "mytool")},
                                            "spec": {"containers": [{"name": "job", "image": "img:1"}]}}}}, NS)
    before = snapshot(toolforge)
    start = run(env, "python3.11", "start")
    assert start.returncode == 2
    assert "Deployment 'mytool' is not managed by webservice (it belongs to the job 'mytool')" in one_line(start)
    assert "'toolforge jobs delete mytool'" in one_line(start)
    stop = run(env, "stop")
    assert stop.returncode == 0 and "not running" in stop.stdout
    assert "Deployment 'mytool' is not managed by webservice (it belongs to the job 'mytool')" in one_line(stop)
    assert snapshot(toolforge) == before and changes(toolforge) == []


# --- quotas beyond cpu and memory -------------------------------------------------------------------


def test_the_services_quota_used_by_a_job_is_named(toolforge, env):
    # a continuous job with a port but not published ('toolforge jobs run --port 8080'): a
    # Service and no route; its Service takes the one the quota allows
    toolforge.publish_job("myjob", 8080)
    assert toolforge.http("DELETE", f"{_path('HTTPRoute')}/myjob", user="kubernetes-admin")[0] == 200
    quota_used(toolforge, "services", "1")
    before = snapshot(toolforge)
    result = run(env, "python3.11", "start")
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert ("the namespace quota tool-mytool allows 1 Service and the job 'myjob' uses it (Service 'myjob') "
            "(services: 1 of 1 used), so the webservice's Service cannot be created; nothing was changed") in line
    assert "'toolforge jobs delete myjob'" in line
    assert changes(toolforge) == [] and snapshot(toolforge) == before


def test_the_deployment_count_used_by_jobs_is_named(toolforge, env):
    for name in ("a", "b", "c"):
        labels = job_labels("mytool", name)
        toolforge.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
                          "spec": {"replicas": 0, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                                   "template": {"metadata": {"labels": labels},
                                                "spec": {"containers": [{"name": "job", "image": "img:1"}]}}}}, NS)
    quota_used(toolforge, "count/deployments.apps", "3")
    result = run(env, "python3.11", "start")
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert ("allows 3 Deployments and they are used by the job 'a' (Deployment 'a'), the job 'b' (Deployment 'b'), "
            "the job 'c' (Deployment 'c') (count/deployments.apps: 3 of 3 used)") in line
    assert changes(toolforge) == [] and web_objects(toolforge) == []


def test_a_restart_does_not_count_its_own_service_and_deployment(toolforge, env):
    toolforge.set_quota({"services": "1", "count/deployments.apps": "1"})
    assert run(env, "python3.11", "start").returncode == 0
    quota_used(toolforge, "services", "1")
    quota_used(toolforge, "count/deployments.apps", "1")
    result = run(env, "restart")
    assert result.returncode == 0, result.stderr
    assert "restarted" in result.stdout


# --- reads the tool may not make: the checks are skipped, the start goes on ---------------------------


@pytest.mark.standin("toolforge", rbac="tools-user-no-httproute")
def test_without_httproute_verbs_an_ingress_start_skips_the_route_check(standin, env):
    result = run(env, "--debug", "--routing", "ingress", "python3.11", "start", "--no-wait")
    assert result.returncode == 0, result.stderr
    assert "debug: may not list HTTPRoutes: the checks for other owners skip them" in result.stderr
    assert web_objects(standin) == [("Deployment", "mytool"), ("Ingress", "mytool-subdomain"), ("Service", "mytool")]


def test_a_forbidden_service_list_does_not_block_the_start(toolforge, env):
    toolforge.add_fault(status=403, method="GET", path=f"/api/v1/namespaces/{NS}/services",
                        match=lambda r: "watch" not in r.query, times=1)
    result = run(env, "--debug", "python3.11", "start")
    assert result.returncode == 0, result.stderr
    assert "debug: may not list Services: the checks for other owners skip them" in result.stderr
