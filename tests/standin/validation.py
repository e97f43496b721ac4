"""Validation of written objects, as kube-apiserver does it.

Two stages, with the real server's answers:

1. *Decoding* against the strict JSON schema of the configured Kubernetes version (the
   schema files shipped by the ``kubernetes-validate`` package, loaded directly and
   compiled once per kind into a cached ``jsonschema`` validator, so that this also works
   with bookworm's jsonschema 4.10).  Unknown fields under ``fieldValidation=Strict``,
   wrong JSON types and malformed quantities are ``400 BadRequest``
   (``<Kind> in version "v1" cannot be handled as a <Kind>: strict decoding error:
   unknown field "spec.foo"``).  With ``Warn`` the unknown fields are dropped and returned
   as ``Warning`` headers; ``Ignore`` drops them silently.  The stand-in's default is
   ``Strict`` (stricter than a real server, whose default is ``Warn``) so that a CLI
   sending a misspelt field fails its tests; ``StandIn.field_validation`` changes it.
2. *Validation* of names, labels, required fields, ranges and the cross-field rules
   the schemas lack: ``422 Invalid`` with ``causes``
   (``Deployment.apps "x" is invalid: metadata.name: Invalid value: "x_y": a lowercase
   RFC 1123 subdomain must consist of ...``).

HTTPRoute is a CRD with no schema in ``kubernetes-validate``: a small hand-written
structural check applies, with the CRD's CEL rules about redirects (a ``RequestRedirect``
rule may have no backendRefs; ``ReplacePrefixMatch`` needs exactly one ``PathPrefix``
match; ``statusCode`` 301 or 302).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import threading

import jsonschema

from . import quantity
from .errors import ApiError, bad_request, invalid

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"

MSG_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                 "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
                 "regex used for validation is '" + DNS1123_SUBDOMAIN + "')")
MSG_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
             "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
             "regex used for validation is '" + DNS1123_LABEL + "')")
MSG_1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
            "regex used for validation is '" + DNS1035_LABEL + "')")
MSG_LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
                   "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
                   "'my_value',  or '12345', regex used for validation is '" + LABEL_VALUE + "')")
MSG_QUALIFIED = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                 "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
                 "used for validation is '" + QUALIFIED_NAME + "')")

DEFAULT_VERSION = "1.29"


def gofmt(value) -> str:
    """A value as Go's %#v-ish formatting in field errors shows it."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value) if not isinstance(value, (dict, list)) else json.dumps(value)


def schemas_available() -> bool:
    """Whether ``kubernetes-validate`` (not packaged in Debian) is installed.  Without it the
    stand-in still runs, with the hand-written checks only (no strict schema decoding)."""
    return importlib.util.find_spec("kubernetes_validate") is not None


def schema_dir(version: str) -> str:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the kubernetes-validate package is needed for the stand-in's schemas")
    base = os.path.join(list(spec.submodule_search_locations)[0], "kubernetes-json-schema")
    path = os.path.join(base, f"v{version}.0-local-strict")
    if not os.path.isdir(path):
        raise RuntimeError(f"kubernetes-validate ships no schemas for Kubernetes {version}")
    return path


def shipped_versions() -> list[str]:
    base = os.path.dirname(schema_dir(DEFAULT_VERSION))
    out = []
    for name in os.listdir(base):
        m = re.fullmatch(r"v(\d+\.\d+)\.0-local-strict", name)
        if m:
            out.append(m.group(1))
    return sorted(out, key=lambda v: tuple(int(x) for x in v.split(".")))


_cache: dict = {}
_cache_lock = threading.Lock()


