"""webservice.health.routes: what an HTTPRoute's status.parents says (pure)."""

from __future__ import annotations

import pytest

from webservice.health import routes

PARENT = {"name": "toolforge", "namespace": "istio-gateway"}


def route(parents=None, generation=2, parent_ref=None):
    obj = {"kind": "HTTPRoute", "metadata": {"name": "mytool", "namespace": "tool-mytool", "generation": generation},
           "spec": {"parentRefs": [parent_ref or dict(PARENT)], "hostnames": ["mytool.toolforge.org"]}}
    if parents is not None:
        obj["status"] = {"parents": parents}
    return obj


def entry(accepted=("True", "Accepted"), resolved=("True", "ResolvedRefs"), generation=2, ref=None, message="m"):
    conditions = []
    for kind, value in (("Accepted", accepted), ("ResolvedRefs", resolved)):
        if value is not None:
            conditions.append({"type": kind, "status": value[0], "reason": value[1], "message": message,
                               "observedGeneration": generation})
    return {"parentRef": ref or dict(PARENT), "controllerName": "istio.io/gateway-controller",
            "conditions": conditions}


@pytest.mark.parametrize("parents,state,reason", [
    ([entry()], "attached", ""),
    (None, "unconfirmed", ""),
    ([], "unconfirmed", ""),
    ([entry(generation=1)], "unconfirmed", ""),  # the status describes an older spec
    ([entry(generation=3)], "attached", ""),
    ([entry(resolved=None)], "unconfirmed", ""),
    ([entry(accepted=("False", "NoMatchingParent"))], "refused", "NoMatchingParent"),
    ([entry(accepted=("False", "NotAllowedByListeners"))], "refused", "NotAllowedByListeners"),
    ([entry(resolved=("False", "BackendNotFound"))], "refused", "BackendNotFound"),
    ([entry(accepted=("False", "NoMatchingParent"), generation=1)], "unconfirmed", ""),  # stale refusal
    # another parent's entry says nothing about ours
    ([entry(ref={"name": "other", "namespace": "istio-gateway"})], "unconfirmed", ""),
    ([entry(ref={**PARENT, "group": "gateway.networking.k8s.io", "kind": "Gateway"})], "attached", ""),
])
def test_route_state(parents, state, reason):
    got = routes.route_state(route(parents))
    assert (got.state, got.reason) == (state, reason)
    assert got.parent == "istio-gateway/toolforge" and got.hostnames == ["mytool.toolforge.org"]


def test_section_name_must_match():
    ref = {**PARENT, "sectionName": "http"}
    assert routes.route_state(route([entry()], parent_ref=ref)).state == "unconfirmed"
    assert routes.route_state(route([entry(ref=ref)], parent_ref=ref)).state == "attached"


@pytest.mark.parametrize("reason,words", [
    ("NoMatchingParent", "gateway_namespace"),
    ("BackendNotFound", "Service is missing"),
    ("NotAllowedByListeners", "does not admit routes"),
    ("HostnameConflict", "toolforge jobs delete"),
    ("SomethingNew", "kubectl describe httproute mytool"),
])
def test_refusals_say_what_to_do(reason, words):
    state = routes.route_state(route([entry(accepted=("False", reason), message="why  it\nfailed")]))
    problem = routes.problem(state)
    assert problem.certain and problem.code == "routerefused"
    assert f"({reason}: why it failed)" in problem.message  # one line
    assert words in problem.hint
    assert state.line() == f"not accepted by istio-gateway/toolforge ({reason}: why it failed)"


def test_unconfirmed_problem_names_the_deadline():
    problem = routes.problem(routes.route_state(route()), timeout=30)
    assert not problem.certain and problem.code == "routeunconfirmed"
    assert "no Gateway controller has accepted the route HTTPRoute/mytool on istio-gateway/toolforge within 30 s" \
        in problem.message
    assert routes.problem(routes.route_state(route([entry()]))) is None


def test_ingress_is_reported_not_judged():
    ingress = {"kind": "Ingress", "metadata": {"name": "mytool-subdomain"},
               "spec": {"rules": [{"host": "mytool.toolforge.org"}]}}
    state = routes.route_state(ingress)
    assert (state.state, state.hostnames) == ("unchecked", ["mytool.toolforge.org"])
    assert "no load-balancer address" in state.line() and routes.problem(state) is None
    ingress["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
    assert "address 10.0.0.1" in routes.route_state(ingress).line()
    assert routes.route_state(ingress).as_dict()["kind"] == "Ingress"


@pytest.mark.parametrize("status,state,message", [
    (None, "unconfirmed", "no load-balancer address"),
    ({"loadBalancer": {}}, "unconfirmed", "no load-balancer address"),
    ({"loadBalancer": {"ingress": [{}]}}, "unconfirmed", "no load-balancer address"),
    ({"loadBalancer": {"ingress": [{"ip": "185.15.56.11"}]}}, "attached", "address 185.15.56.11"),
    ({"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}, "attached", "address lb.example"),
])
def test_ingress_judged_by_its_address_where_the_site_writes_them(status, state, message):
    ingress = {"kind": "Ingress", "metadata": {"name": "mytool-subdomain"},
               "spec": {"rules": [{"host": "mytool.toolforge.org"}]}}
    if status is not None:
        ingress["status"] = status
    got = routes.route_state(ingress, expect_address=True)
    assert (got.state, got.message) == (state, message)
    assert routes.route_state(ingress).state == "unchecked"  # elsewhere: reported, not judged
    problem = routes.problem(got, timeout=7)
    if state == "attached":
        assert problem is None
    else:
        assert problem.code == "routeunconfirmed"
        assert problem.message == ("no ingress controller has given the Ingress/mytool-subdomain a load-balancer "
                                   "address within 7 s, so it may serve nothing")
        assert "ingress_class" in problem.hint
