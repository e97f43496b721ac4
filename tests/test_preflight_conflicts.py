"""The pure checks against other owners in the tool's namespace (issue 14 section 3):
owners read from labels, objects named like ours, routes on our host, object-count quotas."""

from __future__ import annotations

import pytest

from webservice.health import owners
from webservice.actions import preflight
from webservice.errors import PreflightError

NS = "tool-mytool"
HOST = "mytool.toolforge.org"
WEB = {"toolforge": "tool", "name": "mytool", "app.kubernetes.io/component": "web",
       "app.kubernetes.io/managed-by": "webservice"}


def job_labels(name):  # what jobs-api puts on a published job's objects (tests/standin/toolforge.py)
    return {"toolforge": "tool", "app.kubernetes.io/managed-by": "toolforge-jobs-framework",
            "app.kubernetes.io/created-by": "mytool", "app.kubernetes.io/component": "deployments",
            "app.kubernetes.io/name": name}


def obj(kind, name, labels=None, spec=None, namespace=NS):
    meta = {"name": name, "namespace": namespace}
    if labels is not None:
        meta["labels"] = labels
    return {"kind": kind, "metadata": meta, "spec": spec or {}}


def httproute(name, labels=None, hosts=(HOST,), paths=None, backend=None):
    refs = [{"name": backend or name, "port": 8000}]
    rules = [{"matches": [{"path": {"type": "PathPrefix", "value": p}} for p in paths], "backendRefs": refs}] \
        if paths else [{"backendRefs": refs}]
    return obj("HTTPRoute", name, labels, {"hostnames": list(hosts), "rules": rules})


def ingress(name, labels=None, host=HOST, path="/", backend=None):
    rule = {"http": {"paths": [{"path": path, "pathType": "Prefix",
                                "backend": {"service": {"name": backend or name, "port": {"number": 8000}}}}]}}
    if host is not None:
        rule["host"] = host
    return obj("Ingress", name, labels, {"rules": [rule]})


OUR_ROUTE = httproute("mytool", WEB)
OUR_INGRESS = ingress("mytool-subdomain", WEB, backend="mytool")
OUR_LEGACY = ingress("mytool-legacy", WEB, host="tools.wmflabs.org", path="/mytool", backend="mytool")


# --- owners ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("labels,kind,words,free", [
    (job_labels("foo"), "job", "the job 'foo'", "toolforge jobs delete foo"),
    ({"app.kubernetes.io/managed-by": "toolforge-jobs-framework"}, "job", "the job 'svc'", "toolforge jobs delete svc"),
    ({"app.kubernetes.io/managed-by": "Helm"}, "managed", "'Helm'",
     "kubectl delete service svc"),
    ({"app": "svc"}, "unknown", "made by hand or by another tool", "kubectl delete service svc"),
    (None, "unknown", "made by hand or by another tool", "kubectl delete service svc"),
])
def test_owner_from_labels(labels, kind, words, free):
    owner = owners.owner_of("Service", obj("Service", "svc", labels))
    assert (owner.kind, owner.words, owner.free) == (kind, words, free)


@pytest.mark.parametrize("labels,namespace,expected", [
    (WEB, NS, True),
    ({"app.kubernetes.io/component": "web", "app.kubernetes.io/managed-by": "webservice"}, NS, True),
    ({**WEB, "app.kubernetes.io/managed-by": "toolforge-jobs-framework"}, NS, False),
    ({**WEB, "app.kubernetes.io/component": "webservice-interactive"}, NS, False),  # a shell pod's
    ({"name": "mytool", "toolforge": "tool"}, NS, False),
    (WEB, "tool-other", False),
    (None, NS, False),
])
def test_ours(labels, namespace, expected):
    assert owners.ours(obj("Service", "mytool", labels, namespace=namespace), NS) is expected


# --- names -----------------------------------------------------------------------------------------

WANTED = [("Deployment", "mytool"), ("Service", "mytool"), ("HTTPRoute", "mytool")]


@pytest.mark.parametrize("existing,words,free", [
    ({"Service": [obj("Service", "mytool")]},
     "Service 'mytool' is not managed by webservice (it was made by hand or by another tool)",
     "kubectl delete service mytool"),
    ({"Deployment": [obj("Deployment", "mytool", job_labels("mytool"))]},
     "Deployment 'mytool' is not managed by webservice (it belongs to the job 'mytool')", "toolforge jobs delete mytool"),
    ({"HTTPRoute": [httproute("mytool", {"app.kubernetes.io/managed-by": "argocd"})]},
     "HTTPRoute 'mytool' is not managed by webservice (it is managed by 'argocd')", "kubectl delete httproute mytool"),
])
def test_a_foreign_object_with_our_name_is_refused(existing, words, free):
    with pytest.raises(PreflightError) as caught:
        preflight.check_names(WANTED, existing, NS)
    assert words in caught.value.message and "nothing was changed" in caught.value.message
    assert f"'{free}'" in caught.value.hint