def validator_for(version: str, kind: str, api_version: str):
    if not schemas_available():
        return None
    key = (version, kind)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        directory = schema_dir(version)
        defs_key = (version, "$defs")
        if defs_key not in _cache:
            with open(os.path.join(directory, "_definitions.json")) as f:
                text = f.read().replace('"/api/_definitions.json#/$defs/', '"#/$defs/')
            _cache[defs_key] = json.loads(text)["$defs"]
        group = api_version.split("/")[0].split(".")[0] + "-" if "/" in api_version else ""
        fname = os.path.join(directory, f"{kind.lower()}-{group}{api_version.split('/')[-1]}.json")
        if not os.path.exists(fname):
            _cache[key] = None
            return None
        with open(fname) as f:
            schema = json.loads(f.read().replace('"/api/_definitions.json#/$defs/', '"#/$defs/'))
        schema["$defs"] = _cache[defs_key]
        _cache[key] = jsonschema.Draft202012Validator(schema)
        return _cache[key]


def _path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out


def _json_type(v) -> str:
    return {dict: "object", list: "array", str: "string", bool: "bool", type(None): "null"}.get(
        type(v), "number")


def _drop(obj, parts, key):
    cur = obj
    for p in parts:
        cur = cur[p]
    cur.pop(key, None)


def decode(res, obj: dict, version: str, field_validation: str = "Strict"):
    """Check ``obj`` as the server's decoder would.  Returns (obj, warnings)."""
    head = f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}'
    obj = copy.deepcopy(obj)
    _check_quantities(obj, head)
    validator = validator_for(version, res.kind, res.api_version)
    if validator is None:
        return obj, []
    unknown, type_errors = [], []
    for err in validator.iter_errors(obj):
        _collect(err, unknown, type_errors)
    if type_errors:
        path, got, want = type_errors[0]
        raise bad_request(f"{head}: json: cannot unmarshal {got} into Go struct field "
                          f"{res.kind}.{path} of type {want}")
    if unknown:
        names = sorted({_path(list(parts) + [k]) for parts, k in unknown})
        if field_validation == "Strict":
            raise bad_request(f"{head}: strict decoding error: " + ", ".join(
                f'unknown field "{n}"' for n in names))
        for parts, k in sorted(unknown, key=lambda u: -len(u[0])):
            try:
                _drop(obj, parts, k)
            except (KeyError, IndexError, TypeError):
                pass
        if field_validation == "Warn":
            return obj, [f'unknown field "{n}"' for n in names]
    return obj, []


def _collect(err, unknown, type_errors):
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        known = set(err.schema.get("properties", {}))
        for k in err.instance:
            if k not in known:
                unknown.append((tuple(err.absolute_path), k))
    elif err.validator == "type":
        want = err.validator_value
        want = [w for w in (want if isinstance(want, list) else [want]) if w != "null"]
        gotype = {"integer": "int64", "string": "string", "boolean": "bool", "object": "map",
                  "array": "slice", "number": "float64"}.get(want[0] if want else "", "value")
        type_errors.append((_path(err.absolute_path), _json_type(err.instance), gotype))
    elif err.validator in ("oneOf", "anyOf") and err.context:
        for sub in err.context:
            if sub.validator != "type":
                _collect(sub, unknown, type_errors)
        if all(sub.validator == "type" for sub in err.context):
            type_errors.append((_path(err.absolute_path), _json_type(err.instance), "string"))


def _check_quantities(obj, head):
    def walk(node, key_path):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("limits", "requests", "hard", "max", "min", "default", "defaultRequest",
                         "maxLimitRequestRatio", "used") and isinstance(v, dict):
                    for rk, rv in v.items():
                        if not isinstance(rv, (dict, list)):
                            try:
                                quantity.parse(rv)
                            except ValueError as e:
                                raise bad_request(f"{head}: {e}") from None
                elif k == "sizeLimit" and not isinstance(v, (dict, list)):
                    try:
                        quantity.parse(v)
                    except ValueError as e:
                        raise bad_request(f"{head}: {e}") from None
                else:
                    walk(v, key_path + [k])
        elif isinstance(node, list):
            for item in node:
                walk(item, key_path)
    walk(obj, [])


