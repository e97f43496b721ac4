"""The objects webservice builds: pinned by golden files, valid against strict schemas.

Every combination the code can produce (each type, each routing mode, resource and
probe options, build-service images, the shell pod) is built from a resolved spec and
compared with ``tests/golden/<case>.yaml``. Regenerate after an intended change with
``WEBSERVICE_UPDATE_GOLDEN=1 python -m pytest tests/test_objects.py`` and review the diff.
Each object is also validated with ``kubernetes-validate`` (strict: unknown fields are
errors) for Kubernetes 1.29 and the newest version the package ships.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from webservice.builders import objects
from webservice.model.catalogue import load_catalogue
from webservice.model.config import Config
from webservice.model.spec import resolve_spec
from webservice.model.tool import Tool

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=timezone.utc)
TOOL = Tool(name="mytool", project="tools", home="/data/project/mytool", source="override", uid=52503, gid=52503)


def make_spec(tmp_path, config: Config | None = None, template=None, manifest=None, **cli):
    catalogue = load_catalogue(tmp_path / "cache")
    return resolve_spec(
        tool=TOOL,
        config=config or Config(),
        catalogue=catalogue,
        cli=cli,
        template=template,
        manifest=manifest,
        now=NOW,
    )


CASES = {
    "python3.11-default": ({"type": "python3.11"}, {}),
    "php8.2-default": ({"type": "php8.2"}, {}),
    "php7.4-deprecated": ({"type": "php7.4"}, {}),
    "node18-default": ({"type": "node18"}, {}),
    "jdk17-profile": ({"type": "jdk17", "extra_args": ["java", "-jar", "app.jar"]}, {}),
    "golang-generic": ({"type": "golang1.11", "extra_args": ["./server", "--port", "8000"]}, {}),
    "python3.11-resources": ({"type": "python3.11", "cpu": "0.5", "mem": "1.5Gi", "replicas": 2}, {}),
    "python3.11-small": ({"type": "python3.11", "cpu": "100m", "mem": "128Mi"}, {}),
    "python3.11-health": ({"type": "python3.11", "health_check_path": "/healthz"}, {}),
    "python3.11-extra-args": ({"type": "python3.11", "extra_args": ["--processes", "4"]}, {}),
    "python3.11-ingress": ({"type": "python3.11"}, {"routing": "ingress"}),
    "python3.11-ingress-class": ({"type": "python3.11"}, {"routing": "ingress", "ingress_class": "istio"}),
    # legacy path routing where the site runs an ingress controller (its own routing: ingress)
    "python3.11-legacy-path": ({"type": "python3.11"}, {"routing": "legacy-path", "site_routing": "ingress"}),
    "python3.11-legacy-snippets": ({"type": "python3.11"}, {"routing": "legacy-path", "legacy_snippets": True,
                                                            "site_routing": "ingress"}),
    # ...and under the Gateway, on a site whose config names its legacy host
    "python3.11-legacy-gateway": ({"type": "python3.11"}, {"routing": "legacy-path", "legacy_host": "tools.wmflabs.org",
                                                           "site_legacy_host": "tools.wmflabs.org"}),
    "python3.11-httproute": ({"type": "python3.11"}, {"routing": "httproute"}),
    "python3.11-httproute-section": ({"type": "python3.11"}, {"routing": "httproute", "gateway_section": "https"}),
    "python3.11-beta": ({"type": "python3.11"}, {"public_domain": "beta.toolforge.org"}),
    "buildservice-default": ({"type": "buildservice"}, {}),
    "buildservice-image": ({"type": "buildservice", "buildservice_image": "tool-mytool/web:v2"}, {}),
    "buildservice-command": ({"type": "buildservice", "extra_args": ["web"], "mount": "none"}, {}),
}


def _build(tmp_path, name):
    cli, config = CASES[name]
    spec = make_spec(tmp_path, Config(**config), **cli)
    return objects.build_all(spec)


def update_golden_requested(environ) -> bool:
    """Whether to rewrite the goldens: only by hand, never in CI (a golden that rewrites
    itself in CI could not fail)."""
    if not environ.get("WEBSERVICE_UPDATE_GOLDEN"):
        return False
    if environ.get("CI"):
        pytest.fail("WEBSERVICE_UPDATE_GOLDEN is refused when CI is set: goldens are reviewed by hand")
    return True


@pytest.mark.parametrize("environ,expected", [
    ({}, False),
    ({"CI": "1"}, False),
    ({"WEBSERVICE_UPDATE_GOLDEN": "1"}, True),
])
def test_golden_update_switch(environ, expected):
    assert update_golden_requested(environ) is expected


def test_golden_update_is_refused_in_ci():
    with pytest.raises(pytest.fail.Exception, match="refused when CI is set"):
        update_golden_requested({"WEBSERVICE_UPDATE_GOLDEN": "1", "CI": "true"})


def _check_golden(name: str, docs: list[dict]) -> None:
    text = yaml.safe_dump_all(docs, sort_keys=False)
    path = GOLDEN / f"{name}.yaml"
    if update_golden_requested(os.environ):
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with WEBSERVICE_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from {path}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(tmp_path, name):
    _check_golden(name, _build(tmp_path, name))


def test_shell_pod_golden(tmp_path):
    spec = make_spec(tmp_path, type="python3.11", cpu="1", mem="2Gi")
    pods = [
        objects.build_shell_pod(spec, "shell-abc123"),
        objects.build_shell_pod(spec, "shell-def456", ["sh", "-c", "exit 7"], tty=False),
    ]
    _check_golden("shell-pod", pods)


kubernetes_validate = pytest.importorskip("kubernetes_validate")
SCHEMA_VERSIONS = ["1.29", kubernetes_validate.latest_version()] if hasattr(kubernetes_validate, "latest_version") else ["1.29"]


def _all_objects(tmp_path):
    for name in sorted(CASES):
        for obj in _build(tmp_path, name):
            yield name, obj
    spec = make_spec(tmp_path, type="python3.11")
    yield "shell", objects.build_shell_pod(spec, "shell-abc123")


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_objects_validate_against_strict_schemas(tmp_path, version):
    checked = 0
    for name, obj in _all_objects(tmp_path):
        if obj["kind"] == "HTTPRoute":  # a CRD: no schema in kubernetes-validate; see below
            continue
        kubernetes_validate.validate(obj, version, strict=True)
        checked += 1
    assert checked >= 2 * len(CASES) + 4  # Deployment and Service of each case, 4 Ingress cases


def test_strict_schema_catches_unknown_fields():
    """The schema check is real: an unknown field is refused."""
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"portz": []}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.29", strict=True)


def test_httproute_shape(tmp_path):
    """HTTPRoute has no schema in kubernetes-validate: check the Gateway API v1 shape, which
    is the default routing and the form jobs-api publishes (REFERENCE 8)."""
    spec = make_spec(tmp_path, Config(), type="python3.11")
    route = objects.build_routing(spec)
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["kind"] == "HTTPRoute" and route["metadata"]["name"] == "mytool"
    assert set(route["spec"]) == {"parentRefs", "hostnames", "rules"}
    assert route["spec"]["parentRefs"] == [{"name": "toolforge", "namespace": "istio-gateway"}]
    assert route["spec"]["hostnames"] == ["mytool.toolforge.org"]
    (rule,) = route["spec"]["rules"]
    assert rule == {"backendRefs": [{"name": "mytool", "port": 8000}]}  # no matches: all paths
    assert route["metadata"]["labels"] == objects.labels("mytool")
    section = make_spec(tmp_path, Config(gateway_section="http", gateway_name="gw", gateway_namespace="gw-ns"),
                        type="python3.11")
    assert objects.build_routing(section)["spec"]["parentRefs"] == [
        {"name": "gw", "namespace": "gw-ns", "sectionName": "http"}]


def test_ingress_class_only_when_configured(tmp_path):
    plain = objects.build_routing(make_spec(tmp_path, Config(routing="ingress"), type="python3.11"))
    assert plain["kind"] == "Ingress" and "ingressClassName" not in plain["spec"]
    for routing in ("ingress", "legacy-path"):
        classed = objects.build_routing(make_spec(tmp_path, Config(routing=routing, ingress_class="istio",
                                                                   site_routing="ingress"), type="python3.11"))
        assert classed["kind"] == "Ingress" and classed["spec"]["ingressClassName"] == "istio"


def test_reference_section_2_facts(tmp_path):
    """The conventions of REFERENCE section 2, spelled out rather than only pinned."""
    spec = make_spec(tmp_path, Config(routing="ingress"), type="php8.2", replicas=3)
    deployment, service, ingress = objects.build_all(spec)
    four = {
        "toolforge": "tool",
        "name": "mytool",
        "app.kubernetes.io/component": "web",
        "app.kubernetes.io/managed-by": "webservice",
    }
    for obj in (deployment, service, ingress):
        assert obj["metadata"]["labels"] == four
        assert obj["metadata"]["namespace"] == "tool-mytool"
    assert deployment["metadata"]["name"] == "mytool"
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["selector"]["matchLabels"] == four
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"] == {"toolforge.org/started-at": "2026-11-26T10:00:00Z"}
    (container,) = template["spec"]["containers"]
    assert container["name"] == "webservice"
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["workingDir"] == "/data/project/mytool/"
    assert container["command"] == ["/usr/bin/webservice-runner", "--type", "lighttpd", "--port", "8000"]
    assert container["image"].endswith("toolforge-php82-sssd-web:latest")
    assert container["resources"] == {
        "limits": {"cpu": "500m", "memory": "512Mi"},
        # REFERENCE 5 gives the old default request 0.125; issue 13 asks that the default follow
        # the rule of --cpu (request = limit / 2), so that 'start' and 'start --cpu 0.5' agree
        "requests": {"cpu": "250m", "memory": "256Mi"},
    }
    assert service["metadata"]["name"] == "mytool"
    assert service["spec"] == {
        "selector": {"name": "mytool"},
        "ports": [{"name": "http", "protocol": "TCP", "port": 8000, "targetPort": 8000}],
    }
    assert ingress["metadata"]["name"] == "mytool-subdomain"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "mytool.toolforge.org"
    assert rule["http"]["paths"] == [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "mytool", "port": {"number": 8000}}}}
    ]
    assert "tls" not in ingress["spec"]


def test_resources_rule(tmp_path):
    """--mem M: limit M, request M/2 (M itself below 256Mi); --cpu likewise with 250m."""
    big = objects.resources(make_spec(tmp_path, type="python3.11", cpu="0.5", mem="1.5Gi"))
    assert big == {"limits": {"cpu": "500m", "memory": "1536Mi"}, "requests": {"cpu": "250m", "memory": "768Mi"}}
    small = objects.resources(make_spec(tmp_path, type="python3.11", cpu="200m", mem="200Mi"))
    assert small == {"limits": {"cpu": "200m", "memory": "200Mi"}, "requests": {"cpu": "200m", "memory": "200Mi"}}
    jdk = objects.resources(make_spec(tmp_path, type="jdk17", extra_args=["java"]))
    assert jdk["limits"]["memory"] == "1Gi"


def test_buildservice_container(tmp_path):
    spec = make_spec(tmp_path, type="buildservice")
    (container,) = objects.build_deployment(spec)["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "tools-harbor.wmcloud.org/tool-mytool/tool-mytool:latest"
    assert "command" not in container and "workingDir" not in container
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["PORT"] == "8000" and "NO_HOME" in env
    with_args = make_spec(tmp_path, type="buildservice", extra_args=["web", "--fast"])
    (container,) = objects.build_deployment(with_args)["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["web", "--fast"]


def test_probes(tmp_path):
    tcp = objects.build_deployment(make_spec(tmp_path, type="python3.11"))
    http = objects.build_deployment(make_spec(tmp_path, type="python3.11", health_check_path="/ok"))
    (plain,) = tcp["spec"]["template"]["spec"]["containers"]
    (checked,) = http["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert plain[probe]["tcpSocket"] == {"port": 8000}
        assert checked[probe]["httpGet"] == {"path": "/ok", "port": 8000}
    # separate dicts, so that --dry-run YAML has no anchors/aliases
    assert plain["startupProbe"]["tcpSocket"] is not plain["readinessProbe"]["tcpSocket"]


def test_legacy_path_forms(tmp_path):
    snippet = objects.build_routing(make_spec(tmp_path, Config(routing="legacy-path", legacy_snippets=True,
                                                               site_routing="ingress"), type="python3.11"))
    plain = objects.build_routing(make_spec(tmp_path, Config(routing="legacy-path", site_routing="ingress"),
                                            type="python3.11"))
    assert snippet["spec"]["rules"][0]["host"] == plain["spec"]["rules"][0]["host"] == "tools.wmflabs.org"
    annotations = snippet["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/rewrite-target"] == "/mytool/$2"
    assert "rewrite ^(/mytool)$ $1/ redirect;" in annotations["nginx.ingress.kubernetes.io/configuration-snippet"]
    assert snippet["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/mytool(/|$)(.*)"
    assert "annotations" not in plain["metadata"]
    assert plain["spec"]["rules"][0]["http"]["paths"][0] == {
        "path": "/mytool", "pathType": "Prefix", "backend": {"service": {"name": "mytool", "port": {"number": 8000}}}
    }
    deployment = objects.build_deployment(make_spec(tmp_path, Config(routing="legacy-path"), type="python3.11"))
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "WEBSERVICE_PATH_PREFIX", "value": "/mytool"} in env


@pytest.mark.parametrize("site_routing,kind", [("httproute", "HTTPRoute"), ("ingress", "Ingress"),
                                               ("legacy-path", "Ingress")])
def test_legacy_path_kind_follows_the_sites_own_routing(tmp_path, site_routing, kind):
    """The Gateway form where the site routes with the Gateway, the Ingress form where it runs
    an ingress controller; a user's --routing or config never changes which."""
    config = Config(routing="legacy-path", site_routing=site_routing, site_legacy_host="tools.wmflabs.org")
    route = objects.build_routing(make_spec(tmp_path, config, type="python3.11"))
    assert (route["kind"], route["metadata"]["name"]) == (kind, "mytool-legacy")


