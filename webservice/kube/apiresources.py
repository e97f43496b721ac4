"""Where each kind of object lives in the Kubernetes API (no discovery: a fixed table).

Every kind webservice reads or changes is namespaced; :func:`api_path` builds the path
of a collection, an object or a subresource.
"""

from __future__ import annotations

from urllib.parse import quote

#: kind -> (API path prefix, plural resource name). All are namespaced.
KINDS: dict[str, tuple[str, str]] = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "ReplicaSet": ("/apis/apps/v1", "replicasets"),
    "Pod": ("/api/v1", "pods"),
    "Service": ("/api/v1", "services"),
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses"),
    "HTTPRoute": ("/apis/gateway.networking.k8s.io/v1", "httproutes"),
    "Event": ("/api/v1", "events"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "ResourceQuota": ("/api/v1", "resourcequotas"),
    "LimitRange": ("/api/v1", "limitranges"),
}


def plural(kind: str) -> str:
    return KINDS[kind][1]


def api_path(kind: str, namespace: str, name: str | None = None, sub: str | None = None) -> str:
    """``/apis/apps/v1/namespaces/<ns>/deployments[/<name>[/<sub>]]``; ValueError for an unknown kind."""
    try:
        prefix, resource = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}") from None
    path = f"{prefix}/namespaces/{quote(namespace, safe='')}/{resource}"
    if name is not None:
        path += "/" + quote(name, safe="")
    if sub:
        path += "/" + sub
    return path
