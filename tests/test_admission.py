"""The ingress admission rule: hosts must be exactly <tool>.<domain> (REFERENCE section 6)."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from pathlib import Path

import pytest

from webservice.builders.admission import RULE, check_routing
from webservice.model.catalogue import load_catalogue
from webservice.model.config import Config
from webservice.errors import AdmissionError, InputError
from webservice.builders.objects import build_routing
from webservice.model.spec import resolve_spec
from webservice.model.tool import Tool

TOOL = "foo"
DOMAINS = ["toolforge.org"]
LEGACY = "tools.wmflabs.org"


def ingress(*hosts, tls=None, default_backend=False, name="foo-subdomain", paths=None, annotations=None) -> dict:
    rules = [
        {
            "host": host,
            "http": {
                "paths": paths
                or [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": TOOL, "port": {"number": 8000}}}}]
            },
        }
        for host in hosts
    ]
    obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": f"tool-{TOOL}"},
        "spec": {"rules": rules},
    }
    if annotations is not None:
        obj["metadata"]["annotations"] = annotations
    if tls is not None:
        obj["spec"]["tls"] = tls
    if default_backend:
        obj["spec"]["defaultBackend"] = {"service": {"name": TOOL, "port": {"number": 8000}}}
    return obj


def httproute(*hostnames) -> dict:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": TOOL, "namespace": f"tool-{TOOL}"},
        "spec": {
            "parentRefs": [{"name": "toolforge", "namespace": "toolforge-gateway"}],
            "hostnames": list(hostnames),
            "rules": [{"backendRefs": [{"name": TOOL, "port": 8000}]}],
        },
    }


def legacy(*paths, host=LEGACY) -> dict:
    return ingress(
        host,
        name="foo-legacy",
        paths=[
            {"path": path, "pathType": path_type, "backend": {"service": {"name": TOOL, "port": {"number": 8000}}}}
            for path, path_type in paths
        ],
    )


def refused(obj, *fragments, domains=DOMAINS, legacy_host=LEGACY, tool=TOOL) -> AdmissionError:
    with pytest.raises(AdmissionError) as info:
        check_routing(obj, tool, domains, legacy_host=legacy_host)
    message = str(info.value)
    assert "\n" not in message, message
    assert isinstance(info.value, InputError)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return info.value


# --- allowed -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["foo.toolforge.org", "FOO.toolforge.org", "foo.ToolForge.ORG", "Foo.Toolforge.Org"])
def test_exact_host_allowed_case_insensitive(host):
    check_routing(ingress(host), TOOL, DOMAINS)
    check_routing(httproute(host), TOOL, DOMAINS)
    check_routing(ingress(host, tls=[{"hosts": [host], "secretName": "x"}]), TOOL, DOMAINS)


def test_any_configured_domain_allowed():
    domains = ["toolforge.org", "beta.toolforge.org"]
    check_routing(ingress("foo.toolforge.org", "foo.beta.toolforge.org"), TOOL, domains)
    check_routing(httproute("foo.beta.toolforge.org"), TOOL, domains)


def test_several_rules_all_checked():
    refused(ingress("foo.toolforge.org", "bar.toolforge.org"), "'bar.toolforge.org'")


# --- refused hosts ---------------------------------------------------------------------------------

BAD_HOSTS = [
    "foo.toolforge.org.evil.example",
    "foo.toolforgeXorg",
    "foo-toolforge.org",
    "evilfoo.toolforge.org",
    "x.foo.toolforge.org",
    "foo.toolforge.org.",
    "foo.toolforge.org..",
    ".foo.toolforge.org",
    " foo.toolforge.org",
    "foo.toolforge.org ",
    "foo.toolforge.org\n",
    "\tfoo.toolforge.org",
    "foo.toolforge.org\x00",
    "fоo.toolforge.org",  # Cyrillic о
    "foo.toolfоrge.org",  # Cyrillic о in the domain
    "foo．toolforge.org",  # fullwidth full stop
    "foo。toolforge.org",  # ideographic full stop
    "foo.toolforge.org\u200b",  # zero-width space
    "foo.toolforge.org\u0130",  # capital I with dot above (lowercases to two characters)
    "fıo.toolforge.org",  # dotless i
    "FOO.TOOLFORGE.ORG\u0131",
    "foo.toolforge.or\u0261",  # script g
    "foo.toolforge.org:443",
    "foo.toolforge.org/x",
    "*.toolforge.org",
    "*",
    "toolforge.org",
    "foo",
    "bar.toolforge.org",  # another tool's host
    "foo.wmflabs.org",
    "foo.toolforge.org.toolforge.org",
    "",
    None,
    42,
    ["foo.toolforge.org"],
]


@pytest.mark.parametrize("host", BAD_HOSTS, ids=repr)
def test_bad_ingress_host(host):
    refused(ingress(host), "Ingress foo-subdomain", "is not allowed", RULE, "foo.toolforge.org")


@pytest.mark.parametrize("host", BAD_HOSTS, ids=repr)
def test_bad_httproute_hostname(host):
    refused(httproute(host), "HTTPRoute foo", "hostname", "is not allowed")


@pytest.mark.parametrize("host", BAD_HOSTS, ids=repr)
def test_bad_tls_host(host):
    refused(ingress("foo.toolforge.org", tls=[{"hosts": [host], "secretName": "x"}]), "TLS host", "is not allowed")


@pytest.mark.parametrize("host", ["\u212ait.toolforge.org", "kit.toolforge.org\u0307", "k\u0131t.toolforge.org"], ids=repr)
def test_unicode_that_lowercases_to_ascii(host):
    """The Kelvin sign lowercases to 'k': only an ASCII-first comparison refuses it."""
    assert host.lower() != host or not host.isascii()
    check_routing(ingress("kit.toolforge.org"), "kit", DOMAINS)
    refused(ingress(host), "is not allowed", tool="kit")


def test_a_tool_named_like_a_prefix_of_another():
    refused(ingress("foo.toolforge.org"), "'foo.toolforge.org'", tool="fo")
    refused(ingress("foo.toolforge.org"), tool="foo.toolforge")


def test_message_names_the_rule_and_allowed_host():
    error = refused(ingress("foo.toolforge.org.evil.example"))
    assert str(error) == (
        "Ingress foo-subdomain: host 'foo.toolforge.org.evil.example' is not allowed; "
        "the cluster only admits routing hosts must be exactly <tool>.<domain> (foo.toolforge.org)"
    )


def test_long_host_is_shortened():
    error = refused(ingress("a" * 5000))
    assert len(str(error)) < 400


# --- shapes that catch other traffic ----------------------------------------------------------------


def test_rules_less_ingress():
    obj = ingress()
    obj["spec"] = {"defaultBackend": {"service": {"name": TOOL, "port": {"number": 8000}}}}
    refused(obj, "without host rules")


def test_empty_ingress_spec():
    obj = ingress()
    del obj["spec"]
    refused(obj, "without host rules")
    obj["spec"] = None
    refused(obj, "without host rules")


def test_default_backend_with_good_rules():
    refused(ingress("foo.toolforge.org", default_backend=True), "default backend")


def test_rule_without_host():
    obj = ingress("foo.toolforge.org")
    del obj["spec"]["rules"][0]["host"]
    refused(obj, "host 'None' is not allowed")


@pytest.mark.parametrize(
    "tls",
    [
        [{"hosts": ["foo.toolforge.org", "bar.toolforge.org"]}],
        [{"hosts": ["foo.toolforge.org"]}, {"hosts": ["*.toolforge.org"]}],
    ],
)
def test_any_bad_tls_host_refuses(tls):
    refused(ingress("foo.toolforge.org", tls=tls), "TLS host")


@pytest.mark.parametrize("hostnames", [[], None])
def test_httproute_without_hostnames(hostnames):
    obj = httproute()
    obj["spec"]["hostnames"] = hostnames
    refused(obj, "HTTPRoute foo", "without hostnames")


def test_httproute_one_bad_hostname_among_good():
    refused(httproute("foo.toolforge.org", "foo.toolforge.org.evil.example"), "evil.example")


@pytest.mark.parametrize(
    "annotation",
    ["nginx.ingress.kubernetes.io/server-alias", "nginx.ingress.kubernetes.io/server-snippet"],
)
def test_annotations_that_add_hosts(annotation):
    refused(ingress("foo.toolforge.org", annotations={annotation: "bar.toolforge.org"}), annotation)


@pytest.mark.parametrize(
    "obj",
    [
        {"kind": "Ingress", "metadata": {"name": "x"}, "spec": {"rules": ["foo.toolforge.org"]}},
        {"kind": "Ingress", "metadata": {"name": "x"}, "spec": {"rules": "foo.toolforge.org"}},
        {"kind": "Ingress", "metadata": None, "spec": {"rules": [None]}},
        {"kind": "Ingress", "metadata": {"name": "x"}, "spec": {"rules": [{"host": "foo.toolforge.org"}], "tls": "x"}},
        {"kind": "Ingress", "metadata": {"name": "x"}, "spec": {"rules": [{"host": "foo.toolforge.org"}], "tls": [{"hosts": "foo.toolforge.org"}]}},
        {"kind": "HTTPRoute", "metadata": {"name": "x"}, "spec": {"hostnames": "foo.toolforge.org"}},
        {"kind": "Ingress", "metadata": {"name": "x"}, "spec": {"rules": [{"host": LEGACY, "http": {"paths": ["/foo"]}}]}},
        {"kind": "Ingress", "metadata": {"name": "x"}, "spec": {"rules": [{"host": LEGACY, "http": {"paths": [{"path": 5}]}}]}},
    ],
    ids=range(8),
)
def test_malformed_objects_are_refused_not_crashed(obj):
    refused(obj)


# --- non-routing kinds -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Service", "Deployment", "Pod", "Gateway", "ingress", None, ""])
def test_non_routing_kinds(kind):
    obj = ingress("foo.toolforge.org")
    obj["kind"] = kind
    refused(obj, "is not a routing object")


def test_not_a_mapping():
    refused(["Ingress"], "not a routing object")


# --- legacy path routing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "paths",
    [
        [("/foo", "Prefix")],
        [("/foo", "Exact")],
        [("/foo/", "Prefix")],
        [("/foo/api", "Prefix")],
        [("/foo(/|$)(.*)", "ImplementationSpecific")],
        [("/foo/(.*)", "ImplementationSpecific")],
        [("/foo", "Prefix"), ("/foo/static", "Prefix")],
    ],
    ids=str,
)
def test_legacy_paths_inside(paths):
    check_routing(legacy(*paths), TOOL, DOMAINS, legacy_host=LEGACY)


def test_legacy_host_case_insensitive():
    check_routing(legacy(("/foo", "Prefix"), host="Tools.WMFLabs.org"), TOOL, DOMAINS, legacy_host=LEGACY)


@pytest.mark.parametrize(
    "paths",
    [
        [("/", "Prefix")],
        [("/foofoo", "Prefix")],  # another tool called foofoo
        [("/foobar/", "Prefix")],
        [("/foo", "ImplementationSpecific")],  # as a regex, /foo matches /foobar too
        [("/foo(.*)", "ImplementationSpecific")],
        [("/foo(|bar)(/|$)(.*)", "ImplementationSpecific")],
        [("/foo/|/other", "ImplementationSpecific")],  # a start-anchored regex: /other matches too
        [("/foo/(.*)|/bar/(.*)", "ImplementationSpecific")],
        [("/foo/\\|/bar", "ImplementationSpecific")],  # an escape hides what the regex is
        [("/foo/)|(/bar", "ImplementationSpecific")],
        [("/foo/|/other", None)],  # no pathType: the controller decides, as ImplementationSpecific
        [("/foo/../bar", "Prefix")],
        [("/fo", "Prefix")],
        [("/bar", "Prefix")],
        [("/bar/foo", "Prefix")],
        [("foo", "Prefix")],
        [("", "Prefix")],
        [("/FOO", "Prefix")],
        [("/.*", "ImplementationSpecific")],
        [("/foo", "Prefix"), ("/bar", "Prefix")],
    ],
    ids=str,
)
def test_legacy_paths_outside(paths):
    refused(legacy(*paths), "legacy path", "outside /foo/")


def test_legacy_path_without_path_key():
    obj = legacy(("/foo", "Prefix"))
    del obj["spec"]["rules"][0]["http"]["paths"][0]["path"]
    refused(obj, "legacy path ''")


def test_legacy_host_only_when_configured():
    refused(legacy(("/foo", "Prefix")), "'tools.wmflabs.org' is not allowed", legacy_host=None)
    refused(legacy(("/foo", "Prefix")), "is not allowed", legacy_host="toolsbeta.wmflabs.org")


@pytest.mark.parametrize(
    "host",
    ["tools.wmflabs.org.", "tools.wmflabs.org ", "tооls.wmflabs.org", "tools.wmflabs.org.evil.example"],
    ids=repr,
)
def test_legacy_host_look_alikes(host):
    refused(legacy(("/foo", "Prefix"), host=host), "is not allowed")


def test_legacy_tls_host_refused():
    obj = legacy(("/foo", "Prefix"))
    obj["spec"]["tls"] = [{"hosts": [LEGACY]}]
    refused(obj, "TLS host")


# --- legacy path routing under a Gateway: the HTTPRoute form ----------------------------------------


def legacy_route(*matches, host=LEGACY, redirect=None) -> dict:
    """An HTTPRoute on the legacy host with one rule per match (``(type, value)``, or None for
    a rule without matches) to the tool's Service, plus an optional redirect rule."""
    rules = [({"matches": [{"path": {"type": kind, "value": value}}]} if kind else {})
             | {"backendRefs": [{"name": TOOL, "port": 8000}]} for kind, value in matches]
    if redirect is not None:
        rules.insert(0, {"matches": [{"path": {"type": "Exact", "value": "/foo"}}],
                         "filters": [{"type": "RequestRedirect", "requestRedirect": redirect}]})
    obj = httproute(host)
    obj["metadata"]["name"] = "foo-legacy"
    obj["spec"]["rules"] = rules
    return obj


