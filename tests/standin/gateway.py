"""A Gateway API controller for the stand-in: writes HTTPRoute ``status.parents``.

It models Istio's Gateway controller on today's Toolforge (REFERENCE 8): one Gateway
``istio-gateway/toolforge`` with one listener ``http`` that admits routes from every
namespace. On each controller step it writes, for every parentRef of every HTTPRoute, a
``status.parents[]`` entry ``{parentRef, controllerName: istio.io/gateway-controller,
conditions: [Accepted, ResolvedRefs]}`` (``observedGeneration`` = the route's
``metadata.generation``):

* ``Accepted``: True (reason ``Accepted``) when the parentRef names an existing Gateway
  (and, with a ``sectionName``, one of its listeners); False ``NoMatchingParent`` for any
  other parent; False ``NotAllowedByListeners`` when the Gateway's listeners do not admit
  routes from the route's namespace (``allowed_namespaces``); False ``HostnameConflict``
  for the newer of two accepted routes claiming the same hostname (the older one, by
  ``creationTimestamp`` then namespace/name, keeps the host, as Gateway API resolves it;
  Istio itself says nothing, the stand-in says it so that a test can see it);
* ``ResolvedRefs``: True (``ResolvedRefs``) when every backend Service exists in the
  route's namespace, else False ``BackendNotFound``.

Switches (reset by ``StandIn.reset``), on ``standin.gateway``:

* ``mode``: ``"accept"`` (default: the controller runs), ``"none"`` (no controller at all:
  no status is ever written), ``"gate"`` (as ``accept``, but nothing is written until the
  test calls ``release()``; ``released`` is a ``threading.Event``);
* ``gateways``: ``{(namespace, name): [listener names]}`` (default
  ``{("istio-gateway", "toolforge"): ["http"]}``);
* ``allowed_namespaces``: None (``from: All``) or a set of namespaces the listeners admit.

``steps`` counts reconciles, so that a test can wait for "the controller has looked"
(e.g. that mode ``none`` wrote nothing) without a sleep.

It never touches a route's spec, so a status write does not change ``metadata.generation``.
"""

from __future__ import annotations

import copy
import threading

CONTROLLER_NAME = "istio.io/gateway-controller"
GROUP = "gateway.networking.k8s.io"
MODES = ("accept", "none", "gate")