def test_legacy_httproute_shape(tmp_path):
    """HTTPRoute has no schema in kubernetes-validate: the Gateway API v1 shape of the legacy
    form, spelled out (REFERENCE 2: /<tool> redirects to /<tool>/, /<tool>/x reaches the app as
    /<tool>/x)."""
    config = Config(routing="legacy-path", legacy_host="tools.wmflabs.org", site_legacy_host="tools.wmflabs.org",
                    gateway_section="http")
    spec = make_spec(tmp_path, config, type="python3.11")
    route = objects.build_routing(spec)
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1" and route["kind"] == "HTTPRoute"
    assert route["metadata"]["labels"] == objects.labels("mytool")
    assert route["spec"]["parentRefs"] == [objects.parent_ref(spec)] == [
        {"name": "toolforge", "namespace": "istio-gateway", "sectionName": "http"}]
    assert route["spec"]["hostnames"] == ["tools.wmflabs.org"]
    redirect, serve = route["spec"]["rules"]
    assert redirect == {"matches": [{"path": {"type": "Exact", "value": "/mytool"}}],
                        "filters": [{"type": "RequestRedirect", "requestRedirect": {
                            "path": {"type": "ReplaceFullPath", "replaceFullPath": "/mytool/"}, "statusCode": 302}}]}
    assert "backendRefs" not in redirect  # the CRD refuses a redirect rule with backends
    assert serve == {"matches": [{"path": {"type": "PathPrefix", "value": "/mytool/"}}],
                     "backendRefs": [{"name": "mytool", "port": 8000}]}  # no URLRewrite: the prefix is kept
    env = objects.build_deployment(spec)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "WEBSERVICE_PATH_PREFIX", "value": "/mytool"} in env
    assert spec.url == "https://tools.wmflabs.org/mytool/"


