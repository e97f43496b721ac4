"""The webhook's decisions (webservice.webhook.review): a table of AdmissionReviews.

The first rows are the Go webhook's own test cases (server/server_test.go of
cloud/toolforge/ingress-admission-controller), then the bypasses its unanchored regex let
through, then what it never checked (TLS hosts, rules-less Ingresses, default backends,
snippets, HTTPRoutes). Decisions are made with the default configuration
(``config.load({}, environ={})``) unless a row says otherwise.
"""

from __future__ import annotations

import copy
import json

import pytest

from webservice.builders.admission import REASONS, Policy
from webservice.webhook import config as webhook_config
from webservice.webhook.review import InvalidReview, review

DEFAULT = webhook_config.load({}, environ={})
LEGACY = webhook_config.load({"legacy_host": "tools.wmflabs.org"}, environ={})
EXEMPT_TOOL = webhook_config.load({"exempt_namespaces": "kube-system,tool-admin"}, environ={})
INGRESS = ("networking.k8s.io", "v1", "Ingress")
ROUTE = ("gateway.networking.k8s.io", "v1", "HTTPRoute")
ROUTE_BETA = ("gateway.networking.k8s.io", "v1beta1", "HTTPRoute")

# --- the Go webhook's own cases, as it sends them (no apiVersion on the review, old backend shape)
GO_FAIL = {
    "kind": "AdmissionReview",
    "request": {
        "uid": "e911777a-c418-11e8-bbad-025000000001",
        "kind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
        "namespace": "tool-tool2",
        "operation": "CREATE",
        "object": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                   "metadata": {"name": "tool2-ingress", "namespace": "tool-tool2"},
                   "spec": {"rules": [{"host": "tool1.toolforge.org", "http": {"paths": [
                       {"backend": {"serviceName": "tool2-svc", "servicePort": "8081"}}]}}]}},
    },
}
GO_PASS = {
    "kind": "AdmissionReview",
    "request": {
        "uid": "e911857d-c318-11e8-bbad-025000000001",
        "kind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
        "operation": "CREATE",
        "namespace": "tool-tool2",
        "object": {"kind": "Ingress", "apiVersion": "networking.k8s.io/v1",
                   "metadata": {"name": "tool2-ingress", "namespace": "tool-tool2",
                                "uid": "4b54be10-8d3c-11e9-8b7a-080027f5f85c",
                                "creationTimestamp": "2019-06-12T18:02:51Z"},
                   "spec": {"rules": [{"host": "tool2.toolforge.org", "http": {"paths": [
                       {"backend": {"service": {"name": "tool2-svc", "port": {"number": 8081}}}}]}}]}},
    },
}


def ingress(*hosts, tls=None, default_backend=False, annotations=None, paths=None, namespace="tool-tool") -> dict:
    tool = namespace[len("tool-"):]
    backend = {"service": {"name": tool, "port": {"number": 8000}}}
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": f"{tool}-subdomain", "namespace": namespace},
           "spec": {"rules": [{"host": h, "http": {"paths": paths or [
               {"path": "/", "pathType": "Prefix", "backend": backend}]}} for h in hosts]}}
    if tls is not None:
        obj["spec"]["tls"] = [{"hosts": tls, "secretName": "x"}]
    if default_backend:
        obj["spec"]["defaultBackend"] = backend
    if annotations is not None:
        obj["metadata"]["annotations"] = annotations
    return obj


def route(*hostnames, parents=None, backends=None, filters=None, namespace="tool-tool",
          version="v1") -> dict:
    tool = namespace[len("tool-"):]
    rule = {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": backends if backends is not None else [{"group": "", "kind": "Service", "name": tool,
                                                                  "port": 8000}]}
    if filters is not None:
        rule["filters"] = filters
    spec = {"parentRefs": parents if parents is not None else [{"name": "toolforge", "namespace": "istio-gateway"}],
            "rules": [rule]}
    if hostnames != (None,):
        spec["hostnames"] = list(hostnames)
    return {"apiVersion": f"gateway.networking.k8s.io/{version}", "kind": "HTTPRoute",
            "metadata": {"name": tool, "namespace": namespace}, "spec": spec}


