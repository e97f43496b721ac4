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


def check_routing(obj: dict, tool: str, domains: list[str] | tuple[str, ...], legacy_host: str | None = None) -> None:
    """Raise AdmissionError unless every host in ``obj`` is ``<tool>.<domain>``."""
    allowed = {f"{tool}.{domain}".lower() for domain in domains}
    kind = obj.get("kind")
    name = obj.get("metadata", {}).get("name", "?")
    spec = obj.get("spec") or {}

    def refuse(why: str) -> None:
        raise AdmissionError(
            f"{kind} {name}: {why}; the cluster only admits {RULE} "
            f"({', '.join(sorted(allowed))})"
        )

    if kind == "Ingress":
        rules = spec.get("rules") or []
        if not rules or spec.get("defaultBackend"):
            refuse("an Ingress without host rules (or with a default backend) would catch other tools' traffic")
        for rule in rules:
            host = rule.get("host")
            if legacy_host and isinstance(host, str) and host.lower() == legacy_host.lower() and host.isascii():
                for path in (rule.get("http") or {}).get("paths") or []:
                    value = path.get("path", "")
                    if not (value == f"/{tool}" or value.startswith(f"/{tool}/") or value.startswith(f"/{tool}(")):
                        refuse(f"legacy path {value!r} is outside /{tool}/")
                continue
            if not _host_ok(host, allowed):
                refuse(f"host {str(host)[:80]!r} is not allowed")
        for tls in spec.get("tls") or []:
            for host in tls.get("hosts") or []:
                if not _host_ok(host, allowed):
                    refuse(f"TLS host {str(host)[:80]!r} is not allowed")
    elif kind == "HTTPRoute":
        hostnames = spec.get("hostnames") or []
        if not hostnames:
            refuse("an HTTPRoute without hostnames would catch other tools' traffic")
        for host in hostnames:
            if not _host_ok(host, allowed):
                refuse(f"hostname {str(host)[:80]!r} is not allowed")
    else:
        raise AdmissionError(f"{kind} {name} is not a routing object")