class Causes(list):
    def invalid(self, field, value, msg):
        self.append(("FieldValueInvalid", field, f"Invalid value: {gofmt(value)}: {msg}"))

    def required(self, field, detail=""):
        self.append(("FieldValueRequired", field, "Required value" + (f": {detail}" if detail else "")))

    def unsupported(self, field, value, supported):
        self.append(("FieldValueNotSupported", field, f"Unsupported value: {gofmt(value)}: supported values: "
                     + ", ".join(json.dumps(s) for s in supported)))

    def forbidden(self, field, msg):
        self.append(("FieldValueForbidden", field, f"Forbidden: {msg}"))

    def too_long(self, field, value, n):
        self.append(("FieldValueTooLong", field, f"Too long: may not be more than {n} bytes"))


def _name_check(causes, field, name, kind):
    if kind == "Service":
        if len(name) > 63 or not re.fullmatch(DNS1035_LABEL, name):
            causes.invalid(field, name, MSG_1035)
    elif kind == "Namespace":
        if len(name) > 63 or not re.fullmatch(DNS1123_LABEL, name):
            causes.invalid(field, name, MSG_LABEL)
    elif len(name) > 253 or not re.fullmatch(DNS1123_SUBDOMAIN, name):
        causes.invalid(field, name, MSG_SUBDOMAIN if len(name) <= 253
                       else "must be no more than 253 characters")


def _labels(causes, field, labels):
    for k, v in (labels or {}).items():
        prefix, _, name = k.rpartition("/")
        if prefix and not re.fullmatch(DNS1123_SUBDOMAIN, prefix):
            causes.invalid(field, k, "prefix part " + MSG_SUBDOMAIN)
        if len(name) > 63 or not re.fullmatch(QUALIFIED_NAME, name):
            causes.invalid(field, k, MSG_QUALIFIED)
        if not isinstance(v, str) or len(v) > 63 or not re.fullmatch(LABEL_VALUE, v):
            causes.invalid(field, v, MSG_LABEL_VALUE if isinstance(v, str) and len(v) <= 63
                           else "must be no more than 63 characters")


def _pod_spec(causes, spec, base, template=False):
    spec = spec or {}
    containers = spec.get("containers") or []
    if not containers:
        causes.required(f"{base}.containers")
    seen = set()
    for i, c in enumerate(containers):
        cp = f"{base}.containers[{i}]"
        name = c.get("name")
        if not name:
            causes.required(f"{cp}.name")
        elif not re.fullmatch(DNS1123_LABEL, name) or len(name) > 63:
            causes.invalid(f"{cp}.name", name, MSG_LABEL)
        elif name in seen:
            causes.append(("FieldValueDuplicate", f"{cp}.name", f"Duplicate value: {gofmt(name)}"))
        seen.add(name)
        if not c.get("image", "").strip() and not template:
            causes.required(f"{cp}.image")
        elif not c.get("image", "").strip():
            causes.required(f"{cp}.image")
        for j, p in enumerate(c.get("ports") or []):
            port = p.get("containerPort")
            if port is None:
                causes.required(f"{cp}.ports[{j}].containerPort")
            elif not 1 <= port <= 65535:
                causes.invalid(f"{cp}.ports[{j}].containerPort", port, "must be between 1 and 65535, inclusive")
            if p.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
                causes.unsupported(f"{cp}.ports[{j}].protocol", p["protocol"], ["SCTP", "TCP", "UDP"])
        for j, e in enumerate(c.get("env") or []):
            if not e.get("name"):
                causes.required(f"{cp}.env[{j}].name")
        res = c.get("resources") or {}
        for kind in ("limits", "requests"):
            for rname, rval in (res.get(kind) or {}).items():
                if quantity.parse(rval) < 0:
                    causes.invalid(f"{cp}.resources.{kind}[{rname}]", str(rval),
                                   "must be greater than or equal to 0")
        for rname, rval in (res.get("requests") or {}).items():
            lim = (res.get("limits") or {}).get(rname)
            if lim is not None and quantity.parse(rval) > quantity.parse(lim):
                causes.invalid(f"{cp}.resources.requests", str(rval),
                               f"must be less than or equal to {rname} limit of {lim}")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            pr = c.get(probe)
            if pr is None:
                continue
            handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if pr.get(h) is not None]
            if len(handlers) == 0:
                causes.required(f"{cp}.{probe}", "must specify a handler type")
            elif len(handlers) > 1:
                causes.forbidden(f"{cp}.{probe}.{handlers[1]}", "may not specify more than 1 handler type")
            if probe == "startupProbe" and pr.get("successThreshold", 1) != 1:
                causes.invalid(f"{cp}.{probe}.successThreshold", pr["successThreshold"], "must be 1")
            for fld in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "failureThreshold"):
                if isinstance(pr.get(fld), int) and pr[fld] < 0:
                    causes.invalid(f"{cp}.{probe}.{fld}", pr[fld], "must be greater than or equal to 0")
    rp = spec.get("restartPolicy")
    if rp is not None and rp not in ("Always", "OnFailure", "Never"):
        causes.unsupported(f"{base}.restartPolicy", rp, ["Always", "OnFailure", "Never"])
    vols = set()
    for i, v in enumerate(spec.get("volumes") or []):
        if v.get("name") in vols:
            causes.append(("FieldValueDuplicate", f"{base}.volumes[{i}].name", f"Duplicate value: {gofmt(v['name'])}"))
        vols.add(v.get("name"))