@pytest.mark.parametrize("existing", [
    {},
    {"Service": None, "HTTPRoute": None},  # could not be listed: the cluster decides
    {"Service": [obj("Service", "mytool", WEB)], "Deployment": [obj("Deployment", "mytool", WEB)]},  # ours
    {"Service": [obj("Service", "myjob", job_labels("myjob"))]},  # another name
    {"Ingress": [ingress("mytool", None)]},  # our name, but a kind we do not apply here
])
def test_names_that_are_free_or_ours_pass(existing):
    assert preflight.check_names(WANTED, existing, NS) is None


def test_foreign_named_lists_every_one_in_order():
    existing = {"Service": [obj("Service", "mytool")], "Deployment": [obj("Deployment", "mytool", job_labels("x"))]}
    found = preflight.foreign_named(WANTED, existing, NS)
    assert [(k, o["metadata"]["name"]) for k, o in found] == [("Deployment", "mytool"), ("Service", "mytool")]


# --- hosts -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("ours,theirs,line", [
    (OUR_ROUTE, ("HTTPRoute", httproute("myjob", job_labels("myjob"))),
     "the job 'myjob' publishes HTTPRoute 'myjob' on mytool.toolforge.org"),
    (OUR_ROUTE, ("Ingress", ingress("custom")),
     "Ingress 'custom' (made by hand or by another tool) claims mytool.toolforge.org"),
    (OUR_INGRESS, ("HTTPRoute", httproute("byhand", {"app": "x"}, hosts=("MyTool.Toolforge.org",))),
     "HTTPRoute 'byhand' (made by hand or by another tool) claims mytool.toolforge.org"),
    (OUR_ROUTE, ("HTTPRoute", httproute("api", job_labels("api"), paths=["/api"])),
     "the job 'api' publishes HTTPRoute 'api' on mytool.toolforge.org/api"),  # all paths: /api is ours too
    (OUR_LEGACY, ("Ingress", ingress("old", None, host="tools.wmflabs.org", path="/mytool(/|$)(.*)")),
     "Ingress 'old' (made by hand or by another tool) claims tools.wmflabs.org/mytool"),
    (OUR_LEGACY, ("Ingress", ingress("root", None, host="tools.wmflabs.org", path="/")),
     "Ingress 'root' (made by hand or by another tool) claims tools.wmflabs.org"),
    (OUR_ROUTE, ("HTTPRoute", httproute("helm", {"app.kubernetes.io/managed-by": "Helm"})),
     "HTTPRoute 'helm' (managed by 'Helm') claims mytool.toolforge.org"),
])
def test_another_route_on_our_host_is_refused(ours, theirs, line):
    with pytest.raises(PreflightError) as caught:
        preflight.check_host_claims(ours, [theirs], NS)
    assert caught.value.message.startswith(line + ": "), caught.value.message
    assert "nothing was changed" in caught.value.message
    free = owners.owner_of(*theirs).free
    assert f"'{free}'" in caught.value.hint


def test_a_job_route_hint_says_how_to_free_the_host():
    with pytest.raises(PreflightError) as caught:
        preflight.check_host_claims(OUR_ROUTE, [("HTTPRoute", httproute("myjob", job_labels("myjob")))], NS)
    assert caught.value.hint == ("free the host first ('toolforge jobs delete myjob', or run the job without "
                                 "--publish), then start again")


