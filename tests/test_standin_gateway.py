"""The stand-in's Gateway controller (tests/standin/gateway.py): HTTPRoute status.parents."""

from __future__ import annotations

import pytest

from tests.standin.gateway import CONTROLLER_NAME
from tests.standin.store import BY_KIND

NS = "tool-mytool"
GATEWAY = {"name": "toolforge", "namespace": "istio-gateway"}


def route(name="mytool", host="mytool.toolforge.org", parent=None, backend="mytool", ns=NS):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"parentRefs": [parent or dict(GATEWAY)], "hostnames": [host],
                     "rules": [{"backendRefs": [{"name": backend, "port": 8000}]}]}}


def service(name="mytool", ns=NS):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"name": name}, "ports": [{"port": 8000, "targetPort": 8000}]}}


def conditions(standin, name="mytool", ns=NS, generation=None):
    """{type: (status, reason)} of the route's first parent once the controller wrote it
    (for ``generation``, when given)."""
    obj = standin.get("HTTPRoute", ns, name)
    parents = ((obj or {}).get("status") or {}).get("parents") or []
    if not parents:
        return None
    found = {c["type"]: (c["status"], c["reason"]) for c in parents[0]["conditions"]}
    if generation is not None and any(c["observedGeneration"] != generation for c in parents[0]["conditions"]):
        return None
    return found


def settled(standin, steps=2):
    """Wait until the controller has run ``steps`` more reconciles (no clock involved)."""
    start = standin.gateway.steps
    standin.wait_for(lambda: standin.gateway.steps >= start + steps)


def test_accepted_with_the_backend(standin):
    standin.create(service())
    standin.create(route())
    got = standin.wait_for(lambda: conditions(standin))
    assert got == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
    obj = standin.get("HTTPRoute", NS, "mytool")
    (parent,) = obj["status"]["parents"]
    assert parent["parentRef"] == GATEWAY and parent["controllerName"] == CONTROLLER_NAME
    assert all(c["observedGeneration"] == obj["metadata"]["generation"] == 1 for c in parent["conditions"])


def test_backend_not_found_until_the_service_exists(standin):
    standin.create(route())
    assert standin.wait_for(lambda: conditions(standin))["ResolvedRefs"] == ("False", "BackendNotFound")
    assert conditions(standin)["Accepted"] == ("True", "Accepted")
    standin.create(service())
    standin.wait_for(lambda: (conditions(standin) or {}).get("ResolvedRefs") == ("True", "ResolvedRefs"))


@pytest.mark.parametrize("parent", [
    {"name": "toolforge", "namespace": "toolforge-gateway"},
    {"name": "other", "namespace": "istio-gateway"},
    {"name": "toolforge", "namespace": "istio-gateway", "sectionName": "https"},
])
def test_no_matching_parent(standin, parent):
    standin.create(service())
    standin.create(route(parent=parent))
    assert standin.wait_for(lambda: conditions(standin))["Accepted"] == ("False", "NoMatchingParent")
    assert standin.get("HTTPRoute", NS, "mytool")["status"]["parents"][0]["parentRef"] == parent


def test_not_allowed_by_listeners(standin):
    standin.gateway.allowed_namespaces = {"tool-othertool"}
    standin.create(service())
    standin.create(route())
    assert standin.wait_for(lambda: conditions(standin))["Accepted"] == ("False", "NotAllowedByListeners")


def test_the_older_route_keeps_the_host(standin):
    standin.create(service())
    standin.create(route(name="a-job"))  # older (same second: the name decides, "a-job" < "mytool")
    standin.create(route(name="mytool"))
    assert standin.wait_for(lambda: conditions(standin, "mytool"))["Accepted"] == ("False", "HostnameConflict")
    assert conditions(standin, "a-job")["Accepted"] == ("True", "Accepted")
    message = standin.get("HTTPRoute", NS, "mytool")["status"]["parents"][0]["conditions"][0]["message"]
    assert "tool-mytool/a-job" in message
    standin.delete_object(BY_KIND["HTTPRoute"], standin.get("HTTPRoute", NS, "a-job"), {})
    standin.wait_for(lambda: (conditions(standin, "mytool") or {}).get("Accepted") == ("True", "Accepted"))


