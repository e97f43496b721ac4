"""What a routing object's status says: is the webservice's HTTPRoute attached?

A Gateway controller writes ``status.parents[]`` on an HTTPRoute, one entry per parentRef,
with the conditions ``Accepted`` and ``ResolvedRefs`` (Gateway API v1). A route serves only
when the entry for its parentRef has both True for the route's current generation
(``observedGeneration >= metadata.generation``). :func:`route_state` reads that from one
route (pure); :func:`problem` turns a refusal or a missing status into a
``diagnose.Problem`` saying why and what to do; :func:`summary` is the ``routes`` entry of
``status --json``.

An Ingress has no such conditions: it is reported as it is (its load-balancer address, if
any), and waited for only where the site config says its ingress controller writes
addresses (``ingress_status: true``): then an Ingress with an address is ``attached`` and
one without is ``unconfirmed``, like an HTTPRoute no controller has answered.

Pure functions over API dicts: no I/O, no cluster, no UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from webservice.health.diagnose import Problem

GROUP = "gateway.networking.k8s.io"

# what to do, by condition reason (Gateway API's reasons and the stand-in's HostnameConflict)
HINTS = {
    "NoMatchingParent": "check the gateway_name, gateway_namespace and gateway_section settings in the "
                        "webservice config (today's Toolforge: gateway istio-gateway/toolforge, no section)",
    "NotAllowedByListeners": "the Gateway does not admit routes from this namespace or host; ask the "
                             "Toolforge admins, or check gateway_section in the webservice config",
    "BackendNotFound": "the route's Service is missing: run 'webservice restart' to create it again",
    "HostnameConflict": "another route already claims this host: delete it (e.g. 'toolforge jobs delete "
                        "<job>' for a published job) or stop what owns it, then 'webservice restart'",
    "RefNotPermitted": "the route points at a Service it may not use; run 'webservice restart'",
    "UnsupportedValue": "the Gateway controller does not support this route; ask the Toolforge admins",
}


@dataclass
class RouteState:
    """The state of one routing object for its (first) parent."""

    kind: str
    name: str
    hostnames: list = field(default_factory=list)
    parent: str = ""  # "namespace/name" of the Gateway (HTTPRoute only)
    conditions: list = field(default_factory=list)  # the parent entry's conditions, as the API has them
    state: str = "unconfirmed"  # attached | refused | unconfirmed | unchecked (Ingress)
    reason: str = ""
    message: str = ""

    @property
    def attached(self) -> bool:
        return self.state == "attached"

    def line(self) -> str:
        """One line for ``status``: ``accepted by istio-gateway/toolforge``..."""
        if self.kind != "HTTPRoute":
            return f"{self.kind}/{self.name} ({self.message or 'not checked'})"
        if self.state == "attached":
            return f"accepted by {self.parent}"
        if self.state == "refused":
            return f"not accepted by {self.parent} ({self.reason}: {self.message})"
        return f"not confirmed: {self.message}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "hostnames": list(self.hostnames), "parent": self.parent,
                "state": self.state, "reason": self.reason or None, "message": self.message or None,
                "conditions": [dict(c) for c in self.conditions]}


def _same_parent(ref: dict, wanted: dict, namespace: str) -> bool:
    def key(r: dict) -> tuple:
        return (r.get("group") or GROUP, r.get("kind") or "Gateway", r.get("namespace") or namespace,
                r.get("name"), r.get("sectionName") or "")

    return key(ref) == key(wanted)


def route_state(route: dict, generation: int | None = None, expect_address: bool = False) -> RouteState:
    """The state of ``route`` for its first parentRef; ``generation``: the least generation
    the status must describe (default: the route's own ``metadata.generation``);
    ``expect_address``: an Ingress is expected to get a load-balancer address (else not checked)."""
    meta = route.get("metadata") or {}
    spec = route.get("spec") or {}
    kind = route.get("kind") or "HTTPRoute"
    if kind != "HTTPRoute":
        hosts = [r.get("host") for r in spec.get("rules") or [] if r.get("host")]
        addresses = [a.get("hostname") or a.get("ip") for a in
                     (((route.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [])]
        found = [a for a in addresses if a]
        message = ("address " + ", ".join(found)) if found else "no load-balancer address"
        state = "unchecked" if not expect_address else ("attached" if found else "unconfirmed")
        return RouteState(kind, meta.get("name", ""), hosts, state=state, message=message)
    namespace = meta.get("namespace", "")
    refs = spec.get("parentRefs") or [{}]
    wanted = refs[0]
    state = RouteState(kind, meta.get("name", ""), list(spec.get("hostnames") or []),
                       parent=f"{wanted.get('namespace') or namespace}/{wanted.get('name')}")
    if generation is None:
        generation = meta.get("generation")
    entry = next((p for p in ((route.get("status") or {}).get("parents") or [])
                  if _same_parent(p.get("parentRef") or {}, wanted, namespace)), None)
    if entry is None:
        state.message = f"no Gateway controller has written a status for the route on {state.parent}"
        return state
    state.conditions = list(entry.get("conditions") or [])
    found = {c.get("type"): c for c in state.conditions}

    def current(condition: dict) -> bool:
        try:
            return generation is None or int(condition.get("observedGeneration") or 0) >= int(generation)
        except (TypeError, ValueError):
            return False

    accepted, resolved = found.get("Accepted"), found.get("ResolvedRefs")
    for condition in (accepted, resolved):
        if condition is not None and current(condition) and condition.get("status") == "False":
            state.state = "refused"
            state.reason = str(condition.get("reason") or condition.get("type"))
            state.message = " ".join(str(condition.get("message") or "").split())[:300] or state.reason
            return state
    if accepted and resolved and current(accepted) and current(resolved) \
            and accepted.get("status") == resolved.get("status") == "True":
        state.state = "attached"
        return state
    state.message = f"the Gateway controller has not yet accepted the current version of the route on {state.parent}"
    return state


def problem(state: RouteState, timeout: float | None = None) -> Problem | None:
    """The problem a route's state is (None when attached or not checked)."""
    what = f"{state.kind}/{state.name}"
    if state.state == "refused":
        return Problem("routerefused", f"the Gateway {state.parent} did not accept the route {what} "
                       f"({state.reason}: {state.message})",
                       hint=HINTS.get(state.reason, "see 'kubectl describe httproute " + state.name + "'"),
                       certain=True)
    if state.state == "unconfirmed" and state.kind != "HTTPRoute":
        within = f" within {timeout:g} s" if timeout is not None else ""
        return Problem("routeunconfirmed", f"no ingress controller has given the {what} a load-balancer "
                       f"address{within}, so it may serve nothing",
                       hint="check ingress_class in the webservice config (the class this site's ingress "
                            "controller serves), or wait with 'webservice status'")
    if state.state == "unconfirmed":
        within = f" within {timeout:g} s" if timeout is not None else ""
        return Problem("routeunconfirmed", f"no Gateway controller has accepted the route {what} on "
                       f"{state.parent}{within}, so it may serve nothing",
                       hint=f"check that the Gateway {state.parent} exists and is served (gateway_name and "
                            "gateway_namespace in the webservice config), or wait with 'webservice status'")
    return None
