"""The Toolforge routing admission rule: one pure implementation for the client and the webhook.

The cluster's validating webhook allows a routing object in ``tool-<tool>`` only if
every host it names is exactly ``<tool>.<domain>`` (REFERENCE section 6). The original
webhook used an unanchored, unescaped regex; this check is exact: ASCII-only,
case-insensitive equality, no trailing dot, no suffix, punycode or look-alike tricks,
and nothing is ever interpreted as a regular expression. It covers:

* Ingress (``networking.k8s.io/v1``): every rule host and TLS host; a rule without host,
  an Ingress without rules, a ``defaultBackend`` and wildcards are refused; snippet
  annotations (any ``*snippet*`` key) and ``server-alias`` are refused;
* HTTPRoute (``gateway.networking.k8s.io`` v1 and v1beta1): ``hostnames`` required and
  exact; ``parentRefs`` only to the configured Gateway(s) (when given); ``backendRefs``
  and ``RequestMirror`` backends only to Services of the route's own namespace;
* legacy path routing on the configured shared legacy host only under ``/<tool>``; the
  one snippet the client itself builds there (``rewrite ^(/<tool>)$ $1/ redirect;``) is
  the only snippet allowed; an HTTPRoute naming the legacy host must match only paths
  ``Exact``/``PathPrefix`` ``/<tool>`` or under ``/<tool>/`` in every rule (no rule or
  match without a path, no ``RegularExpression``), and its ``RequestRedirect`` filters may
  not leave the host or ``/<tool>/`` (the client's form: ``/<tool>`` redirected to
  ``/<tool>/``, ``/<tool>/`` to the Service);
* one catch-all tool (the 404 page) may hold ``*.<domain>``.

Every refusal is an ``AdmissionError`` with a stable ``reason`` code (``REASONS``) and a
one-line message saying what to change. ``check_routing`` is the client's entry point
(``Context.check_admission``); the webhook builds one ``Policy`` from its configuration
and calls ``Policy.check``. This module does no I/O and imports only ``webservice.errors``.
"""

from __future__ import annotations


from dataclasses import dataclass, field

from webservice.errors import AdmissionError

RULE = "routing hosts must be exactly <tool>.<domain>"

GATEWAY_GROUP = "gateway.networking.k8s.io"
DEFAULT_GATEWAYS = (("istio-gateway", "toolforge"),)

# stable reason codes (metrics label values) -> what they mean
REASONS = {
    "host-not-allowed": "a rule host or HTTPRoute hostname is not <tool>.<domain>",
    "tls-host-not-allowed": "a TLS host is not <tool>.<domain>",
    "missing-host": "an Ingress rule without host",
    "wildcard-host": "a wildcard host outside the catch-all tool",
    "idn-host": "a host with non-ASCII characters or a punycode (xn--) label",
    "no-rules": "an Ingress without rules",
    "default-backend": "an Ingress with spec.defaultBackend",
    "no-hostnames": "an HTTPRoute without hostnames",
    "snippet-annotation": "an nginx snippet annotation",
    "server-alias-annotation": "an nginx server-alias annotation",
    "legacy-path": "a legacy path outside /<tool>/",
    "redirect-not-allowed": "a RequestRedirect on the legacy host to another host or outside /<tool>/",
    "parent-not-allowed": "an HTTPRoute parentRef other than the configured Gateway(s)",
    "backend-not-allowed": "a backendRef that is not a Service of the route's namespace",
    "mirror-not-allowed": "a RequestMirror backend that is not a Service of the route's namespace",
    "malformed": "the object does not have the shape of its kind",
    "not-routing": "not an Ingress or HTTPRoute",
}


def _short(value: object) -> str:
    return repr(str(value)[:80])


def _ascii_lower(value: object) -> str | None:
    """``value`` lowercased if it is a str of printable ASCII without surrounding space, else None.

    ASCII is checked first, so that look-alikes lowercasing to ASCII (the Kelvin sign,
    dotted capital I) and IDN/full-width dots never compare equal."""
    if not isinstance(value, str) or not value.isascii() or not value.isprintable() or value != value.strip():
        return None
    return value.lower()


def _is_snippet(key: str) -> bool:
    name = key.rsplit("/", 1)[-1].lower()
    return "snippet" in name