def legacy_route(*rules, host="tools.wmflabs.org", parents=None) -> dict:
    """The legacy path HTTPRoute the client builds under a Gateway (objects.build_legacy_httproute),
    or one with the given ``rules``."""
    obj = route(host, parents=parents)
    obj["metadata"]["name"] = "tool-legacy"
    obj["spec"]["rules"] = list(rules) or [
        {"matches": [{"path": {"type": "Exact", "value": "/tool"}}],
         "filters": [{"type": "RequestRedirect", "requestRedirect": {
             "path": {"type": "ReplaceFullPath", "replaceFullPath": "/tool/"}, "statusCode": 302}}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/tool/"}}],
         "backendRefs": [{"name": "tool", "port": 8000}]}]
    return obj


def to_tool(path: dict, **extra) -> dict:
    return {"matches": [{"path": path}], "backendRefs": [{"name": "tool", "port": 8000}], **extra}


def redirect(**fields) -> dict:
    return {"matches": [{"path": {"type": "Exact", "value": "/tool"}}],
            "filters": [{"type": "RequestRedirect", "requestRedirect": fields}]}


def ar(obj, *, kind=INGRESS, namespace=None, operation="CREATE", uid="uid-1", api_version="admission.k8s.io/v1",
       **extra) -> dict:
    if namespace is None:
        metadata = obj.get("metadata") if isinstance(obj, dict) else None
        namespace = (metadata.get("namespace") if isinstance(metadata, dict) else None) or "tool-tool"
    group, version, k = kind
    request = {"uid": uid, "kind": {"group": group, "version": version, "kind": k},
               "resource": {"group": group, "version": version, "resource": k.lower() + "s"},
               "namespace": namespace, "operation": operation, "object": obj,
               "userInfo": {"username": "tool", "groups": ["toolforge"]}}
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        request["name"] = obj["metadata"].get("name")
    request.update(extra)
    return {"apiVersion": api_version, "kind": "AdmissionReview", "request": request}


def mirror(namespace=None, kind="Service", group=""):
    ref = {"group": group, "kind": kind, "name": "tool", "port": 8000}
    if namespace:
        ref["namespace"] = namespace
    return [{"type": "RequestMirror", "requestMirror": {"backendRef": ref}}]


GATEWAY = {"name": "toolforge", "namespace": "istio-gateway"}

# (id, review, config, expected reason: None = allowed)
CASES = [
    # the Go webhook's tests
    ("go-fail-other-tools-host", GO_FAIL, DEFAULT, "host-not-allowed"),
    ("go-pass-own-host", GO_PASS, DEFAULT, None),
    # what the Go regex let through
    ("suffix-lookalike", ar(ingress("tool.toolforge.org.example")), DEFAULT, "host-not-allowed"),
    ("unescaped-dot", ar(ingress("tool.toolforgeXorg")), DEFAULT, "host-not-allowed"),
    ("unescaped-dot-in-tool", ar(ingress("atoolforgeXorg", namespace="tool-a")), DEFAULT, "host-not-allowed"),
    ("a.toolforge.org.example", ar(ingress("a.toolforge.org.example", namespace="tool-a")), DEFAULT,
     "host-not-allowed"),
    ("prefix-lookalike", ar(ingress("tool.toolforge.organization")), DEFAULT, "host-not-allowed"),
    ("other-tool-prefix", ar(ingress("toolx.toolforge.org")), DEFAULT, "host-not-allowed"),
    ("upper-trailing-dot", ar(ingress("A.TOOLFORGE.ORG.", namespace="tool-a")), DEFAULT, "host-not-allowed"),
    ("upper-case-exact", ar(ingress("A.TOOLFORGE.ORG", namespace="tool-a")), DEFAULT, None),
    ("trailing-dot", ar(ingress("tool.toolforge.org.")), DEFAULT, "host-not-allowed"),
    ("regex-alternation", ar(ingress("tool|x.toolforge.org")), DEFAULT, "host-not-allowed"),
    ("regex-in-tool-name-never-interpreted", ar(ingress("a.toolforge.org", namespace="tool-.*")), DEFAULT,
     "host-not-allowed"),
    ("punycode-label", ar(ingress("xn--tol-bpa.toolforge.org")), DEFAULT, "idn-host"),
    ("punycode-own-name", ar(ingress("xn--80ak6aa92e.toolforge.org", namespace="tool-xn--80ak6aa92e")), DEFAULT,
     "idn-host"),
    ("cyrillic-o", ar(ingress("tооl.toolforge.org")), DEFAULT, "idn-host"),
    ("fullwidth-dot", ar(ingress("tool．toolforge.org")), DEFAULT, "idn-host"),
    ("kelvin-sign", ar(ingress("\u212ait.toolforge.org", namespace="tool-kit")), DEFAULT, "idn-host"),
    ("zero-width-space", ar(ingress("tool.toolforge.org\u200b")), DEFAULT, "idn-host"),
    ("surrounding-space", ar(ingress(" tool.toolforge.org")), DEFAULT, "host-not-allowed"),
    ("port-in-host", ar(ingress("tool.toolforge.org:443")), DEFAULT, "host-not-allowed"),
    ("other-configured-domain", ar(ingress("tool.toolsbeta.wmcloud.org")), DEFAULT, None),
    ("several-rules-one-bad", ar(ingress("tool.toolforge.org", "other.toolforge.org")), DEFAULT,
     "host-not-allowed"),
    # what it never checked
    ("wildcard", ar(ingress("*.toolforge.org")), DEFAULT, "wildcard-host"),
    ("wildcard-own-subdomains", ar(ingress("*.tool.toolforge.org")), DEFAULT, "wildcard-host"),
    ("catch-all-wildcard", ar(ingress("*.toolforge.org", namespace="tool-fourohfour")), DEFAULT, None),
    ("catch-all-bare-star", ar(ingress("*", namespace="tool-fourohfour")), DEFAULT, "wildcard-host"),
    ("catch-all-foreign-wildcard", ar(ingress("*.example.org", namespace="tool-fourohfour")), DEFAULT,
     "wildcard-host"),
    ("catch-all-disabled", ar(ingress("*.toolforge.org", namespace="tool-fourohfour")),
     webhook_config.load({"catch_all_tool": ""}, environ={}), "wildcard-host"),
    ("missing-host", ar(ingress(None)), DEFAULT, "missing-host"),
    ("empty-host", ar(ingress("")), DEFAULT, "missing-host"),
    ("no-rules", ar(ingress()), DEFAULT, "no-rules"),
    ("default-backend-only", ar({**ingress(), "spec": {"defaultBackend": {"service": {"name": "tool"}}}}),
     DEFAULT, "no-rules"),
    ("default-backend-with-rules", ar(ingress("tool.toolforge.org", default_backend=True)), DEFAULT,
     "default-backend"),
    ("tls-other-host", ar(ingress("tool.toolforge.org", tls=["other.toolforge.org"])), DEFAULT,
     "tls-host-not-allowed"),
    ("tls-wildcard", ar(ingress("tool.toolforge.org", tls=["*.toolforge.org"])), DEFAULT, "tls-host-not-allowed"),
    ("tls-own-host", ar(ingress("tool.toolforge.org", tls=["tool.toolforge.org"])), DEFAULT, None),
    ("configuration-snippet", ar(ingress("tool.toolforge.org", annotations={
        "nginx.ingress.kubernetes.io/configuration-snippet": "proxy_pass http://other;"})), DEFAULT,
     "snippet-annotation"),
    ("server-snippet", ar(ingress("tool.toolforge.org", annotations={
        "nginx.ingress.kubernetes.io/server-snippet": "server_name other.toolforge.org;"})), DEFAULT,
     "snippet-annotation"),
    ("auth-snippet", ar(ingress("tool.toolforge.org", annotations={
        "nginx.ingress.kubernetes.io/auth-snippet": "x"})), DEFAULT, "snippet-annotation"),
    ("stream-snippet", ar(ingress("tool.toolforge.org", annotations={
        "nginx.ingress.kubernetes.io/stream-snippet": "x"})), DEFAULT, "snippet-annotation"),
    ("nginx-inc-snippets", ar(ingress("tool.toolforge.org", annotations={"nginx.org/server-snippets": "x"})),
     DEFAULT, "snippet-annotation"),
    ("server-alias", ar(ingress("tool.toolforge.org", annotations={
        "nginx.ingress.kubernetes.io/server-alias": "other.toolforge.org"})), DEFAULT, "server-alias-annotation"),
    ("harmless-annotation", ar(ingress("tool.toolforge.org", annotations={
        "nginx.ingress.kubernetes.io/proxy-body-size": "10m"})), DEFAULT, None),
    # legacy path routing, only where enabled
    ("legacy-disabled", ar(ingress("tools.wmflabs.org", paths=[
        {"path": "/tool", "pathType": "Prefix", "backend": {"service": {"name": "tool"}}}])), DEFAULT,
     "host-not-allowed"),
    ("legacy-own-path", ar(ingress("tools.wmflabs.org", paths=[
        {"path": "/tool", "pathType": "Prefix", "backend": {"service": {"name": "tool"}}}])), LEGACY, None),
    ("legacy-other-path", ar(ingress("tools.wmflabs.org", paths=[
        {"path": "/other", "pathType": "Prefix", "backend": {"service": {"name": "tool"}}}])), LEGACY,
     "legacy-path"),
    ("legacy-prefix-of-other-tool", ar(ingress("tools.wmflabs.org", paths=[
        {"path": "/to", "pathType": "Prefix", "backend": {"service": {"name": "tool"}}}])), LEGACY, "legacy-path"),
    ("legacy-own-redirect-snippet", ar(ingress("tools.wmflabs.org", annotations={
        "nginx.ingress.kubernetes.io/configuration-snippet": "rewrite ^(/tool)$ $1/ redirect;",
        "nginx.ingress.kubernetes.io/rewrite-target": "/tool/$2", "nginx.ingress.kubernetes.io/use-regex": "true"},
        paths=[{"path": "/tool(/|$)(.*)", "pathType": "ImplementationSpecific",
                "backend": {"service": {"name": "tool"}}}])), LEGACY, None),
    ("legacy-other-snippet", ar(ingress("tools.wmflabs.org", annotations={
        "nginx.ingress.kubernetes.io/configuration-snippet": "rewrite ^ /other;"},
        paths=[{"path": "/tool", "pathType": "Prefix", "backend": {"service": {"name": "tool"}}}])), LEGACY,
     "snippet-annotation"),
    ("redirect-snippet-on-tool-host", ar(ingress("tool.toolforge.org", annotations={
        "nginx.ingress.kubernetes.io/configuration-snippet": "rewrite ^(/tool)$ $1/ redirect;"})), LEGACY,
     "snippet-annotation"),
    # legacy path routing under a Gateway: an HTTPRoute on the legacy host, /tool only
    ("legacy-route-own", ar(legacy_route(), kind=ROUTE), LEGACY, None),
    ("legacy-route-disabled", ar(legacy_route(), kind=ROUTE), DEFAULT, "host-not-allowed"),
    ("legacy-route-other-legacy-host", ar(legacy_route(host="toolsbeta.wmflabs.org"), kind=ROUTE), LEGACY,
     "host-not-allowed"),
    ("legacy-route-own-prefix-no-slash", ar(legacy_route(to_tool({"type": "PathPrefix", "value": "/tool"})),
                                           kind=ROUTE), LEGACY, None),
    ("legacy-route-own-subpath", ar(legacy_route(to_tool({"type": "Exact", "value": "/tool/api"})), kind=ROUTE),
     LEGACY, None),
    ("legacy-route-no-matches", ar(legacy_route({"backendRefs": [{"name": "tool", "port": 8000}]}), kind=ROUTE),
     LEGACY, "legacy-path"),
    ("legacy-route-match-without-path", ar(legacy_route({"matches": [{"headers": [{"name": "x", "value": "y"}]}],
                                                         "backendRefs": [{"name": "tool", "port": 8000}]}),
                                           kind=ROUTE), LEGACY, "legacy-path"),
    ("legacy-route-root", ar(legacy_route(to_tool({"type": "PathPrefix", "value": "/"})), kind=ROUTE), LEGACY,
     "legacy-path"),
    ("legacy-route-other-tool", ar(legacy_route(to_tool({"type": "PathPrefix", "value": "/toolbox/"})),
                                   kind=ROUTE), LEGACY, "legacy-path"),
    ("legacy-route-prefix-of-other-tool", ar(legacy_route(to_tool({"type": "PathPrefix", "value": "/to"})),
                                             kind=ROUTE), LEGACY, "legacy-path"),
    ("legacy-route-regex", ar(legacy_route(to_tool({"type": "RegularExpression", "value": "/tool/.*|/other/.*"})),
                              kind=ROUTE), LEGACY, "legacy-path"),
    ("legacy-route-dot-dot", ar(legacy_route(to_tool({"type": "PathPrefix", "value": "/tool/../other/"})),
                                kind=ROUTE), LEGACY, "legacy-path"),
    ("legacy-route-second-rule-outside", ar(legacy_route(to_tool({"type": "PathPrefix", "value": "/tool/"}),
                                                         to_tool({"type": "PathPrefix", "value": "/other/"})),
                                            kind=ROUTE), LEGACY, "legacy-path"),
    ("legacy-route-no-rules", ar({**legacy_route(), "spec": {**legacy_route()["spec"], "rules": []}}, kind=ROUTE),
     LEGACY, "legacy-path"),
    ("legacy-route-redirect-other-host", ar(legacy_route(redirect(hostname="evil.example", statusCode=302)),
                                            kind=ROUTE), LEGACY, "redirect-not-allowed"),
    ("legacy-route-redirect-outside", ar(legacy_route(redirect(path={"type": "ReplaceFullPath",
                                                                     "replaceFullPath": "/other/"})),
                                         kind=ROUTE), LEGACY, "redirect-not-allowed"),
    ("legacy-route-redirect-https", ar(legacy_route(redirect(scheme="https", path={
        "type": "ReplaceFullPath", "replaceFullPath": "/tool/"})), kind=ROUTE), LEGACY, None),
    ("legacy-route-other-backend-ns", ar(legacy_route(to_tool({"type": "PathPrefix", "value": "/tool/"}) | {
        "backendRefs": [{"name": "x", "namespace": "tool-other", "port": 80}]}), kind=ROUTE), LEGACY,
     "backend-not-allowed"),
    ("legacy-route-other-gateway", ar(legacy_route(parents=[{"name": "evil", "namespace": "istio-gateway"}]),
                                      kind=ROUTE), LEGACY, "parent-not-allowed"),
    # HTTPRoute
    ("route-own", ar(route("tool.toolforge.org"), kind=ROUTE), DEFAULT, None),
    ("route-v1beta1", ar(route("tool.toolforge.org", version="v1beta1"), kind=ROUTE_BETA), DEFAULT, None),
    ("route-v1beta1-lookalike", ar(route("tool.toolforge.org.example", version="v1beta1"), kind=ROUTE_BETA),
     DEFAULT, "host-not-allowed"),
    ("route-no-hostnames", ar(route(None), kind=ROUTE), DEFAULT, "no-hostnames"),
    ("route-empty-hostnames", ar(route(), kind=ROUTE), DEFAULT, "no-hostnames"),
    ("route-other-host", ar(route("tool.toolforge.org", "other.toolforge.org"), kind=ROUTE), DEFAULT,
     "host-not-allowed"),
    ("route-wildcard", ar(route("*.toolforge.org"), kind=ROUTE), DEFAULT, "wildcard-host"),
    ("route-catch-all-wildcard", ar(route("*.toolforge.org", namespace="tool-fourohfour"), kind=ROUTE), DEFAULT,
     None),
    ("route-parent-full-ref", ar(route("tool.toolforge.org", parents=[
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "toolforge", "namespace": "istio-gateway",
         "sectionName": "http"}]), kind=ROUTE), DEFAULT, None),
    ("route-parent-other-gateway", ar(route("tool.toolforge.org", parents=[
        {"name": "internal", "namespace": "istio-gateway"}]), kind=ROUTE), DEFAULT, "parent-not-allowed"),
    ("route-parent-other-namespace", ar(route("tool.toolforge.org", parents=[
        {"name": "toolforge", "namespace": "tool-other"}]), kind=ROUTE), DEFAULT, "parent-not-allowed"),
    ("route-parent-namespace-defaults-to-route", ar(route("tool.toolforge.org", parents=[{"name": "toolforge"}]),
                                                    kind=ROUTE), DEFAULT, "parent-not-allowed"),
    ("route-parent-own-gateway-in-namespace", ar(route("tool.toolforge.org", parents=[{"name": "toolforge"}]),
                                                 kind=ROUTE),
     webhook_config.load({"gateways": "tool-tool/toolforge"}, environ={}), None),
    ("route-parent-service-mesh", ar(route("tool.toolforge.org", parents=[
        {"group": "", "kind": "Service", "name": "toolforge", "namespace": "istio-gateway"}]), kind=ROUTE), DEFAULT,
     "parent-not-allowed"),
    ("route-parent-other-group", ar(route("tool.toolforge.org", parents=[
        {"group": "networking.istio.io", "kind": "Gateway", "name": "toolforge", "namespace": "istio-gateway"}]),
        kind=ROUTE), DEFAULT, "parent-not-allowed"),
    ("route-one-bad-parent", ar(route("tool.toolforge.org", parents=[
        GATEWAY, {"name": "other", "namespace": "istio-gateway"}]), kind=ROUTE), DEFAULT, "parent-not-allowed"),
    ("route-backend-other-namespace", ar(route("tool.toolforge.org", backends=[
        {"name": "other", "namespace": "tool-other", "port": 8000}]), kind=ROUTE), DEFAULT, "backend-not-allowed"),
    ("route-backend-own-namespace-explicit", ar(route("tool.toolforge.org", backends=[
        {"name": "tool", "namespace": "tool-tool", "port": 8000}]), kind=ROUTE), DEFAULT, None),
    ("route-backend-defaults", ar(route("tool.toolforge.org", backends=[{"name": "tool", "port": 8000}]),
                                  kind=ROUTE), DEFAULT, None),
    ("route-backend-other-kind", ar(route("tool.toolforge.org", backends=[
        {"group": "multicluster.x-k8s.io", "kind": "ServiceImport", "name": "x", "port": 80}]), kind=ROUTE),
     DEFAULT, "backend-not-allowed"),
    ("route-backend-kind-in-other-group", ar(route("tool.toolforge.org", backends=[
        {"group": "example.com", "kind": "Service", "name": "x", "port": 80}]), kind=ROUTE), DEFAULT,
     "backend-not-allowed"),
    ("route-mirror-other-namespace", ar(route("tool.toolforge.org", filters=mirror("tool-other")), kind=ROUTE),
     DEFAULT, "mirror-not-allowed"),
    ("route-mirror-own", ar(route("tool.toolforge.org", filters=mirror()), kind=ROUTE), DEFAULT, None),
    ("route-mirror-in-backend-filter", ar(route("tool.toolforge.org", backends=[
        {"name": "tool", "port": 8000, "filters": mirror("kube-system")}]), kind=ROUTE), DEFAULT,
     "mirror-not-allowed"),
    ("route-mirror-other-kind", ar(route("tool.toolforge.org", filters=mirror(kind="Pod")), kind=ROUTE), DEFAULT,
     "mirror-not-allowed"),
    ("route-v1beta1-backend-other-namespace", ar(route("tool.toolforge.org", version="v1beta1", backends=[
        {"name": "x", "namespace": "tool-other", "port": 80}]), kind=ROUTE_BETA), DEFAULT, "backend-not-allowed"),
    # scope
    ("update-checked", ar(ingress("other.toolforge.org"), operation="UPDATE"), DEFAULT, "host-not-allowed"),
    ("delete-allowed", ar(ingress("other.toolforge.org"), operation="DELETE"), DEFAULT, None),
    ("connect-allowed", ar(ingress("other.toolforge.org"), operation="CONNECT"), DEFAULT, None),
    ("status-subresource-allowed", ar(ingress("other.toolforge.org"), operation="UPDATE", subResource="status"),
     DEFAULT, None),
    ("kube-system-exempt", ar(ingress("anything.example", namespace="kube-system")), DEFAULT, None),
    ("configured-exempt-tool-namespace", ar(ingress("anything.example", namespace="tool-admin")), EXEMPT_TOOL,
     None),
    ("out-of-scope-namespace", ar(ingress("anything.example", namespace="istio-gateway")), DEFAULT, None),
    ("bare-tool-prefix-out-of-scope", ar(ingress("x.toolforge.org"), namespace="tool-"), DEFAULT, None),
    ("other-kind", ar({"kind": "Service", "metadata": {"name": "x"}}, kind=("", "v1", "Service"),
                      namespace="tool-tool"), DEFAULT, None),
    ("kind-from-object-when-request-has-none", {"request": {
        "uid": "u", "namespace": "tool-tool", "operation": "CREATE", "object": ingress("other.toolforge.org")}},
     DEFAULT, "host-not-allowed"),
    ("request-kind-wins-over-object", ar({**ingress("other.toolforge.org"), "kind": "Service"}), DEFAULT,
     "host-not-allowed"),
    ("namespace-from-object", {"request": {"uid": "u", "kind": {"group": "networking.k8s.io", "kind": "Ingress"},
                                           "operation": "CREATE", "object": ingress("other.toolforge.org")}},
     DEFAULT, "host-not-allowed"),
    # objects that cannot be parsed
    ("object-missing", ar(None, namespace="tool-tool"), DEFAULT, "unparseable-object"),
    ("object-a-string", ar("{not json", namespace="tool-tool"), DEFAULT, "unparseable-object"),
    ("spec-a-string", ar({**ingress("tool.toolforge.org"), "spec": "x"}), DEFAULT, "malformed"),
    ("rules-a-mapping", ar({**ingress(), "spec": {"rules": {"host": "tool.toolforge.org"}}}), DEFAULT, "malformed"),
    ("rule-a-string", ar({**ingress(), "spec": {"rules": ["tool.toolforge.org"]}}), DEFAULT, "malformed"),
    ("hostnames-a-string", ar({**route(), "spec": {"hostnames": "tool.toolforge.org"}}, kind=ROUTE), DEFAULT,
     "malformed"),
    ("host-a-number", ar(ingress(42)), DEFAULT, "host-not-allowed"),
    ("parent-name-a-list", ar(route("tool.toolforge.org", parents=[{"name": ["toolforge"],
                                                                    "namespace": "istio-gateway"}]), kind=ROUTE),
     DEFAULT, "parent-not-allowed"),
    ("annotations-a-list", ar({**ingress("tool.toolforge.org"),
                               "metadata": {"name": "x", "annotations": ["a"]}}), DEFAULT, "malformed"),
]