def validate(res, obj: dict, old: dict | None = None):
    """Raise ApiError 422 Invalid if ``obj`` breaks the server's validation rules."""
    causes = Causes()
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    kind = res.kind
    if not name:
        causes.required("metadata.name", "name or generateName is required")
    else:
        _name_check(causes, "metadata.name", name, kind)
    _labels(causes, "metadata.labels", meta.get("labels"))
    spec = obj.get("spec") or {}
    if kind == "Pod":
        _pod_spec(causes, spec, "spec")
    elif kind in ("Deployment", "ReplicaSet"):
        if spec.get("replicas", 1) is not None and spec.get("replicas", 1) < 0:
            causes.invalid("spec.replicas", spec["replicas"], "must be greater than or equal to 0")
        sel = spec.get("selector")
        tmpl = spec.get("template") or {}
        tlabels = (tmpl.get("metadata") or {}).get("labels") or {}
        _labels(causes, "spec.template.metadata.labels", tlabels)
        if not sel:
            causes.required("spec.selector")
        else:
            from .selectors import parse_label_selector
            ml = sel.get("matchLabels") or {}
            if not ml and not sel.get("matchExpressions"):
                causes.invalid("spec.selector", sel, "empty selector is invalid for deployment")
            expr = ",".join(f"{k}={v}" for k, v in ml.items())
            if not parse_label_selector(expr)(tlabels):
                causes.invalid("spec.template.metadata.labels", tlabels, "`selector` does not match template `labels`")
        _pod_spec(causes, tmpl.get("spec"), "spec.template.spec", template=True)
        rp = (tmpl.get("spec") or {}).get("restartPolicy")
        if rp not in (None, "Always"):
            causes.unsupported("spec.template.spec.restartPolicy", rp, ["Always"])
        if old is not None and (old.get("spec") or {}).get("selector") != sel:
            causes.invalid("spec.selector", sel, "field is immutable")
    elif kind == "Service":
        ports = spec.get("ports") or []
        if not ports and spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None":
            causes.required("spec.ports")
        names = set()
        for i, p in enumerate(ports):
            if not 1 <= int(p.get("port") or 0) <= 65535:
                causes.invalid(f"spec.ports[{i}].port", p.get("port"), "must be between 1 and 65535, inclusive")
            if len(ports) > 1 and not p.get("name"):
                causes.required(f"spec.ports[{i}].name")
            if p.get("name") in names:
                causes.append(("FieldValueDuplicate", f"spec.ports[{i}].name", f"Duplicate value: {gofmt(p['name'])}"))
            names.add(p.get("name"))
            tp = p.get("targetPort")
            if isinstance(tp, int) and not 1 <= tp <= 65535:
                causes.invalid(f"spec.ports[{i}].targetPort", tp, "must be between 1 and 65535, inclusive")
        _labels(causes, "spec.selector", spec.get("selector"))
    elif kind == "Ingress":
        for i, rule in enumerate(spec.get("rules") or []):
            host = rule.get("host")
            if host and not re.fullmatch(r"(\*\.)?" + DNS1123_SUBDOMAIN, host):
                causes.invalid(f"spec.rules[{i}].host", host, MSG_SUBDOMAIN)
            for j, path in enumerate(((rule.get("http") or {}).get("paths")) or []):
                pp = f"spec.rules[{i}].http.paths[{j}]"
                pt = path.get("pathType")
                if not pt:
                    causes.required(f"{pp}.pathType", "pathType must be specified")
                elif pt not in ("Exact", "Prefix", "ImplementationSpecific"):
                    causes.unsupported(f"{pp}.pathType", pt, ["Exact", "ImplementationSpecific", "Prefix"])
                elif pt in ("Exact", "Prefix") and not str(path.get("path", "")).startswith("/"):
                    causes.invalid(f"{pp}.path", path.get("path", ""), "must be an absolute path")
                be = path.get("backend") or {}
                svc = be.get("service")
                if not svc and not be.get("resource"):
                    causes.invalid(f"{pp}.backend", be, "must specify a backend")
                elif svc:
                    port = svc.get("port") or {}
                    if "number" in port and "name" in port:
                        causes.invalid(f"{pp}.backend.service.port", port, "cannot set both port name & port number")
                    elif "number" not in port and "name" not in port:
                        causes.required(f"{pp}.backend.service.port", "port name or number is required")
        if not spec.get("rules") and not spec.get("defaultBackend"):
            causes.invalid("spec", spec, "either `defaultBackend` or `rules` must be specified")
    elif kind == "HTTPRoute":
        _httproute(causes, obj, res.version)
    if causes:
        raise invalid(res, name, causes)