def _is_alias(key: str) -> bool:
    return key.rsplit("/", 1)[-1].lower() == "server-alias"


def legacy_snippet(tool: str) -> str:
    """The only snippet allowed: the redirect ``/<tool>`` -> ``/<tool>/`` the client builds."""
    return f"rewrite ^(/{tool})$ $1/ redirect;"


def _regex_stays_under(value: str) -> bool:
    """Whether a path read as a start-anchored regex can only match what its literal
    prefix allows: no backslash, balanced groups, no ``|`` outside a group."""
    depth = 0
    for char in value:
        if char == "\\":
            return False
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
        elif char == "|" and depth == 0:
            return False
    return depth == 0


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
    if value == f"/{tool}(/|$)(.*)":
        return True
    if path.get("pathType") in ("Prefix", "Exact"):
        return _under_tool(value, tool)
    # ImplementationSpecific: ingress-nginx may read it as a regex (use-regex), anchored at
    # the start only; a top-level alternation (``/<tool>/|/other``) would then match paths
    # of other tools, and escapes or unbalanced groups make that impossible to see
    return value.startswith(f"/{tool}/") and _regex_stays_under(value)


def _legacy_route_path_ok(match: object, tool: str) -> bool:
    """An HTTPRoute match on the legacy host: an ``Exact`` or ``PathPrefix`` path (Gateway
    API matches prefixes element by element) that is ``/<tool>`` or under ``/<tool>/``,
    without ``.``/``..`` segments or percent-escapes. No path means ``PathPrefix /``, and a
    ``RegularExpression`` could match anything: both are refused."""
    if not isinstance(match, dict) or not isinstance(match.get("path"), dict):
        return False
    path = match["path"]
    value = path.get("value", "/")
    if path.get("type", "PathPrefix") not in ("Exact", "PathPrefix") or not isinstance(value, str):
        return False
    return _under_tool(value, tool)


def _under_tool(value: object, tool: str) -> bool:
    if not isinstance(value, str) or "%" in value or "//" in value:
        return False
    if any(segment in (".", "..") for segment in value.split("/")):
        return False
    return value == f"/{tool}" or value.startswith(f"/{tool}/")


def _parse_gateway(text: str) -> tuple[str, str]:
    namespace, sep, name = text.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ValueError(f"gateway {text!r} is not <namespace>/<name>")
    return namespace, name


@dataclass(frozen=True)
class Policy:
    """The site's routing rule, pre-parsed once (the webhook checks many objects with it).

    ``domains``: the public domains (``toolforge.org``); ``legacy_host``: the shared
    legacy host (None: no legacy routing); ``gateways``: allowed HTTPRoute parents as
    ``(namespace, name)`` pairs (None: parents are not checked, as on the client);
    ``catch_all_tool``: the one tool that may hold ``*.<domain>``."""

    domains: tuple = ("toolforge.org",)
    legacy_host: str | None = None
    gateways: frozenset | None = None
    catch_all_tool: str | None = None
    _domains: tuple = field(init=False, repr=False, compare=False, default=())
    _wildcards: frozenset = field(init=False, repr=False, compare=False, default=frozenset())
    _legacy: str | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self):
        domains = tuple(d for d in (_ascii_lower(d) for d in self.domains) if d)
        object.__setattr__(self, "_domains", domains)
        object.__setattr__(self, "_wildcards", frozenset(f"*.{d}" for d in domains))
        object.__setattr__(self, "_legacy", _ascii_lower(self.legacy_host) if self.legacy_host else None)

    @classmethod
    def from_options(cls, domains, legacy_host=None, *, gateways=None, catch_all_tool=None,
                     allow_legacy=True) -> "Policy":
        """Gateways may be ``"namespace/name"`` strings or pairs."""
        parsed = None
        if gateways is not None:
            parsed = frozenset(_parse_gateway(g) if isinstance(g, str) else tuple(g) for g in gateways)
        return cls(tuple(domains), legacy_host if allow_legacy else None, parsed, catch_all_tool or None)

    def allowed_hosts(self, tool: str) -> list[str]:
        return [f"{tool}.{d}".lower() for d in self._domains]

    def check(self, obj: object, tool: str, namespace: str | None = None) -> None:
        """Raise AdmissionError (with ``reason``) unless ``obj`` may route for ``tool``."""
        _Check(self, tool, obj, namespace).run()