@pytest.mark.parametrize("body,config,reason", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decision(body, config, reason):
    answer, decision = review(copy.deepcopy(body), config.policy(), config.exempt_namespaces)
    response = answer["response"]
    assert response["uid"] == body["request"]["uid"]
    assert answer["kind"] == "AdmissionReview"
    assert response["allowed"] is (reason is None), response
    assert decision.reason == reason, decision
    if reason is None:
        assert "status" not in response
        return
    assert reason in REASONS or reason == "unparseable-object"
    status = response["status"]
    assert status["code"] == 403 and status["status"] == "Failure"
    message = status["message"]
    assert message and "\n" not in message and len(message) < 600, message
    assert response["auditAnnotations"] == {"denial-reason": reason}
    json.dumps(answer)  # serialisable as it is


def test_every_reason_code_is_reachable_from_the_table():
    reached = {case[3] for case in CASES}
    assert set(REASONS) - {"not-routing"} <= reached, set(REASONS) - reached


def test_denial_message_says_what_to_change():
    answer, _ = review(ar(ingress("tool.toolforge.org.example")), DEFAULT.policy())
    message = answer["response"]["status"]["message"]
    assert message.startswith("Ingress tool-subdomain: host 'tool.toolforge.org.example' is not allowed")
    assert "tool.toolforge.org" in message.split(";", 1)[1]
    answer, _ = review(ar(route("tool.toolforge.org", backends=[{"name": "x", "namespace": "tool-other"}]),
                          kind=ROUTE), DEFAULT.policy())
    message = answer["response"]["status"]["message"]
    assert "spec.rules[0].backendRefs[0]" in message and "namespace tool-tool" in message
    answer, _ = review(ar(route("tool.toolforge.org", parents=[{"name": "x", "namespace": "y"}]), kind=ROUTE),
                       DEFAULT.policy())
    assert "istio-gateway/toolforge" in answer["response"]["status"]["message"]


@pytest.mark.parametrize("api_version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
def test_response_uses_the_request_api_version(api_version):
    answer, _ = review(ar(ingress("tool.toolforge.org"), api_version=api_version), DEFAULT.policy())
    assert answer["apiVersion"] == api_version


def test_go_review_without_api_version_is_answered_as_v1():
    answer, _ = review(copy.deepcopy(GO_PASS), DEFAULT.policy())
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["response"] == {"uid": GO_PASS["request"]["uid"], "allowed": True}


@pytest.mark.parametrize(
    "body",
    [
        [],
        "AdmissionReview",
        None,
        {},
        {"kind": "AdmissionReview"},
        {"kind": "AdmissionReview", "request": None},
        {"kind": "AdmissionReview", "request": "x"},
        {"kind": "AdmissionReview", "request": {}},
        {"kind": "AdmissionReview", "request": {"uid": ""}},
        {"kind": "AdmissionReview", "request": {"uid": 5}},
        {"kind": "ConversionReview", "request": {"uid": "u"}},
        {"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview", "request": {"uid": "u"}},
        {"apiVersion": 1, "request": {"uid": "u"}},
    ],
    ids=repr,
)
def test_not_an_admission_review(body):
    with pytest.raises(InvalidReview):
        review(body, DEFAULT.policy())


def test_policy_is_pre_parsed_from_config():
    policy = DEFAULT.policy()
    assert isinstance(policy, Policy)
    assert policy.gateways == frozenset({("istio-gateway", "toolforge")})
    assert policy.catch_all_tool == "fourohfour"
    assert policy.legacy_host is None
    assert LEGACY.policy().legacy_host == "tools.wmflabs.org"