HTTPROUTE_SPEC_FIELDS = {"parentRefs", "hostnames", "rules"}


def _httproute(causes, obj, version="v1"):
    head = f'HTTPRoute in version "{version}" cannot be handled as a HTTPRoute'
    extra = set(obj) - {"apiVersion", "kind", "metadata", "spec", "status"}
    extra |= {f"spec.{k}" for k in set(obj.get("spec") or {}) - HTTPROUTE_SPEC_FIELDS}
    if extra:
        raise ApiError(400, "BadRequest", f"{head}: strict decoding error: "
                       + ", ".join(f'unknown field "{k}"' for k in sorted(extra)))
    if not isinstance(obj.get("spec"), dict):
        causes.required("spec")
        return
    spec = obj["spec"]
    for i, ref in enumerate(spec.get("parentRefs") or []):
        if not isinstance(ref, dict) or not ref.get("name"):
            causes.required(f"spec.parentRefs[{i}].name")
        elif ref.get("kind", "Gateway") == "Gateway" and ref.get("group", "gateway.networking.k8s.io") \
                != "gateway.networking.k8s.io":
            causes.unsupported(f"spec.parentRefs[{i}].group", ref.get("group"), ["gateway.networking.k8s.io"])
    for i, rule in enumerate(spec.get("rules") or []):
        for j, m in enumerate(rule.get("matches") or []):
            path = (m or {}).get("path") or {}
            if not path:
                continue
            pt = path.get("type", "PathPrefix")
            if pt not in ("Exact", "PathPrefix", "RegularExpression"):
                causes.unsupported(f"spec.rules[{i}].matches[{j}].path.type", pt,
                                   ["Exact", "PathPrefix", "RegularExpression"])
            elif pt != "RegularExpression" and not str(path.get("value", "/")).startswith("/"):
                causes.invalid(f"spec.rules[{i}].matches[{j}].path.value", path.get("value"),
                               "must be an absolute path")
    for i, rule in enumerate(spec.get("rules") or []):
        _redirects(causes, rule, f"spec.rules[{i}]")
    for i, host in enumerate(spec.get("hostnames") or []):
        if not re.fullmatch(r"(\*\.)?" + DNS1123_SUBDOMAIN, host):
            causes.invalid(f"spec.hostnames[{i}]", host, f'spec.hostnames[{i}] in body should match '
                           r"'^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'")
    for i, rule in enumerate(spec.get("rules") or []):
        for j, ref in enumerate(rule.get("backendRefs") or []):
            if not ref.get("name"):
                causes.required(f"spec.rules[{i}].backendRefs[{j}].name")
            if ref.get("kind", "Service") == "Service" and "port" not in ref:
                causes.invalid(f"spec.rules[{i}].backendRefs[{j}]", "object",
                               "Must have port for Service reference")