def test_several_claims_are_one_line_naming_them_all():
    routes = [("HTTPRoute", httproute("myjob", job_labels("myjob"))), ("Ingress", ingress("custom"))]
    with pytest.raises(PreflightError) as caught:
        preflight.check_host_claims(OUR_ROUTE, routes, NS)
    assert "(also Ingress 'custom' (made by hand or by another tool))" in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.parametrize("ours,routes", [
    (OUR_ROUTE, []),
    (OUR_ROUTE, [("HTTPRoute", OUR_ROUTE), ("Ingress", OUR_INGRESS)]),  # ours (a stale Ingress too)
    (OUR_ROUTE, [("HTTPRoute", httproute("other", job_labels("other"), hosts=("other.toolforge.org",)))]),
    (OUR_ROUTE, [("HTTPRoute", httproute("wild", None, hosts=("*.toolforge.org",)))]),  # an exact host wins
    (OUR_ROUTE, [("HTTPRoute", httproute("nohost", None, hosts=()))]),
    (OUR_ROUTE, [("Ingress", ingress("hostless", None, host=None))]),
    (OUR_ROUTE, [("HTTPRoute", httproute("evil", None, hosts=("mytool.toolforge.org.evil.example",)))]),
    (OUR_LEGACY, [("Ingress", ingress("sibling", None, host="tools.wmflabs.org", path="/mytool2"))]),
    (OUR_LEGACY, [("Ingress", ingress("other", None, host="tools.wmflabs.org", path="/othertool/"))]),
    # a path routed by hand to the webservice's own Service takes nothing away from it
    (OUR_ROUTE, [("Ingress", ingress("handmade", {"name": "mytool"}, path="/api", backend="mytool"))]),
    (OUR_INGRESS, [("HTTPRoute", httproute("extra", None, paths=["/x"], backend="mytool"))]),
    (OUR_ROUTE, [("HTTPRoute", {"kind": "HTTPRoute", "metadata": {"name": "odd"}, "spec": {"hostnames": "x",
                                                                                          "rules": "y"}})]),
])
def test_routes_that_do_not_claim_our_host_pass(ours, routes):
    assert preflight.check_host_claims(ours, routes, NS) == []


def aged(route, when):
    route = {**route, "metadata": {**route["metadata"], "creationTimestamp": when}}
    return route


JOB_ROUTE = httproute("myjob", job_labels("myjob"))


@pytest.mark.parametrize("ours_at,theirs_at,refused", [
    (None, "2026-01-01T00:00:00Z", True),  # a first start: our route does not exist yet
    ("2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z", False),  # ours is older: it keeps the host
    ("2026-06-01T00:00:00Z", "2026-01-01T00:00:00Z", True),  # theirs is older: ours gets nothing
    ("2026-06-01T00:00:00Z", "2026-06-01T00:00:00Z", True),  # a tie: the first by name, 'myjob' < 'mytool'
])
def test_a_restart_whose_own_route_is_older_keeps_the_host_and_warns(ours_at, theirs_at, refused):
    routes = [("HTTPRoute", aged(JOB_ROUTE, theirs_at))]
    if ours_at is not None:
        routes.append(("HTTPRoute", aged(OUR_ROUTE, ours_at)))
    if refused:
        with pytest.raises(PreflightError, match="the job 'myjob' publishes HTTPRoute 'myjob'"):
            preflight.check_host_claims(OUR_ROUTE, routes, NS)
        return
    warnings = preflight.check_host_claims(OUR_ROUTE, routes, NS)
    assert warnings == ["the job 'myjob' publishes HTTPRoute 'myjob' on mytool.toolforge.org, but the webservice's "
                        "older HTTPRoute 'mytool' keeps that host: the HTTPRoute gets nothing there"]


def test_a_route_to_our_service_and_another_one_is_a_claim():
    mixed = httproute("mixed", None)
    mixed["spec"]["rules"].append({"backendRefs": [{"name": "mytool", "port": 8000}]})
    with pytest.raises(PreflightError, match="HTTPRoute 'mixed'"):
        preflight.check_host_claims(OUR_ROUTE, [("HTTPRoute", mixed)], NS)
    assert preflight.route_backends("HTTPRoute", mixed) == {"mixed", "mytool"}
    assert preflight.route_backends("Ingress", {"spec": {"defaultBackend": {"service": {"name": "d"}}}}) == {"d"}


def test_route_claims():
    assert preflight.route_claims("HTTPRoute", OUR_ROUTE) == [(HOST, "/")]
    assert preflight.route_claims("HTTPRoute", httproute("r", paths=["/a", "/b"])) == [(HOST, "/a"), (HOST, "/b")]
    assert preflight.route_claims("Ingress", OUR_LEGACY) == [("tools.wmflabs.org", "/mytool")]
    assert preflight.route_claims("Ingress", obj("Ingress", "x", spec={"rules": [{"host": HOST}]})) == [(HOST, "/")]


# --- object-count quotas ---------------------------------------------------------------------------

def quota(hard, used=None, name="tool-mytool"):
    status = {"hard": dict(hard)}
    if used is not None:
        status["used"] = used
    return {"metadata": {"name": name}, "spec": {"hard": dict(hard)}, "status": status}