def test_a_spec_change_bumps_the_generation_and_the_status_follows(standin):
    standin.create(service())
    standin.create(route())
    standin.wait_for(lambda: conditions(standin, generation=1))
    obj = standin.get("HTTPRoute", NS, "mytool")
    obj["spec"]["rules"][0]["backendRefs"][0]["name"] = "gone"
    with standin.lock:
        standin.store.update("HTTPRoute", obj)
    assert standin.get("HTTPRoute", NS, "mytool")["metadata"]["generation"] == 2
    got = standin.wait_for(lambda: conditions(standin, generation=2))
    assert got["ResolvedRefs"] == ("False", "BackendNotFound")
    assert standin.get("HTTPRoute", NS, "mytool")["metadata"]["generation"] == 2  # status writes: no bump


def test_mode_none_writes_nothing(standin):
    standin.gateway.mode = "none"
    standin.create(service())
    standin.create(route())
    settled(standin)
    assert conditions(standin) is None  # the controller looked twice and wrote nothing


def test_gate_holds_the_status_until_released(standin):
    standin.gateway.mode = "gate"
    standin.create(service())
    standin.create(route())
    settled(standin)
    assert conditions(standin) is None
    standin.gateway.release()
    assert standin.wait_for(lambda: conditions(standin))["Accepted"] == ("True", "Accepted")


def test_reset_restores_the_default_controller(standin):
    standin.gateway.mode = "none"
    standin.gateway.allowed_namespaces = set()
    standin.reset()
    assert standin.gateway.mode == "accept" and standin.gateway.allowed_namespaces is None
    assert standin.gateway.gateways == {("istio-gateway", "toolforge"): ["http"]}


def test_served_in_discovery(standin):
    code, _, body = standin.http("GET", "/apis/gateway.networking.k8s.io/v1")
    assert code == 200
    assert "httproutes" in str(body)


REDIRECT = {"type": "RequestRedirect", "requestRedirect": {
    "path": {"type": "ReplaceFullPath", "replaceFullPath": "/mytool/"}, "statusCode": 302}}


@pytest.mark.parametrize("rule,message", [
    ({"matches": [{"path": {"type": "Exact", "value": "/mytool"}}], "filters": [REDIRECT]}, None),
    ({"filters": [REDIRECT], "backendRefs": [{"name": "mytool", "port": 8000}]},
     "RequestRedirect filter must not be used together with backendRefs"),
    ({"filters": [{"type": "RequestRedirect"}]}, "filter.requestRedirect must be specified"),
    ({"filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 307}}]}, "Unsupported value: 307"),
    ({"matches": [{"path": {"type": "Exact", "value": "/mytool"}}], "filters": [{"type": "RequestRedirect",
      "requestRedirect": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/x"}}}]},
     "exactly one PathPrefix match must be specified"),
], ids=["redirect-only", "redirect-with-backends", "no-requestRedirect", "status-307", "prefix-with-exact"])
def test_the_crds_redirect_rules(standin, rule, message):
    """The Gateway API CRD's CEL rules on RequestRedirect, which the legacy path route must pass."""
    from tests.standin.errors import ApiError

    obj = route()
    obj["spec"]["rules"] = [rule]
    if message is None:
        standin.create(obj)
        assert standin.get("HTTPRoute", NS, "mytool")["spec"]["rules"] == [rule]
        return
    with pytest.raises(ApiError) as info:
        standin.create(obj)
    assert info.value.code == 422 and message in str(info.value.message), info.value.message
    assert standin.get("HTTPRoute", NS, "mytool") is None
