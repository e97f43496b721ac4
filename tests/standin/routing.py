"""What serves routes: a Gateway API controller writing HTTPRoute ``status.parents``, and
an ingress controller writing Ingress ``status.loadBalancer`` (or nothing at all).

``StandIn.gateway_mode``:

``None`` (default) / ``"none"``
    no Gateway controller: an HTTPRoute's status is never written.
``"running"``
    the controller reconciles on every tick of the simulation thread.
``"gated"``
    the controller acts only when the test calls ``StandIn.gateway.release()``, which
    reconciles once, synchronously, and returns the routes whose status it changed
    (a slow controller without any timing: the test decides when it answers).

``StandIn.gateways``: the Gateways that exist, ``{(namespace, name): Gateway(...)}``;
default ``istio-gateway/toolforge`` with one listener ``http`` (port 80, no hostname,
routes from all namespaces), controller ``istio.io/gateway-controller``.

For each parentRef of each HTTPRoute the controller writes one ``status.parents`` entry:
``parentRef`` (as in the spec, ``group``/``kind`` filled in), ``controllerName`` and two
conditions with ``observedGeneration`` = the route's ``metadata.generation`` and stable
``lastTransitionTime`` (kept while the status does not change):

* ``Accepted``: ``True``/``Accepted``; ``False``/``NoMatchingParent`` (no such Gateway, or
  no listener named ``sectionName``); ``False``/``NotAllowedByListeners`` (the listener
  takes routes from its own namespace only: ``Gateway(allowed_routes="Same")``);
  ``False``/``NoMatchingListenerHostname`` (the listener has a hostname none of the route's
  match); ``False``/``HostnameConflict`` when an older route (``creationTimestamp``, then
  namespace/name) attached to the same Gateway claims one of its hostnames for an
  overlapping path match (the message names the older route);
* ``ResolvedRefs``: ``True``/``ResolvedRefs``; ``False``/``BackendNotFound`` when a
  backendRef Service does not exist (``backend(<svc>.<ns>.svc.cluster.local) not found``),
  rechecked on every reconcile, so it turns ``True`` when the Service appears;
  ``False``/``RefNotPermitted`` for a backend in another namespace.

``StandIn.ingress_controller``: ``None`` (default, today's Toolforge: nothing serves an
Ingress, its ``status.loadBalancer`` stays empty forever); ``"nginx"`` (the old
ingress-nginx: serves Ingresses without a class or with class ``nginx`` and sets
``status.loadBalancer.ingress: [{ip: INGRESS_IP}]``); ``"istio"`` (STRICT mode: serves only
class ``istio``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .store import now_rfc3339

GROUP = "gateway.networking.k8s.io"
CONTROLLER_NAME = "istio.io/gateway-controller"
INGRESS_IP = "185.15.56.11"
MODES = (None, "none", "running", "gated")


@dataclass
class Gateway:
    namespace: str = "istio-gateway"
    name: str = "toolforge"
    listeners: tuple = ("http",)
    hostname: str | None = None  # the listeners' hostname (None: any)
    allowed_routes: str = "All"  # or "Same"
    controller_name: str = CONTROLLER_NAME


def default_gateways() -> dict:
    gw = Gateway()
    return {(gw.namespace, gw.name): gw}


def _matches(route) -> set:
    keys = set()
    rules = (route.get("spec") or {}).get("rules") or [{}]
    for rule in rules:
        for m in rule.get("matches") or [{}]:
            path = (m or {}).get("path") or {}
            keys.add((path.get("type", "PathPrefix"), path.get("value", "/")))
    return keys


def _host_match(listener_host, host) -> bool:
    if listener_host is None:
        return True
    if listener_host.startswith("*."):
        return host.endswith(listener_host[1:]) or (host.startswith("*.") and host == listener_host)
    return host == listener_host or (host.startswith("*.") and listener_host.endswith(host[1:]))


def _age_key(route):
    m = route["metadata"]
    return (m.get("creationTimestamp", ""), m.get("namespace", ""), m["name"])


@dataclass
class GatewayController:
    standin: object
    releases: int = 0  # how many times a gated controller was released
    updated: list = field(default_factory=list)

    def release(self) -> list[str]:
        """Gated mode: reconcile once now; returns ``ns/name`` of the routes it updated."""
        with self.standin.lock:
            self.releases += 1
            return self.reconcile()

    def tick(self):
        """Called by the simulation thread (lock held) on every step."""
        if self.standin.gateway_mode == "running":
            self.reconcile()
        elif self.standin.gateway_mode not in MODES:
            raise ValueError(f"unknown StandIn.gateway_mode {self.standin.gateway_mode!r}; choose one of {MODES}")

    # -- the reconcile ------------------------------------------------------------------
    def reconcile(self) -> list[str]:
        store = self.standin.store
        routes = store.list("HTTPRoute")
        services = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in store.list("Service")}
        winners: dict = {}  # (gateway key, hostname, match) -> the oldest route claiming it
        for route in sorted(routes, key=_age_key):
            for ref in (route.get("spec") or {}).get("parentRefs") or []:
                gw = self._gateway(route, ref)
                if gw is None or self._refusal(route, ref, gw, ignore_conflicts=True):
                    continue
                for host in (route.get("spec") or {}).get("hostnames") or ["*"]:
                    for m in _matches(route):
                        winners.setdefault(((gw.namespace, gw.name), host, m), route)
        changed = []
        for route in routes:
            parents = [self._parent(route, ref, services, winners)
                       for ref in (route.get("spec") or {}).get("parentRefs") or []]
            old_parents = (route.get("status") or {}).get("parents") or []
            parents = [self._keep_times(p, old_parents) for p in parents]
            if old_parents != parents or "status" not in route:
                route["status"] = {"parents": parents}
                store.update("HTTPRoute", route)
                changed.append(f"{route['metadata']['namespace']}/{route['metadata']['name']}")
        self.updated.extend(changed)
        return changed

    def _gateway(self, route, ref) -> Gateway | None:
        if ref.get("group", GROUP) != GROUP or ref.get("kind", "Gateway") != "Gateway":
            return None
        ns = ref.get("namespace") or route["metadata"]["namespace"]
        return self.standin.gateways.get((ns, ref.get("name")))

    def _refusal(self, route, ref, gw, ignore_conflicts=False, winners=None):
        """(reason, message) for Accepted=False, or None."""
        section = ref.get("sectionName")
        if section and section not in gw.listeners:
            return "NoMatchingParent", f'no listener named "{section}" on Gateway {gw.namespace}/{gw.name}'
        if gw.allowed_routes == "Same" and route["metadata"]["namespace"] != gw.namespace:
            return "NotAllowedByListeners", (f"hostnames matched parent hostname \"\", but namespace "
                                             f"\"{route['metadata']['namespace']}\" is not allowed by the parent")
        hosts = (route.get("spec") or {}).get("hostnames") or ["*"]
        if gw.hostname is not None and not any(_host_match(gw.hostname, h) for h in hosts):
            return "NoMatchingListenerHostname", f"no hostnames matched parent hostname \"{gw.hostname}\""
        if ignore_conflicts or winners is None:
            return None
        for host in hosts:
            for m in _matches(route):
                win = winners.get(((gw.namespace, gw.name), host, m))
                if win is not None and win["metadata"]["uid"] != route["metadata"]["uid"]:
                    wm = win["metadata"]
                    return "HostnameConflict", (f'hostname "{host}" (path {m[1]}) is already claimed by the older '
                                                f"HTTPRoute {wm['namespace']}/{wm['name']}")
        return None

    def _parent(self, route, ref, services, winners) -> dict:
        gen = route["metadata"].get("generation", 1)
        echo = {"group": GROUP, "kind": "Gateway", **ref}
        gw = self._gateway(route, ref)
        if gw is None:
            ns = ref.get("namespace") or route["metadata"]["namespace"]
            accepted = ("False", "NoMatchingParent", f"parent gateway {ns}/{ref.get('name')} not found")
        else:
            refusal = self._refusal(route, ref, gw, winners=winners)
            accepted = ("False", *refusal) if refusal else ("True", "Accepted", "Route was valid")
        resolved = ("True", "ResolvedRefs", "All references resolved")
        rns = route["metadata"]["namespace"]
        for rule in (route.get("spec") or {}).get("rules") or []:
            for b in rule.get("backendRefs") or []:
                if b.get("group", "") != "" or b.get("kind", "Service") != "Service":
                    resolved = ("False", "InvalidKind", f"referencing unsupported backendRef: group "
                                f"\"{b.get('group', '')}\" kind \"{b.get('kind')}\"")
                    break
                bns = b.get("namespace") or rns
                if bns != rns:
                    resolved = ("False", "RefNotPermitted", f"backendRef {b.get('name')}/{bns} not accessible "
                                "to a HTTPRoute in namespace \"" + rns + "\" (missing a ReferenceGrant?)")
                    break
                if (bns, b.get("name")) not in services:
                    resolved = ("False", "BackendNotFound", f"backend({b.get('name')}.{bns}.svc.cluster.local) "
                                "not found")
                    break
            if resolved[0] == "False":
                break
        conds = [{"type": t, "status": s, "reason": r, "message": m, "observedGeneration": gen,
                  "lastTransitionTime": ""} for t, (s, r, m) in (("Accepted", accepted), ("ResolvedRefs", resolved))]
        return {"parentRef": echo, "controllerName": gw.controller_name if gw else CONTROLLER_NAME,
                "conditions": conds}

    @staticmethod
    def _keep_times(parent, old_parents):
        old = next((p for p in old_parents if p.get("parentRef") == parent["parentRef"]), None)
        olds = {c["type"]: c for c in (old or {}).get("conditions") or []}
        now = now_rfc3339()
        for c in parent["conditions"]:
            o = olds.get(c["type"])
            same = o is not None and all(o.get(k) == c[k] for k in ("status", "reason", "message",
                                                                    "observedGeneration"))
            c["lastTransitionTime"] = o["lastTransitionTime"] if same else now
        return parent


def ingress_tick(standin):
    """Write Ingress ``status.loadBalancer`` for the ingresses the configured controller serves."""
    mode = standin.ingress_controller
    if mode is None:
        return
    if mode not in ("nginx", "istio"):
        raise ValueError(f"unknown StandIn.ingress_controller {mode!r}; choose None, 'nginx' or 'istio'")
    for ing in standin.store.list("Ingress"):
        cls = (ing.get("spec") or {}).get("ingressClassName") or \
            (ing["metadata"].get("annotations") or {}).get("kubernetes.io/ingress.class")
        served = cls in (None, "nginx") if mode == "nginx" else cls == "istio"
        if not served:
            continue
        want = {"loadBalancer": {"ingress": [{"ip": INGRESS_IP}]}}
        if ing.get("status") != want:
            ing["status"] = want
            standin.store.update("Ingress", ing)