def _redirects(causes, rule: dict, where: str) -> None:
    """The Gateway API v1 CRD's CEL rules on RequestRedirect filters (standard channel)."""
    redirects = [f for f in rule.get("filters") or [] if (f or {}).get("type") == "RequestRedirect"]
    for k, flt in enumerate(redirects):
        redirect = flt.get("requestRedirect")
        if not isinstance(redirect, dict):
            causes.invalid(f"{where}.filters[{k}]", flt, "filter.requestRedirect must be specified for "
                                                          "RequestRedirect filter.type")
            continue
        if "statusCode" in redirect and redirect["statusCode"] not in (301, 302):
            causes.unsupported(f"{where}.filters[{k}].requestRedirect.statusCode", redirect["statusCode"], [301, 302])
        if (redirect.get("path") or {}).get("type") == "ReplacePrefixMatch":
            matches = rule.get("matches") or []
            if len(matches) != 1 or ((matches[0] or {}).get("path") or {}).get("type", "PathPrefix") != "PathPrefix":
                causes.invalid(where, "object", "When using RequestRedirect filter with path.replacePrefixMatch, "
                                                "exactly one PathPrefix match must be specified")
    if redirects and rule.get("backendRefs"):
        causes.invalid(where, "object", "RequestRedirect filter must not be used together with backendRefs")


WEBHOOK = "ingress-admission.tools.wmcloud.org"


def ingress_admission(res, obj: dict, namespace: str, domains: list[str]):
    """The Toolforge validating webhook (cloud/toolforge/ingress-admission-controller).

    It answers a refusal with a Status carrying only a message; kube-apiserver then
    answers 400 with no reason and the message prefixed with ``admission webhook "<name>"
    denied the request: ``.  Unlike the original (an unanchored regex over rule hosts only),
    this checks what was intended: every rule host, every TLS host, and a rules-less
    Ingress is refused; hosts must equal ``<tool>.<domain>`` (case-insensitively).  The same
    rule is applied to HTTPRoute ``hostnames``.
    """
    if not namespace.startswith("tool-"):
        return
    tool = namespace[len("tool-"):]
    allowed = {f"{tool}.{d}".lower() for d in domains}
    spec = obj.get("spec") or {}
    if res.kind == "Ingress":
        hosts = [r.get("host") or "" for r in spec.get("rules") or []] or [""]
        for tls in spec.get("tls") or []:
            hosts += tls.get("hosts") or []
        message = f"Ingress host must be <toolname>.{domains[0]}"
    elif res.kind == "HTTPRoute":
        hosts = spec.get("hostnames") or [""]
        message = f"HTTPRoute hostnames must be <toolname>.{domains[0]}"
    else:
        return
    if any(h.lower() not in allowed for h in hosts):
        raise ApiError(400, "", f'admission webhook "{WEBHOOK}" denied the request: {message}')