def test_builders_are_pure(tmp_path):
    spec = make_spec(tmp_path, type="python3.11")
    assert objects.build_all(spec) == objects.build_all(spec)
    first = objects.build_all(spec)
    first[0]["metadata"]["labels"]["x"] = "y"
    assert "x" not in objects.build_all(spec)[0]["metadata"]["labels"]


@pytest.mark.parametrize("option", [[], ["--cpu", "0.5"], ["--cpu", "500m"]])
def test_default_cpu_request_follows_the_rule_of_the_cpu_option(option, tmp_path, monkeypatch):
    from webservice.ui.cli import main

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WEBSERVICE_TOOL", "mytool")
    import io
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main(["--dry-run", "python3.11", "start", *option])
    assert done.value.code == 0
    deployment = next(d for d in yaml.safe_load_all(out.getvalue()) if d and d["kind"] == "Deployment")
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}}
# --- what a start stores in service.manifest (issue 16 defect 5, mutations) ----------------------

MANIFEST_VALUES = [
    # (id, cli, template, manifest, expected manifest values that are not None)
    ("type only", {"type": "php8.2"}, None, None, {"web": "php8.2", "backend": "kubernetes"}),
    ("template values are not stored", {},
     {"type": "python3.11", "cpu": "1", "mem": "1Gi", "replicas": 2, "extra_args": ["--x"],
      "health_check_path": "/healthz"}, None,
     {"web": "python3.11", "backend": "kubernetes"}),
    ("command line values are stored", {"type": "python3.11", "cpu": "1", "mem": "1Gi", "replicas": 2,
                                        "extra_args": ["--x"], "health_check_path": "/healthz"}, None, None,
     {"web": "python3.11", "backend": "kubernetes", "cpu": "1", "memory": "1Gi", "replicas": 2,
      "web::extra_args": ["--x"], "health-check-path": "/healthz"}),
    ("stored values carry over", {}, None,
     {"version": 4, "web": "python3.11", "cpu": "1", "replicas": 3},
     {"web": "python3.11", "backend": "kubernetes", "cpu": "1", "replicas": 3}),
    ("template beats and drops a stored value", {}, {"cpu": "2"},
     {"version": 4, "web": "python3.11", "cpu": "1"}, {"web": "python3.11", "backend": "kubernetes"}),
    ("default mount is never stored", {"type": "python3.11", "mount": "all"}, None, None,
     {"web": "python3.11", "backend": "kubernetes"}),
    ("mount none from the command line is stored", {"type": "buildservice", "mount": "none"}, None, None,
     {"web": "buildservice", "backend": "kubernetes", "mount": "none"}),
    ("mount none from the template is not", {"type": "buildservice"}, {"mount": "none"}, None,
     {"web": "buildservice", "backend": "kubernetes"}),
    ("0.98 image for php is dropped", {}, None,
     {"version": 4, "web": "php7.4", "buildservice-image": "tool-mytool/tool-mytool:latest", "backend": "gridengine"},
     {"web": "php7.4", "backend": "kubernetes"}),
    ("buildservice image given is stored", {"type": "buildservice", "buildservice_image": "tool-mytool/web:v2"},
     None, None, {"web": "buildservice", "backend": "kubernetes", "buildservice-image": "tool-mytool/web:v2"}),
]


@pytest.mark.parametrize("cli,template,manifest,expected", [c[1:] for c in MANIFEST_VALUES],
                         ids=[c[0] for c in MANIFEST_VALUES])
def test_manifest_keeps_only_command_line_values_and_the_type(tmp_path, cli, template, manifest, expected):
    spec = make_spec(tmp_path, template=template, manifest=manifest, **cli)
    stored = {k: v for k, v in spec.manifest_values().items() if v is not None}
    assert stored == expected


def test_a_key_removed_from_the_template_stops_applying(tmp_path):
    first = make_spec(tmp_path, template={"type": "python3.11", "mem": "2Gi"})
    assert first.mem_limit == 2 * 2**30
    manifest = {"version": 4, **{k: v for k, v in first.manifest_values().items() if v is not None}}
    second = make_spec(tmp_path, template={"type": "python3.11"}, manifest=manifest)  # mem: removed
    assert second.mem_limit == 512 * 2**20  # back to the default, not the old template's 2Gi