class _Check:
    """One object's check; ``refuse`` raises with the message and reason."""

    def __init__(self, policy: Policy, tool: str, obj: object, namespace: str | None):
        self.policy = policy
        self.tool = tool
        self.obj = obj
        self.allowed = set(policy.allowed_hosts(tool))
        self.wildcards = policy._wildcards if policy.catch_all_tool and tool == policy.catch_all_tool else frozenset()
        self.kind = obj.get("kind") if isinstance(obj, dict) else None
        metadata = obj.get("metadata") if isinstance(obj, dict) else None
        self.metadata = metadata if isinstance(metadata, dict) else {}
        self.name = self.metadata.get("name", "?")
        spec = obj.get("spec") if isinstance(obj, dict) else None
        self.spec = spec if isinstance(spec, dict) else {}
        ns = namespace or self.metadata.get("namespace") or f"tool-{tool}"
        self.namespace = ns if isinstance(ns, str) else f"tool-{tool}"

    # -- refusals ----------------------------------------------------------------------
    def refuse(self, why: str, reason: str = "host-not-allowed") -> None:
        raise AdmissionError(
            f"{self.kind} {str(self.name)[:80]}: {why}; the cluster only admits {RULE} "
            f"({', '.join(sorted(self.allowed))})",
            reason=reason,
        )

    def refuse_because(self, why: str, fix: str, reason: str) -> None:
        raise AdmissionError(f"{self.kind} {str(self.name)[:80]}: {why}; {fix}", reason=reason)

    def as_list(self, value: object, what: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.refuse_because(f"{what} is not a list", f"make {what} a list", "malformed")
        return value

    def as_dict(self, value: object, what: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.refuse_because(f"{what} is not a mapping", f"make {what} a mapping", "malformed")
        return value

    # -- hosts -------------------------------------------------------------------------
    def host(self, host: object, what: str, reason: str) -> None:
        lowered = _ascii_lower(host)
        if (lowered is not None and (lowered in self.allowed or lowered in self.wildcards)
                and not lowered.startswith("xn--") and ".xn--" not in lowered):
            return
        if isinstance(host, str) and (not host.isascii() or "xn--" in host.lower()):
            reason = "idn-host"
        elif isinstance(host, str) and host.startswith("*") and reason == "host-not-allowed":
            reason = "wildcard-host"
        self.refuse(f"{what} {_short(host)} is not allowed", reason)

    # -- kinds -------------------------------------------------------------------------
    def run(self) -> None:
        if not isinstance(self.obj, dict):
            raise AdmissionError(f"{type(self.obj).__name__} is not a routing object", reason="malformed")
        for key in ("metadata", "spec"):
            if self.obj.get(key) is not None and not isinstance(self.obj.get(key), dict):
                self.refuse_because(f"{key} is not a mapping", f"make {key} a mapping", "malformed")
        if self.kind == "Ingress":
            self.ingress()
        elif self.kind == "HTTPRoute":
            self.httproute()
        else:
            raise AdmissionError(f"{str(self.kind)[:40]} {str(self.name)[:80]} is not a routing object",
                                 reason="not-routing")

    def _legacy_rule(self, host: object) -> bool:
        legacy = self.policy._legacy
        return bool(legacy) and _ascii_lower(host) == legacy

    def annotations(self, rules: list) -> None:
        annotations = self.metadata.get("annotations")
        if annotations is None:
            return
        if not isinstance(annotations, dict):
            self.refuse_because("metadata.annotations is not a mapping", "make it a mapping", "malformed")
        legacy_only = bool(rules) and all(isinstance(r, dict) and self._legacy_rule(r.get("host")) for r in rules)
        for key, value in annotations.items():
            key = str(key)
            if _is_alias(key):
                self.refuse_because(f"annotation {key} would add other hosts",
                                    "remove the annotation: a tool is served only at its own host",
                                    "server-alias-annotation")
            if _is_snippet(key):
                if (legacy_only and key == "nginx.ingress.kubernetes.io/configuration-snippet"
                        and value == legacy_snippet(self.tool)):
                    continue
                self.refuse_because(f"annotation {key} would add other hosts or nginx configuration",
                                    "remove the snippet annotation: snippets are not allowed on this cluster",
                                    "snippet-annotation")

    def ingress(self) -> None:
        spec = self.spec
        rules = self.as_list(spec.get("rules"), "spec.rules")
        self.annotations(rules)
        if not rules:
            self.refuse("an Ingress without host rules would catch other tools' traffic", "no-rules")
        if spec.get("defaultBackend"):
            self.refuse("spec.defaultBackend: a default backend would catch other tools' traffic; remove it",
                        "default-backend")
        for rule in rules:
            if not isinstance(rule, dict):
                self.refuse_because("a rule is not a mapping", "make each spec.rules item a mapping", "malformed")
            host = rule.get("host")
            if self._legacy_rule(host):
                http = rule.get("http") if isinstance(rule.get("http"), dict) else {}
                for path in self.as_list(http.get("paths"), "http.paths"):
                    if not _legacy_path_ok(path, self.tool):
                        value = path.get("path", "") if isinstance(path, dict) else path
                        self.refuse(f"legacy path {_short(value)} is outside /{self.tool}/", "legacy-path")
                continue
            if host is None or host == "":
                self.refuse(f"host {_short(host)} is not allowed (a rule without host catches every host)",
                            "missing-host")
            self.host(host, "host", "host-not-allowed")
        for tls in self.as_list(spec.get("tls"), "spec.tls"):
            tls = self.as_dict(tls, "a spec.tls item")
            for host in self.as_list(tls.get("hosts"), "tls.hosts"):
                self.host(host, "TLS host", "tls-host-not-allowed")

    def httproute(self) -> None:
        spec = self.spec
        hostnames = self.as_list(spec.get("hostnames"), "spec.hostnames")
        if not hostnames:
            self.refuse("an HTTPRoute without hostnames would catch other tools' traffic; "
                        f"add hostnames: [{self.tool}.<domain>]", "no-hostnames")
        legacy = False
        for host in hostnames:
            if self._legacy_rule(host):
                legacy = True
                continue
            self.host(host, "hostname", "host-not-allowed")
        if self.policy.gateways is not None:
            for i, parent in enumerate(self.as_list(spec.get("parentRefs"), "spec.parentRefs")):
                self.parent(parent, i)
        for i, rule in enumerate(self.as_list(spec.get("rules"), "spec.rules")):
            rule = self.as_dict(rule, f"spec.rules[{i}]")
            for j, ref in enumerate(self.as_list(rule.get("backendRefs"), f"spec.rules[{i}].backendRefs")):
                where = f"spec.rules[{i}].backendRefs[{j}]"
                ref = self.as_dict(ref, where)
                self.backend(ref, where, "backend-not-allowed")
                self.filters(ref.get("filters"), f"{where}.filters")
            self.filters(rule.get("filters"), f"spec.rules[{i}].filters")
            if legacy:
                self.legacy_route_rule(rule, i)
        if legacy and not self.as_list(spec.get("rules"), "spec.rules"):
            self.refuse("an HTTPRoute on the legacy host without rules routes every path; legacy path "
                        f"{'/'!r} is outside /{self.tool}/", "legacy-path")

    def legacy_route_rule(self, rule: dict, i: int) -> None:
        """A rule of an HTTPRoute naming the legacy host: only ``/<tool>`` paths, and
        redirects that stay on the host and under ``/<tool>``."""
        matches = self.as_list(rule.get("matches"), f"spec.rules[{i}].matches")
        if not matches:
            self.refuse(f"spec.rules[{i}] has no matches, so it routes every path; legacy path {'/'!r} is "
                        f"outside /{self.tool}/", "legacy-path")
        for match in matches:
            if not _legacy_route_path_ok(match, self.tool):
                path = match.get("path") if isinstance(match, dict) else None
                value = path.get("value", "/") if isinstance(path, dict) else "/"
                kind = path.get("type", "PathPrefix") if isinstance(path, dict) else "PathPrefix"
                self.refuse(f"spec.rules[{i}]: legacy path {_short(value)} ({str(kind)[:20]}) is outside "
                            f"/{self.tool}/", "legacy-path")
        filters = list(self.as_list(rule.get("filters"), f"spec.rules[{i}].filters"))
        for ref in self.as_list(rule.get("backendRefs"), f"spec.rules[{i}].backendRefs"):
            filters += self.as_list(ref.get("filters") if isinstance(ref, dict) else None, "backendRefs.filters")
        for flt in filters:
            if not isinstance(flt, dict) or (flt.get("type") != "RequestRedirect" and "requestRedirect" not in flt):
                continue
            redirect = self.as_dict(flt.get("requestRedirect"), f"spec.rules[{i}] requestRedirect")
            host = redirect.get("hostname")
            if host is not None and not self._legacy_rule(host):
                self.refuse_because(f"spec.rules[{i}]: a redirect to host {_short(host)} leaves the legacy host",
                                    f"redirect only within /{self.tool}/ (no hostname)", "redirect-not-allowed")
            path = self.as_dict(redirect.get("path"), f"spec.rules[{i}] requestRedirect.path")
            for key in ("replaceFullPath", "replacePrefixMatch"):
                if key in path and not _under_tool(path[key], self.tool):
                    self.refuse_because(f"spec.rules[{i}]: a redirect to {_short(path[key])} leaves /{self.tool}/",
                                        f"redirect only to /{self.tool}/ or below", "redirect-not-allowed")

    def parent(self, parent: object, i: int) -> None:
        where = f"spec.parentRefs[{i}]"
        parent = self.as_dict(parent, where)
        group = parent.get("group", GATEWAY_GROUP)
        kind = parent.get("kind", "Gateway")
        namespace = parent.get("namespace", self.namespace)
        pair = (namespace, parent.get("name"))
        if (group == GATEWAY_GROUP and kind == "Gateway" and all(isinstance(p, str) for p in pair)
                and pair in self.policy.gateways):
            return
        allowed = ", ".join(f"{ns}/{name}" for ns, name in sorted(self.policy.gateways)) or "none"
        shown = f"{kind}/{group} {namespace}/{parent.get('name')}"
        self.refuse_because(f"{where} {_short(shown)} is not an allowed parent",
                            f"attach the route to the Gateway {allowed} "
                            f"(parentRefs: [{{name: ..., namespace: ...}}])", "parent-not-allowed")

    def backend(self, ref: dict, where: str, reason: str) -> None:
        group = ref.get("group", "")
        kind = ref.get("kind", "Service")
        namespace = ref.get("namespace", self.namespace)
        if group == "" and kind == "Service" and namespace == self.namespace and isinstance(
                ref.get("name"), str):
            return
        shown = f"{kind} {namespace}/{ref.get('name')}"
        self.refuse_because(f"{where} {_short(shown)} is not a Service of namespace {self.namespace}",
                            f"point it at one of your own Services (kind Service, no namespace or "
                            f"namespace {self.namespace})", reason)

    def filters(self, filters: object, where: str) -> None:
        for k, flt in enumerate(self.as_list(filters, where)):
            flt = self.as_dict(flt, f"{where}[{k}]")
            mirror = flt.get("requestMirror")
            if flt.get("type") == "RequestMirror" or mirror is not None:
                mirror = self.as_dict(mirror, f"{where}[{k}].requestMirror")
                ref = self.as_dict(mirror.get("backendRef"), f"{where}[{k}].requestMirror.backendRef")
                self.backend(ref, f"{where}[{k}].requestMirror.backendRef", "mirror-not-allowed")


def check_routing(obj: dict, tool: str, domains: list[str] | tuple[str, ...], legacy_host: str | None = None, *,
                  gateways=None, catch_all_tool: str | None = None, allow_legacy: bool = True,
                  namespace: str | None = None) -> None:
    """Raise AdmissionError unless every host in ``obj`` is ``<tool>.<domain>`` (and, for an
    HTTPRoute, its parents and backends are allowed). ``gateways``: ``"namespace/name"``
    strings or pairs (None: not checked); ``allow_legacy=False`` ignores ``legacy_host``."""
    Policy.from_options(domains, legacy_host, gateways=gateways, catch_all_tool=catch_all_tool,
                        allow_legacy=allow_legacy).check(obj, tool, namespace)