class GatewayController:
    def __init__(self, standin):
        self.s = standin
        self.store = standin.store
        self.released = threading.Event()
        self.steps = 0  # reconciles run: a test waits for it to move on instead of sleeping
        self.reset()

    def reset(self):
        self.mode = "accept"
        self.gateways: dict = {("istio-gateway", "toolforge"): ["http"]}
        self.allowed_namespaces: set | None = None
        self.released.clear()

    def release(self):
        """Let a ``"gate"`` controller write statuses from now on."""
        self.released.set()

    # -- one controller step (called with the store's lock held) ---------------------------
    def reconcile(self):
        self.steps += 1
        if self.mode not in MODES:
            raise ValueError(f"gateway mode {self.mode!r}; one of {MODES}")
        if self.mode == "none" or (self.mode == "gate" and not self.released.is_set()):
            return
        routes = [r for r in self.store.list("HTTPRoute") if not r["metadata"].get("deletionTimestamp")]
        owners = self._host_owners(routes)
        for route in routes:
            status = {"parents": [self._parent_status(route, ref, owners)
                                  for ref in (route.get("spec") or {}).get("parentRefs") or []]}
            if _comparable(route.get("status")) != _comparable(status):
                route["status"] = _keep_transition_times(route.get("status"), status)
                self.store.update("HTTPRoute", route, bump_generation=False)

    # -- the rules -------------------------------------------------------------------------
    def _gateway_of(self, route, ref) -> tuple | None:
        if (ref.get("group") or GROUP) != GROUP or (ref.get("kind") or "Gateway") != "Gateway":
            return None
        key = (ref.get("namespace") or route["metadata"].get("namespace", ""), ref.get("name"))
        return key if key in self.gateways else None

    def _attaches(self, route, ref) -> tuple[bool, str, str]:
        key = self._gateway_of(route, ref)
        if key is None:
            return False, "NoMatchingParent", (f"no Gateway {ref.get('namespace', '')}/{ref.get('name')} "
                                               f"is served by {CONTROLLER_NAME}")
        section = ref.get("sectionName")
        if section and section not in self.gateways[key]:
            return False, "NoMatchingParent", f"Gateway {key[0]}/{key[1]} has no listener {section!r}"
        ns = route["metadata"].get("namespace", "")
        if self.allowed_namespaces is not None and ns not in self.allowed_namespaces:
            return False, "NotAllowedByListeners", (f"no listener of Gateway {key[0]}/{key[1]} allows "
                                                    f"routes from namespace {ns}")
        return True, "Accepted", "Route was valid"

    def _host_owners(self, routes) -> dict:
        """hostname -> the oldest route that attaches to a Gateway with it."""
        owners: dict = {}
        age = lambda r: (r["metadata"].get("creationTimestamp") or "", r["metadata"].get("namespace", ""),  # noqa: E731
                         r["metadata"]["name"])
        for route in sorted(routes, key=age):
            refs = (route.get("spec") or {}).get("parentRefs") or []
            if not any(self._attaches(route, ref)[0] for ref in refs):
                continue
            for host in (route.get("spec") or {}).get("hostnames") or []:
                owners.setdefault(host, route)
        return owners

    def _parent_status(self, route, ref, owners) -> dict:
        generation = route["metadata"].get("generation", 1)
        accepted, reason, message = self._attaches(route, ref)
        if accepted:
            for host in (route.get("spec") or {}).get("hostnames") or []:
                owner = owners.get(host)
                if owner is not None and owner["metadata"]["uid"] != route["metadata"]["uid"]:
                    meta = owner["metadata"]
                    accepted, reason = False, "HostnameConflict"
                    message = (f"hostname {host} is already routed by the older HTTPRoute "
                               f"{meta.get('namespace', '')}/{meta['name']}")
                    break
        missing = self._missing_backends(route)
        resolved = ("False", "BackendNotFound", f"Service {missing[0]!r} not found") if missing else \
            ("True", "ResolvedRefs", "All references resolved")
        return {
            "parentRef": copy.deepcopy(ref),
            "controllerName": CONTROLLER_NAME,
            "conditions": [
                _condition("Accepted", "True" if accepted else "False", reason, message, generation),
                _condition("ResolvedRefs", *resolved, generation),
            ],
        }

    def _missing_backends(self, route) -> list:
        ns = route["metadata"].get("namespace", "")
        missing = []
        for rule in (route.get("spec") or {}).get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                if (ref.get("kind") or "Service") == "Service" and not ref.get("group"):
                    if self.store.get("Service", ref.get("namespace") or ns, ref.get("name")) is None:
                        missing.append(ref.get("name"))
        return missing


def _condition(kind, status, reason, message, generation) -> dict:
    from .store import now_rfc3339

    return {"type": kind, "status": status, "reason": reason, "message": message,
            "observedGeneration": generation, "lastTransitionTime": now_rfc3339()}


def _comparable(status):
    """The status without transition times (they alone are no change)."""
    status = copy.deepcopy(status or {})
    for parent in status.get("parents") or []:
        for condition in parent.get("conditions") or []:
            condition.pop("lastTransitionTime", None)
    return status


def _keep_transition_times(old, new) -> dict:
    """``new``, with the old ``lastTransitionTime`` of every condition whose status stayed."""
    before = {}
    for parent in (old or {}).get("parents") or []:
        for condition in parent.get("conditions") or []:
            before[(repr(parent.get("parentRef")), condition.get("type"))] = condition
    for parent in new.get("parents") or []:
        for condition in parent.get("conditions") or []:
            prior = before.get((repr(parent.get("parentRef")), condition["type"]))
            if prior is not None and prior.get("status") == condition["status"] and prior.get("lastTransitionTime"):
                condition["lastTransitionTime"] = prior["lastTransitionTime"]
    return new