@pytest.mark.parametrize(
    "matches",
    [
        [("PathPrefix", "/foo/")],
        [("PathPrefix", "/foo")],  # element by element: not /foobar
        [("Exact", "/foo")],
        [("Exact", "/foo/api")],
        [("PathPrefix", "/foo/static"), ("Exact", "/foo/")],
    ],
    ids=str,
)
def test_legacy_route_paths_inside(matches):
    check_routing(legacy_route(*matches), TOOL, DOMAINS, legacy_host=LEGACY)


@pytest.mark.parametrize(
    "matches",
    [
        [(None, None)],  # no matches: every path
        [("PathPrefix", "/")],
        [("PathPrefix", "/foofoo/")],  # another tool called foofoo
        [("PathPrefix", "/fo")],
        [("Exact", "/bar")],
        [("PathPrefix", "/FOO/")],
        [("RegularExpression", "/foo/.*")],  # a regex may match anything
        [("PathPrefix", "/foo/../bar/")],
        [("PathPrefix", "/foo/%2e%2e/bar/")],
        [("PathPrefix", "/foo//")],
        [("PathPrefix", "/foo/"), ("PathPrefix", "/bar/")],
    ],
    ids=str,
)
def test_legacy_route_paths_outside(matches):
    refused(legacy_route(*matches), "legacy path", "outside /foo/")