JOB_SERVICE = obj("Service", "foo", job_labels("foo"))
HAND_SERVICE = obj("Service", "bar")
JOB_DEPLOYMENTS = [obj("Deployment", n, job_labels(n)) for n in ("a", "b", "c")]
WANT = [("Deployment", "mytool"), ("Service", "mytool"), ("HTTPRoute", "mytool")]


@pytest.mark.parametrize("quotas,existing,message,hint", [
    ([quota({"services": "1"}, {"services": "1"})], {"Service": [JOB_SERVICE]},
     "the namespace quota tool-mytool allows 1 Service and the job 'foo' uses it (Service 'foo') (services: 1 of 1 "
     "used), so the webservice's Service cannot be created; nothing was changed",
     "remove one ('toolforge jobs delete foo') or ask the Toolforge admins for a larger quota, then start again"),
    ([quota({"services": "1"}, {"services": "1"})], {"Service": [HAND_SERVICE]},
     "allows 1 Service and Service 'bar' (made by hand or by another tool) uses it",
     "remove one ('kubectl delete service bar')"),
    ([quota({"services": "2"}, {"services": "2"})], {"Service": [JOB_SERVICE, HAND_SERVICE]},
     "allows 2 Services and they are used by the job 'foo' (Service 'foo'), Service 'bar' (made by hand or by "
     "another tool) (services: 2 of 2 used)",
     "remove one ('toolforge jobs delete foo' or 'kubectl delete service bar')"),
    ([quota({"count/services": "1"})], {"Service": [JOB_SERVICE]},  # no status yet: counted from the list
     "allows 1 Service and the job 'foo' uses it (Service 'foo') (count/services: 1 of 1 used)", "jobs delete foo"),
    ([quota({"services": "1"}, {"services": "1"})], {"Service": []},  # the quota knows more than the list
     "allows 1 Service and other workloads use it", "ask the Toolforge admins for a larger quota"),
    ([quota({"services": "0"}, {"services": "0"})], {"Service": []},
     "the namespace quota tool-mytool allows no Service (services: 0), so the webservice's Service cannot be created",
     "larger quota"),
    ([quota({"count/deployments.apps": "3"}, {"count/deployments.apps": "3"})], {"Deployment": JOB_DEPLOYMENTS},
     "allows 3 Deployments and they are used by the job 'a' (Deployment 'a'), the job 'b' (Deployment 'b'), the job "
     "'c' (Deployment 'c') (count/deployments.apps: 3 of 3 used), so the webservice's Deployment cannot be created",
     "('toolforge jobs delete a' or 'toolforge jobs delete b' or 'toolforge jobs delete c')"),
    ([quota({"count/deployments.apps": "2"}, {"count/deployments.apps": "2"})], {"Deployment": JOB_DEPLOYMENTS[:1]},
     "allows 2 Deployments and they are used by the job 'a' (Deployment 'a') and other workloads", "delete a"),
])
def test_no_room_in_the_quota_names_what_uses_it(quotas, existing, message, hint):
    with pytest.raises(PreflightError) as caught:
        preflight.check_counts(WANT, quotas, existing, NS)
    assert message in caught.value.message, caught.value.message
    assert hint in caught.value.hint, caught.value.hint


@pytest.mark.parametrize("quotas,existing", [
    ([], {"Service": [JOB_SERVICE]}),
    ([quota({"services": "2"}, {"services": "1"})], {"Service": [JOB_SERVICE]}),
    ([quota({"services": "1"}, {"services": "1"})], {"Service": [obj("Service", "mytool", WEB)]}),  # restart: ours
    ([quota({"services": "1"}, {"services": "1"})], {"Service": None}),  # not listable: the cluster decides
    ([quota({"count/deployments.apps": "3"}, {"count/deployments.apps": "3"})],
     {"Deployment": JOB_DEPLOYMENTS[:2] + [obj("Deployment", "mytool", WEB)]}),  # restart
    ([quota({"services": "lots"}, {"services": "1"})], {"Service": [JOB_SERVICE]}),  # unreadable: skipped
    ([quota({"pods": "1", "requests.cpu": "1"}, {"pods": "1"})], {"Service": [JOB_SERVICE]}),  # not ours to check here
])
def test_room_in_the_quota_or_nothing_new_passes(quotas, existing):
    assert preflight.check_counts(WANT, quotas, existing, NS) is None
