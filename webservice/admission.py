"""The Toolforge ingress admission rule, as a pure check run before anything is sent.

The cluster's validating webhook allows a routing object in ``tool-<tool>`` only if
every host it names is exactly ``<tool>.<domain>`` (REFERENCE section 6). The original
webhook used an unanchored, unescaped regex; this check is exact: lowercase ASCII
comparison, no trailing dot, no suffix or look-alike tricks, and it also covers TLS
hosts, rules-less Ingresses (default backend only) and HTTPRoute hostnames. Legacy path
routing is allowed on the configured legacy host, only under ``/<tool>``.
"""

from __future__ import annotations

from webservice.errors import AdmissionError

RULE = "routing hosts must be exactly <tool>.<domain>"


def _host_ok(host: object, allowed: set[str]) -> bool:
    return isinstance(host, str) and host.isascii() and host.lower() in allowed and host == host.strip()


# nginx annotations that add host names or whole server blocks: they would route other
# hosts to this tool whatever the rules say.
_HOST_ANNOTATIONS = (
    "nginx.ingress.kubernetes.io/server-alias",
    "nginx.ingress.kubernetes.io/server-snippet",
)


def _legacy_path_ok(path: object, tool: str) -> bool:
    """A legacy path rule may only route ``/<tool>`` and below, never ``/<tool>foo``.

    Accepted: a Prefix/Exact path ``/<tool>`` (Kubernetes matches Prefix paths element by
    element), any path under ``/<tool>/``, and the seed's regex ``/<tool>(/|$)(.*)``.
    A bare ``/<tool>`` that is a regex (ImplementationSpecific with use-regex) would
    match ``/<tool>foo``, so it is refused.
    """
    if not isinstance(path, dict):
        return False
    value = path.get("path", "")
    if not isinstance(value, str):
        return False
    if value == f"/{tool}":
        return path.get("pathType") in ("Prefix", "Exact")
    return value.startswith(f"/{tool}/") or value == f"/{tool}(/|$)(.*)"


def check_routing(obj: dict, tool: str, domains: list[str] | tuple[str, ...], legacy_host: str | None = None) -> None:
    """Raise AdmissionError unless every host in ``obj`` is ``<tool>.<domain>``."""
    allowed = {f"{tool}.{domain}".lower() for domain in domains}
    if not isinstance(obj, dict):
        raise AdmissionError(f"{type(obj).__name__} is not a routing object")
    kind = obj.get("kind")
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = metadata.get("name", "?")
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}

    def refuse(why: str) -> None:
        raise AdmissionError(
            f"{kind} {name}: {why}; the cluster only admits {RULE} "
            f"({', '.join(sorted(allowed))})"
        )

    def as_list(value: object, what: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            refuse(f"{what} is not a list")
        return value

    if kind == "Ingress":
        annotations = metadata.get("annotations") or {}
        for key in _HOST_ANNOTATIONS:
            if isinstance(annotations, dict) and key in annotations:
                refuse(f"annotation {key} would add other hosts")
        rules = as_list(spec.get("rules"), "spec.rules")
        if not rules or spec.get("defaultBackend"):
            refuse("an Ingress without host rules (or with a default backend) would catch other tools' traffic")
        for rule in rules:
            if not isinstance(rule, dict):
                refuse("a rule is not a mapping")
            host = rule.get("host")
            if legacy_host and isinstance(host, str) and host.isascii() and host.lower() == legacy_host.lower():
                http = rule.get("http") if isinstance(rule.get("http"), dict) else {}
                for path in as_list(http.get("paths"), "http.paths"):
                    if not _legacy_path_ok(path, tool):
                        value = path.get("path", "") if isinstance(path, dict) else path
                        refuse(f"legacy path {str(value)[:80]!r} is outside /{tool}/")
                continue
            if not _host_ok(host, allowed):
                refuse(f"host {str(host)[:80]!r} is not allowed")
        for tls in as_list(spec.get("tls"), "spec.tls"):
            hosts = as_list(tls.get("hosts") if isinstance(tls, dict) else None, "tls.hosts")
            for host in hosts:
                if not _host_ok(host, allowed):
                    refuse(f"TLS host {str(host)[:80]!r} is not allowed")
    elif kind == "HTTPRoute":
        hostnames = as_list(spec.get("hostnames"), "spec.hostnames")
        if not hostnames:
            refuse("an HTTPRoute without hostnames would catch other tools' traffic")
        for host in hostnames:
            if not _host_ok(host, allowed):
                refuse(f"hostname {str(host)[:80]!r} is not allowed")
    else:
        raise AdmissionError(f"{str(kind)[:40]} {str(name)[:80]} is not a routing object")
