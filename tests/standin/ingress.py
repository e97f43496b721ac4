"""What serves an Ingress: writes Ingress ``status.loadBalancer`` (or nothing at all).

``StandIn.ingress_controller``:

``None`` (default, today's Toolforge: ingress-nginx is gone and Istio runs in STRICT mode)
    nothing serves an Ingress: it is accepted and its ``status.loadBalancer`` stays empty
    forever.
``"nginx"``
    the old ingress-nginx: serves Ingresses without a class or with class ``nginx`` and
    sets ``status.loadBalancer.ingress: [{ip: INGRESS_IP}]``.
``"istio"``
    Istio's STRICT ingress mode with a controller: serves only class ``istio``.

Called by the controller thread on every step, with the store's lock held. HTTPRoute
status is ``gateway.py``'s.
"""

from __future__ import annotations

INGRESS_IP = "185.15.56.11"
MODES = (None, "nginx", "istio")


def tick(standin):
    mode = standin.ingress_controller
    if mode is None:
        return
    if mode not in MODES:
        raise ValueError(f"unknown StandIn.ingress_controller {mode!r}; choose one of {MODES}")
    for ing in standin.store.list("Ingress"):
        cls = (ing.get("spec") or {}).get("ingressClassName") or \
            (ing["metadata"].get("annotations") or {}).get("kubernetes.io/ingress.class")
        served = cls in (None, "nginx") if mode == "nginx" else cls == "istio"
        if not served:
            continue
        want = {"loadBalancer": {"ingress": [{"ip": INGRESS_IP}]}}
        if ing.get("status") != want:
            ing["status"] = want
            standin.store.update("Ingress", ing, bump_generation=False)