def test_legacy_route_match_without_path_is_every_path():
    obj = legacy_route(("PathPrefix", "/foo/"))
    obj["spec"]["rules"][0]["matches"] = [{"headers": [{"name": "x", "value": "y"}]}]
    refused(obj, "legacy path '/'", "outside /foo/")


def test_legacy_route_only_on_the_configured_legacy_host():
    obj = legacy_route(("PathPrefix", "/foo/"))
    refused(obj, "'tools.wmflabs.org' is not allowed", legacy_host=None)
    refused(obj, "is not allowed", legacy_host="toolsbeta.wmflabs.org")
    check_routing(legacy_route(("PathPrefix", "/foo/"), host="Tools.WMFLabs.org"), TOOL, DOMAINS, legacy_host=LEGACY)


@pytest.mark.parametrize(
    "redirect,fragment",
    [
        ({"path": {"type": "ReplaceFullPath", "replaceFullPath": "/foo/"}, "statusCode": 302}, None),
        ({"path": {"type": "ReplaceFullPath", "replaceFullPath": "/foo/"}, "scheme": "https"}, None),
        ({"hostname": "tools.wmflabs.org", "path": {"type": "ReplaceFullPath", "replaceFullPath": "/foo/"}}, None),
        ({"hostname": "evil.example"}, "leaves the legacy host"),
        ({"hostname": "foo.toolforge.org.evil.example"}, "leaves the legacy host"),
        ({"path": {"type": "ReplaceFullPath", "replaceFullPath": "/bar/"}}, "leaves /foo/"),
        ({"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}, "leaves /foo/"),
        ({"path": {"type": "ReplaceFullPath", "replaceFullPath": "/foo/../bar"}}, "leaves /foo/"),
    ],
    ids=str,
)
def test_legacy_route_redirects_stay_on_the_host_under_the_tool(redirect, fragment):
    obj = legacy_route(("PathPrefix", "/foo/"), redirect=redirect)
    if fragment is None:
        check_routing(obj, TOOL, DOMAINS, legacy_host=LEGACY)
        return
    refused(obj, fragment)
    assert reason_of(obj, legacy_host=LEGACY) == "redirect-not-allowed"


# --- the objects webservice builds pass ----------------------------------------------------------------

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def build(tmp_path, config: Config, type_name: str = "python3.11", tool_name: str = TOOL, project: str = "tools"):
    tool = Tool(name=tool_name, project=project, home=f"/data/project/{tool_name}", source="unix-user")
    spec = resolve_spec(
        tool=tool,
        config=config,
        catalogue=load_catalogue(tmp_path / "cache"),
        cli={"type": type_name},
        now=NOW,
    )
    return spec, build_routing(spec)


@pytest.mark.parametrize(
    "config",
    [
        Config(),
        Config(routing="httproute"),
        Config(routing="httproute", gateway_section="https"),
        Config(routing="legacy-path"),  # the Gateway form (the site routes with the Gateway)
        Config(routing="legacy-path", legacy_host="tools.example.org"),
        Config(routing="legacy-path", site_routing="ingress"),  # the Ingress forms
        Config(routing="legacy-path", legacy_snippets=True, site_routing="ingress"),
        Config(routing="legacy-path", legacy_host="tools.example.org", site_routing="ingress"),
        Config(public_domain="beta.toolforge.org"),
        Config(public_domain="beta.toolforge.org", routing="httproute"),
    ],
    ids=lambda c: f"{c.routing}-{c.site_routing}-{c.public_domain}-{c.legacy_snippets}-{c.legacy_host or 'default'}",
)
@pytest.mark.parametrize("tool_name", ["foo", "a", "my-tool", "x" * 58])
def test_built_routing_objects_pass(tmp_path, config, tool_name):
    spec, obj = build(tmp_path, config, tool_name=tool_name)
    check_routing(obj, tool_name, [config.public_domain], legacy_host=config.effective_legacy_host("tools"))
    # ...and the same object, retargeted at another tool, is refused
    with pytest.raises(AdmissionError):
        check_routing(obj, "other", [config.public_domain], legacy_host=config.effective_legacy_host("tools"))


def test_built_buildservice_routing_passes(tmp_path):
    _, obj = build(tmp_path, Config(), type_name="buildservice")
    check_routing(obj, TOOL, ["toolforge.org"], legacy_host="tools.wmflabs.org")


def test_built_ingress_tampered_is_refused(tmp_path):
    _, obj = build(tmp_path, Config(routing="ingress"))
    assert obj["kind"] == "Ingress"
    evil = copy.deepcopy(obj)
    evil["spec"]["rules"][0]["host"] += ".evil.example"
    refused(evil, "evil.example")
    evil = copy.deepcopy(obj)
    evil["spec"]["rules"].append({"host": "bar.toolforge.org"})
    refused(evil, "bar.toolforge.org")


def test_built_httproute_tampered_is_refused(tmp_path):
    _, obj = build(tmp_path, Config())
    assert obj["kind"] == "HTTPRoute"  # the default routing
    check_routing(obj, TOOL, ["toolforge.org"], legacy_host="tools.wmflabs.org")
    evil = copy.deepcopy(obj)
    evil["spec"]["hostnames"][0] += ".evil.example"
    refused(evil, "evil.example")
    evil = copy.deepcopy(obj)
    evil["spec"]["hostnames"].append("bar.toolforge.org")
    refused(evil, "bar.toolforge.org")


def test_built_legacy_route_passes_and_tampered_is_refused(tmp_path):
    spec, obj = build(tmp_path, Config(routing="legacy-path", legacy_host=LEGACY, site_legacy_host=LEGACY))
    assert (obj["kind"], obj["spec"]["hostnames"]) == ("HTTPRoute", [LEGACY])
    check_routing(obj, TOOL, ["toolforge.org"], legacy_host=LEGACY, gateways=["istio-gateway/toolforge"])
    refused(obj, "is not allowed", legacy_host=None)  # a site without legacy routing
    refused(obj, "outside /bar/", tool="bar")  # another tool's path
    for change, fragment in [
        (lambda o: o["spec"]["rules"][1]["matches"][0]["path"].update(value="/"), "legacy path '/'"),
        (lambda o: o["spec"]["rules"][1].pop("matches"), "has no matches"),
        (lambda o: o["spec"]["rules"][0]["filters"][0]["requestRedirect"].update(hostname="evil.example"),
         "leaves the legacy host"),
        (lambda o: o["spec"]["hostnames"].append("bar.toolforge.org"), "bar.toolforge.org"),
    ]:
        evil = copy.deepcopy(obj)
        change(evil)
        refused(evil, fragment)


def test_built_legacy_on_toolsbeta(tmp_path):
    spec, obj = build(tmp_path, Config(routing="legacy-path", site_routing="ingress"), project="toolsbeta")
    assert spec.legacy_host == "toolsbeta.wmflabs.org"
    check_routing(obj, TOOL, ["toolforge.org"], legacy_host="toolsbeta.wmflabs.org")
    refused(obj, legacy_host="tools.wmflabs.org")


# --- the options the webhook uses (one rule for both sides) ---------------------------------------------

from webservice.builders.admission import DEFAULT_GATEWAYS, REASONS, Policy  # noqa: E402


def reason_of(obj, **options) -> str:
    with pytest.raises(AdmissionError) as info:
        check_routing(obj, TOOL, DOMAINS, **options)
    assert info.value.reason in REASONS, info.value.reason
    return info.value.reason


@pytest.mark.parametrize("host", BAD_HOSTS, ids=repr)
def test_every_refused_host_has_a_reason_code(host):
    assert reason_of(ingress(host)) in {"host-not-allowed", "idn-host", "wildcard-host", "missing-host"}


def test_parents_are_checked_only_when_gateways_are_given():
    route = httproute("foo.toolforge.org")  # parent toolforge-gateway/toolforge
    check_routing(route, TOOL, DOMAINS)  # the client check, as before
    check_routing(route, TOOL, DOMAINS, gateways=["toolforge-gateway/toolforge"])
    check_routing(route, TOOL, DOMAINS, gateways=[("toolforge-gateway", "toolforge")])
    assert reason_of(route, gateways=["istio-gateway/toolforge"]) == "parent-not-allowed"


@pytest.mark.parametrize("gateway", ["toolforge", "/toolforge", "ns/", "a/b/c"])
def test_gateway_option_must_be_namespace_slash_name(gateway):
    with pytest.raises(ValueError, match="<namespace>/<name>"):
        Policy.from_options(DOMAINS, gateways=[gateway])


def test_default_gateway_is_todays_cluster():
    assert DEFAULT_GATEWAYS == (("istio-gateway", "toolforge"),)


def test_catch_all_tool_may_hold_the_wildcard_and_nobody_else():
    check_routing(ingress("*.toolforge.org"), TOOL, DOMAINS, catch_all_tool=TOOL)
    check_routing(httproute("*.TOOLFORGE.org"), TOOL, DOMAINS, catch_all_tool=TOOL)
    assert reason_of(ingress("*.toolforge.org"), catch_all_tool="fourohfour") == "wildcard-host"
    assert reason_of(ingress("*.example.org"), catch_all_tool=TOOL) == "wildcard-host"
    assert reason_of(ingress("*.toolforge.org."), catch_all_tool=TOOL) == "wildcard-host"
    obj = ingress("*.toolforge.org", default_backend=True)
    assert reason_of(obj, catch_all_tool=TOOL) == "default-backend"


def test_allow_legacy_false_ignores_the_legacy_host():
    obj = legacy(("/foo", "Prefix"))
    check_routing(obj, TOOL, DOMAINS, legacy_host=LEGACY)
    assert reason_of(obj, legacy_host=LEGACY, allow_legacy=False) == "host-not-allowed"


@pytest.mark.parametrize("key", ["nginx.ingress.kubernetes.io/configuration-snippet",
                                 "nginx.ingress.kubernetes.io/auth-snippet",
                                 "nginx.ingress.kubernetes.io/stream-snippet", "nginx.org/location-snippets",
                                 "Nginx.Ingress.Kubernetes.io/Server-Snippet"])
def test_any_snippet_annotation_is_refused(key):
    assert reason_of(ingress("foo.toolforge.org", annotations={key: "x"})) == "snippet-annotation"


def test_the_clients_own_legacy_snippet_only_on_the_legacy_host():
    snippet = {"nginx.ingress.kubernetes.io/configuration-snippet": "rewrite ^(/foo)$ $1/ redirect;"}
    obj = legacy(("/foo(/|$)(.*)", "ImplementationSpecific"))
    obj["metadata"]["annotations"] = snippet
    check_routing(obj, TOOL, DOMAINS, legacy_host=LEGACY)
    assert reason_of(obj, legacy_host=None) == "snippet-annotation"
    assert reason_of(ingress("foo.toolforge.org", annotations=snippet), legacy_host=LEGACY) == "snippet-annotation"
    other = dict(snippet, **{"nginx.ingress.kubernetes.io/configuration-snippet": "rewrite ^(/bar)$ $1/ redirect;"})
    obj["metadata"]["annotations"] = other
    assert reason_of(obj, legacy_host=LEGACY) == "snippet-annotation"


@pytest.mark.parametrize(
    "rule,reason",
    [
        ({"backendRefs": [{"name": "foo", "namespace": "tool-bar", "port": 8000}]}, "backend-not-allowed"),
        ({"backendRefs": [{"name": "foo", "kind": "Pod", "port": 8000}]}, "backend-not-allowed"),
        ({"backendRefs": [{"name": "foo", "group": "x.io", "port": 8000}]}, "backend-not-allowed"),
        ({"backendRefs": [{"port": 8000}]}, "backend-not-allowed"),
        ({"filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "x", "namespace": "y"}}}]},
         "mirror-not-allowed"),
        ({"filters": [{"type": "RequestMirror"}]}, "mirror-not-allowed"),
        ({"backendRefs": "foo"}, "malformed"),
        ({"filters": [{"type": "RequestMirror", "requestMirror": "x"}]}, "malformed"),
    ],
)
def test_httproute_backends_stay_in_the_namespace(rule, reason):
    obj = httproute("foo.toolforge.org")
    obj["spec"]["rules"] = [rule]
    assert reason_of(obj) == reason


def test_httproute_own_backends_and_mirror_pass():
    obj = httproute("foo.toolforge.org")
    obj["spec"]["rules"] = [{"backendRefs": [{"name": "foo", "namespace": "tool-foo", "port": 8000},
                                             {"group": "", "kind": "Service", "name": "foo2", "port": 80}],
                             "filters": [{"type": "RequestMirror",
                                          "requestMirror": {"backendRef": {"name": "shadow", "port": 80}}},
                                         {"type": "RequestHeaderModifier", "requestHeaderModifier": {}}]}]
    check_routing(obj, TOOL, DOMAINS)


@pytest.mark.parametrize("routing", ["ingress", "httproute", "legacy-path"])
def test_built_objects_pass_the_webhooks_policy(tmp_path, routing):
    """What webservice builds with the site's settings passes the webhook's stricter options."""
    config = Config(routing=routing, gateway_namespace="istio-gateway")
    _, obj = build(tmp_path, config)
    check_routing(obj, TOOL, ["toolforge.org"], legacy_host="tools.wmflabs.org", gateways=["istio-gateway/toolforge"],
                  catch_all_tool="fourohfour")
