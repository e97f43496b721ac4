"""The route admission webhook's Helm chart (``deploy/admission``) renders and is valid.

The chart is rendered by Helm's own template engine (``tests/helmrender.py``: Helm v4's
Go SDK from the pinned ``helm-python-sdk`` wheel, in a child process), for the default
values and a table of overrides. Every rendered object is validated against the strict
Kubernetes schemas of ``kubernetes-validate`` (unknown fields are errors) for the
versions Toolforge runs; cert-manager's Issuer and Certificate, CRDs without a schema
there, are checked field by field against cert-manager's v1 API. Then the invariants
an admin relies on: failurePolicy Fail, sideEffects None, 2+ replicas, a PDB and a
Service that select the pods, probes on ``/healthz`` over HTTPS, Toolforge's security
context, a certificate for the Service's DNS name that the webhook's CA injection and
the pods' volume both point at. The default render is a golden file
(``WEBSERVICE_UPDATE_GOLDEN=1`` rewrites it; review the diff).

Without ``helm-python-sdk`` (the Debian build) the rendering tests skip; the values
schema tests still run.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest
import yaml

import webservice
from tests import helmrender

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "admission"
GOLDEN = Path(__file__).resolve().parent / "golden" / "admission-chart.yaml"
RELEASE = {"name": "route-admission", "namespace": "route-admission"}
SYSTEM_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease"]
# Kubernetes 1.29 (the oldest with everything used here) to the newest the package ships;
# Toolforge runs 1.31-1.34
SCHEMA_VERSIONS = ["1.29", "1.31", "1.34", "newest"]

needs_helm = pytest.mark.skipif(not helmrender.available(), reason=f"Helm's engine needs {helmrender.REQUIREMENT}")


def _need_chart() -> None:
    if not (CHART / "Chart.yaml").exists():
        pytest.skip("deploy/admission is not in this tree (installed-package run)")


def _need_file(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is not in this tree")
    return path


def render(values: dict | None = None, **release) -> list[dict]:
    _need_chart()
    manifests = helmrender.render(CHART, values, **{**RELEASE, **release})
    docs = []
    for path in sorted(manifests):
        if path.endswith(".yaml"):
            docs.extend(doc for doc in yaml.safe_load_all(manifests[path]) if doc is not None)
    return docs


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str) -> dict:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def env_of(docs: list[dict]) -> dict[str, str]:
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


# --- value sets every rendering test runs over ----------------------------------------------

VARIANTS = {
    "default": ({}, {}),
    "replicas-3": ({"replicas": 3}, {}),
    "two-domains": ({"domains": ["toolforge.org", "toolforge.example"]}, {}),
    "exempt-namespaces": ({"exemptNamespaces": ["maintain-kubeusers", "tool-fourohfour"]}, {}),
    "cluster-issuer": ({"certManager": {"issuerRef": {"name": "cluster-ca", "kind": "ClusterIssuer"}}}, {}),
    # null, as in Helm a {} would be merged with the default labels
    "all-namespaces": ({"toolNamespaceLabels": None}, {}),
    "other-release": ({}, {"name": "webhook", "namespace": "ingress-admission"}),
    # Helm's longest release name (53) and the longest namespace (63)
    "long-names": ({}, {"name": "r" * 53, "namespace": "n" * 63}),
    "scheduling-extras": ({
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                         "effect": "NoSchedule"}],
        "image": {"repository": "registry.example/admission", "tag": "9.9.9",
                  "pullSecrets": [{"name": "regcred"}]},
        "podAnnotations": {"example.org/owner": "wmcs"},
        "legacyHost": "tools.wmflabs.org",
        "debug": True,
    }, {}),
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, tuple[list[dict], dict]]:
    """Each variant's rendered objects, and the release it was rendered as."""
    if not helmrender.available():
        pytest.skip(f"Helm's engine needs {helmrender.REQUIREMENT}")
    out = {}
    for key, (values, release) in VARIANTS.items():
        release = {**RELEASE, **release}
        out[key] = (render(values, **release), release)
    return out


# --- chart metadata and the values schema (no Helm needed) -----------------------------------


def test_chart_metadata_and_version():
    _need_chart()
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "webservice-admission"
    assert chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    assert chart["appVersion"] == webservice.__version__, "Chart.yaml appVersion and webservice/__init__.py differ"


def _schema_validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _default_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))


def _merge(base: dict, override: dict) -> dict:
    """Helm's merge of user values into the chart's: maps merge, null deletes a key."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict) and value:
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def test_default_values_satisfy_the_schema():
    _need_chart()
    validator = _schema_validator()
    errors = [e.message for e in validator.iter_errors(_default_values())]
    assert errors == []
    for key, (values, _) in VARIANTS.items():
        errors = [e.message for e in validator.iter_errors(_merge(_default_values(), values))]
        assert errors == [], key


def test_readme_documents_every_value():
    _need_chart()
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    keys = []
    for key, prop in schema["properties"].items():
        nested = prop.get("properties") if key not in ("podSecurityContext", "securityContext") else None
        keys.extend(f"{key}.{sub}" for sub in nested) if nested else keys.append(key)
    missing = [key for key in keys if f"`{key}`" not in readme]
    assert not missing, f"deploy/admission/README.md does not document {missing}"
    assert set(_default_values()) <= set(schema["properties"]), "values.yaml has keys the schema does not know"


# values an admin could write by mistake, and the value path the refusal must name
BAD_VALUES = [
    ({"replicas": 1}, "/replicas"),
    ({"replicas": "2"}, "/replicas"),
    ({"replica": 3}, "replica"),
    ({"domains": []}, "/domains"),
    ({"domains": ["toolforge.org."]}, "/domains/0"),
    ({"domains": ["*.toolforge.org"]}, "/domains/0"),
    ({"gateways": ["toolforge"]}, "/gateways/0"),
    ({"catchAllTool": "*"}, "/catchAllTool"),
    ({"exemptNamespaces": ["Kube-System"]}, "/exemptNamespaces/0"),
    ({"webhook": {"failurePolicy": "Never"}}, "/webhook/failurePolicy"),
    ({"webhook": {"timeoutSeconds": 31}}, "/webhook/timeoutSeconds"),
    ({"webhook": {"name": "admission"}}, "/webhook/name"),
    ({"certManager": {"issuerRef": {"name": "ca", "kind": "Secret"}}}, "/certManager/issuerRef/kind"),
    ({"certManager": {"duration": "90d"}}, "/certManager/duration"),
    ({"port": 443}, "/port"),
    ({"podSecurityContext": {"runAsUser": 0}}, "/podSecurityContext/runAsUser"),
    ({"podSecurityContext": {"runAsNonRoot": False}}, "/podSecurityContext/runAsNonRoot"),
    # the certificate Secret is mode 0440, readable through the fsGroup only
    ({"podSecurityContext": {"fsGroup": None}}, "/podSecurityContext"),
    ({"securityContext": {"privileged": True}}, "/securityContext/privileged"),
    ({"securityContext": {"allowPrivilegeEscalation": True}}, "/securityContext/allowPrivilegeEscalation"),
    ({"securityContext": {"readOnlyRootFilesystem": False}}, "/securityContext/readOnlyRootFilesystem"),
    ({"topologySpread": {"whenUnsatisfiable": "Sometimes"}}, "/topologySpread/whenUnsatisfiable"),
]


def _schema_path(error) -> str:
    path = "/" + "/".join(str(p) for p in error.absolute_path)
    return path if path != "/" else error.message


@pytest.mark.parametrize(("values", "where"), BAD_VALUES, ids=[w for _, w in BAD_VALUES])
def test_schema_refuses_bad_values(values, where):
    _need_chart()
    errors = list(_schema_validator().iter_errors(_merge(_default_values(), values)))
    assert errors, f"the schema accepted {values}"
    assert any(where in _schema_path(e) for e in errors), [(_schema_path(e), e.message) for e in errors]


@needs_helm
@pytest.mark.parametrize(("values", "where"), BAD_VALUES[:8], ids=[w for _, w in BAD_VALUES[:8]])
def test_helm_refuses_bad_values_with_the_value_path(values, where):
    """``helm install`` itself stops on bad values (the chart's values.schema.json)."""
    with pytest.raises(helmrender.HelmError) as raised:
        render(values)
    message = str(raised.value)
    assert "schema" in message
    assert where.lstrip("/") in message


# --- Helm's own checks ----------------------------------------------------------------------


@needs_helm
def test_the_helm_engine_is_the_pinned_one():
    from importlib.metadata import version

    requirements = _need_file(ROOT / ".ci" / "helm-requirements.txt").read_text(encoding="utf-8")
    (pin,) = re.findall(r"^helm-python-sdk==(\S+)", requirements, flags=re.M)
    assert version("helm-python-sdk") == pin, "the installed helm-python-sdk is not the one .ci/setup pins"
    assert re.fullmatch(r"v4\.\d+\.\d+", helmrender.version()), "Helm's engine is not Helm 4"


@needs_helm
def test_helm_lint_strict_finds_nothing_but_the_icon():
    _need_chart()
    findings = [f for f in helmrender.lint(CHART, namespace=RELEASE["namespace"])
                if not (f["severity"] == 1 and "icon" in f["error"])]
    assert findings == []


@needs_helm
def test_default_render_matches_golden(rendered):
    docs, _ = rendered["default"]
    text = yaml.safe_dump_all(docs, sort_keys=False)
    if os.environ.get("WEBSERVICE_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.exists(), f"missing golden file {GOLDEN}; run with WEBSERVICE_UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_text(encoding="utf-8"), f"the default render differs from {GOLDEN}"


@needs_helm
def test_render_makes_exactly_the_expected_objects(rendered):
    kinds = sorted(d["kind"] for d in rendered["default"][0])
    assert kinds == ["Certificate", "Certificate", "Deployment", "Issuer", "Issuer", "PodDisruptionBudget",
                     "Service", "ServiceAccount", "ValidatingWebhookConfiguration"]
    kinds = sorted(d["kind"] for d in rendered["cluster-issuer"][0])
    assert kinds == ["Certificate", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount",
                     "ValidatingWebhookConfiguration"]


# --- schemas --------------------------------------------------------------------------------

def _kubernetes_validate():
    return pytest.importorskip("kubernetes_validate", reason="the strict schemas are kubernetes-validate's")


@needs_helm
@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_objects_validate_against_kubernetes_schemas(rendered, variant, version):
    validate = _kubernetes_validate()
    if version == "newest":
        version = validate.latest_version() if hasattr(validate, "latest_version") else "1.34"
    docs, _ = rendered[variant]
    checked = 0
    for doc in docs:
        if doc["apiVersion"].startswith("cert-manager.io/"):
            continue  # CRDs: test_cert_manager_objects_use_only_cert_manager_fields
        validate.validate(doc, version, strict=True)
        checked += 1
    assert checked == 5


def test_strict_schema_check_is_real():
    """An unknown field in a webhook configuration is refused, so the check above can fail."""
    validate = _kubernetes_validate()
    bad = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
           "metadata": {"name": "x"},
           "webhooks": [{"name": "a.b.c", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                         "clientConfig": {"service": {"name": "s", "namespace": "n"}},
                         "failurePolicy": "Fail", "timeoutSecond": 5}]}
    with pytest.raises(validate.ValidationError):
        validate.validate(bad, "1.29", strict=True)


# cert-manager.io/v1 (cert-manager 1.x API reference): the fields this chart may use, by type
GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
ISSUER_REF = {"name": str, "kind": {"Issuer", "ClusterIssuer"}, "group": str}
CERTIFICATE_SPEC = {
    "secretName": str, "commonName": str, "dnsNames": [str], "isCA": bool,
    "duration": GO_DURATION, "renewBefore": GO_DURATION, "revisionHistoryLimit": int,
    "usages": [{"signing", "digital signature", "content commitment", "key encipherment", "key agreement",
                "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
                "server auth", "client auth", "code signing", "email protection", "s/mime",
                "ipsec end system", "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
                "microsoft sgc", "netscape sgc"}],
    "privateKey": {"algorithm": {"RSA", "ECDSA", "Ed25519"}, "size": int, "encoding": {"PKCS1", "PKCS8"},
                   "rotationPolicy": {"Never", "Always"}},
    "issuerRef": ISSUER_REF,
}
ISSUER_SPEC = {"selfSigned": {}, "ca": {"secretName": str}}
METADATA = {"name": str, "namespace": str, "labels": dict, "annotations": dict}


def _check_shape(value, shape, where: str) -> None:
    if isinstance(shape, dict):
        assert isinstance(value, dict), f"{where}: not a mapping"
        unknown = set(value) - set(shape)
        assert not unknown, f"{where}: fields cert-manager does not know: {sorted(unknown)}"
        for key, item in value.items():
            _check_shape(item, shape[key], f"{where}.{key}")
    elif isinstance(shape, list):
        assert isinstance(value, list) and value, f"{where}: not a non-empty list"
        for i, item in enumerate(value):
            _check_shape(item, shape[0], f"{where}[{i}]")
    elif isinstance(shape, set):
        assert value in shape, f"{where}: {value!r} is not one of {sorted(shape)}"
    elif isinstance(shape, re.Pattern):
        assert isinstance(value, str) and shape.match(value), f"{where}: {value!r} is not a Go duration"
    else:
        assert type(value) is shape, f"{where}: {value!r} is not {shape.__name__}"


@needs_helm
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cert_manager_objects_use_only_cert_manager_fields(rendered, variant):
    docs, release = rendered[variant]
    for doc in docs:
        if not doc["apiVersion"].startswith("cert-manager.io/"):
            continue
        where = f"{doc['kind']} {doc['metadata']['name']}"
        assert doc["apiVersion"] == "cert-manager.io/v1"
        assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}, where
        _check_shape(doc["metadata"], METADATA, f"{where} metadata")
        assert doc["metadata"]["namespace"] == release["namespace"]
        spec = doc["spec"]
        if doc["kind"] == "Certificate":
            _check_shape(spec, CERTIFICATE_SPEC, f"{where} spec")
            assert spec["secretName"] and spec["issuerRef"]["name"], f"{where}: secretName and issuerRef are required"
            if spec["privateKey"]["algorithm"] == "ECDSA":
                assert spec["privateKey"]["size"] in (256, 384, 521)
        else:
            assert doc["kind"] == "Issuer", where
            _check_shape(spec, ISSUER_SPEC, f"{where} spec")
            assert len(spec) == 1, f"{where}: an Issuer has exactly one type"


def test_cert_manager_shape_check_is_real():
    with pytest.raises(AssertionError, match="does not know"):
        _check_shape({"secretName": "x", "dnsName": ["a"]}, CERTIFICATE_SPEC, "Certificate spec")
    with pytest.raises(AssertionError, match="Go duration"):
        _check_shape({"duration": "90d"}, CERTIFICATE_SPEC, "Certificate spec")
    with pytest.raises(AssertionError, match="not one of"):
        _check_shape({"usages": ["server-auth"]}, CERTIFICATE_SPEC, "Certificate spec")


# --- invariants, for every variant -----------------------------------------------------------


def _pod(docs):
    return one(docs, "Deployment")["spec"]["template"]


def _selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@needs_helm
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_webhook_configuration_invariants(rendered, variant):
    docs, release = rendered[variant]
    vwc = one(docs, "ValidatingWebhookConfiguration")
    assert "namespace" not in vwc["metadata"]  # cluster-scoped
    (hook,) = vwc["webhooks"]
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["failurePolicy"] == "Fail"
    assert hook["sideEffects"] == "None"
    assert 1 <= hook["timeoutSeconds"] <= 10
    assert hook["matchPolicy"] == "Equivalent"
    assert len(hook["name"].split(".")) >= 3
    assert hook["rules"] == [
        {"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"], "resources": ["ingresses"],
         "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"},
        {"apiGroups": ["gateway.networking.k8s.io"], "apiVersions": ["v1", "v1beta1"], "resources": ["httproutes"],
         "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"},
    ]
    # the path the old ValidatingWebhookConfiguration used, to the chart's Service on 443
    service = one(docs, "Service")
    assert hook["clientConfig"] == {"service": {"name": service["metadata"]["name"],
                                                "namespace": release["namespace"], "path": "/", "port": 443}}
    # never called for the system namespaces or its own (a webhook that reviews its own
    # namespace can lock itself out)
    (expression,) = hook["namespaceSelector"]["matchExpressions"]
    assert expression["key"] == "kubernetes.io/metadata.name" and expression["operator"] == "NotIn"
    for namespace in SYSTEM_NAMESPACES + [release["namespace"]]:
        assert namespace in expression["values"]
    # cert-manager injects the CA of the serving certificate, which covers the Service's name
    namespace, name = vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].split("/")
    assert namespace == release["namespace"]
    certificate = next(c for c in by_kind(docs, "Certificate") if c["metadata"]["name"] == name)
    assert f"{service['metadata']['name']}.{release['namespace']}.svc" in certificate["spec"]["dnsNames"]
    assert "server auth" in certificate["spec"]["usages"]
    assert not certificate["spec"].get("isCA")


@needs_helm
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_deployment_pdb_service_invariants(rendered, variant):
    docs, release = rendered[variant]
    for doc in docs:
        if doc["kind"] != "ValidatingWebhookConfiguration":
            assert doc["metadata"]["namespace"] == release["namespace"], doc["kind"]
        # names are DNS labels for Services, label values for everything
        assert len(doc["metadata"]["name"]) <= 63, doc["metadata"]["name"]
        assert all(len(v) <= 63 for v in doc["metadata"]["labels"].values()), doc["metadata"]["labels"]
    deployment = one(docs, "Deployment")
    pod = _pod(docs)
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert _selects(deployment["spec"]["selector"]["matchLabels"], labels)

    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert _selects(pdb["spec"]["selector"]["matchLabels"], labels)

    service = one(docs, "Service")
    assert _selects(service["spec"]["selector"], labels)
    (container,) = pod["spec"]["containers"]
    (port,) = service["spec"]["ports"]
    (container_port,) = container["ports"]
    assert port["port"] == 443 and port["targetPort"] == container_port["name"] == "https"
    assert env_of(docs)["LISTENON"] == f":{container_port['containerPort']}"

    # the replicas are spread over nodes
    (spread,) = pod["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert _selects(spread["labelSelector"]["matchLabels"], labels)
    (term,) = pod["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert _selects(term["podAffinityTerm"]["labelSelector"]["matchLabels"], labels)

    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}, probe
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


@needs_helm
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_security_context_of_todays_toolforge(rendered, variant):
    docs, _ = rendered[variant]
    pod = _pod(docs)["spec"]
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] > 0 and context["runAsGroup"] > 0 and context["fsGroup"] > 0
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(field)
    assert pod["automountServiceAccountToken"] is False
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["privileged"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert all("hostPath" not in volume for volume in pod["volumes"])


@needs_helm
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_certificate_reaches_the_server(rendered, variant):
    """The pods mount the Secret cert-manager writes, and TLSCERT/TLSKEY point into it."""
    docs, _ = rendered[variant]
    pod = _pod(docs)["spec"]
    (container,) = pod["containers"]
    env = env_of(docs)
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "certs"]
    assert "subPath" not in mount, "a subPath mount never sees cert-manager's renewals"
    assert mount["readOnly"] is True
    assert env["TLSCERT"] == f"{mount['mountPath']}/tls.crt"
    assert env["TLSKEY"] == f"{mount['mountPath']}/tls.key"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "certs"]
    serving = [c for c in by_kind(docs, "Certificate") if not c["spec"].get("isCA")]
    assert [c["spec"]["secretName"] for c in serving] == [volume["secret"]["secretName"]]


@needs_helm
def test_self_signed_ca_chain_is_consistent(rendered):
    docs, _ = rendered["default"]
    issuers = {i["metadata"]["name"]: i["spec"] for i in by_kind(docs, "Issuer")}
    certificates = {c["metadata"]["name"]: c["spec"] for c in by_kind(docs, "Certificate")}
    (ca_name,) = [n for n, c in certificates.items() if c.get("isCA")]
    ca = certificates[ca_name]
    assert issuers[ca["issuerRef"]["name"]] == {"selfSigned": {}}
    (serving,) = [c for c in certificates.values() if not c.get("isCA")]
    assert serving["issuerRef"]["kind"] == "Issuer"
    assert issuers[serving["issuerRef"]["name"]] == {"ca": {"secretName": ca["secretName"]}}


# --- values change the output -----------------------------------------------------------------


@needs_helm
def test_overrides_change_the_rendered_objects(rendered):
    default, _ = rendered["default"]
    assert one(default, "Deployment")["spec"]["replicas"] == 2
    assert one(rendered["replicas-3"][0], "Deployment")["spec"]["replicas"] == 3

    assert env_of(default)["DOMAINS"] == "toolforge.org"
    assert env_of(rendered["two-domains"][0])["DOMAINS"] == "toolforge.org,toolforge.example"

    def excluded(docs):
        hook = one(docs, "ValidatingWebhookConfiguration")["webhooks"][0]
        return hook["namespaceSelector"]["matchExpressions"][0]["values"]

    assert excluded(default) == SYSTEM_NAMESPACES + ["route-admission"]
    extra = SYSTEM_NAMESPACES + ["route-admission", "maintain-kubeusers", "tool-fourohfour"]
    assert excluded(rendered["exempt-namespaces"][0]) == extra
    assert env_of(rendered["exempt-namespaces"][0])["EXEMPTNAMESPACES"] == ",".join(extra)

    hook = one(default, "ValidatingWebhookConfiguration")["webhooks"][0]
    assert hook["namespaceSelector"]["matchLabels"] == {"tenancy": "tool"}
    hook = one(rendered["all-namespaces"][0], "ValidatingWebhookConfiguration")["webhooks"][0]
    assert "matchLabels" not in hook["namespaceSelector"]

    (certificate,) = by_kind(rendered["cluster-issuer"][0], "Certificate")
    assert certificate["spec"]["issuerRef"] == {"name": "cluster-ca", "kind": "ClusterIssuer",
                                                "group": "cert-manager.io"}
    assert by_kind(rendered["cluster-issuer"][0], "Issuer") == []

    other, _ = rendered["other-release"]
    assert one(other, "Service")["metadata"]["name"] == "webhook"
    assert one(other, "ValidatingWebhookConfiguration")["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": "ingress-admission/webhook"}
    assert "webhook.ingress-admission.svc" in one(
        [c for c in by_kind(other, "Certificate") if not c["spec"].get("isCA")], "Certificate")["spec"]["dnsNames"]

    extras, _ = rendered["scheduling-extras"]
    pod = _pod(extras)
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["spec"]["containers"][0]["image"] == "registry.example/admission:9.9.9"
    assert pod["metadata"]["annotations"] == {"example.org/owner": "wmcs"}
    assert env_of(extras)["LEGACYHOST"] == "tools.wmflabs.org"
    assert env_of(extras)["DEBUG"] == "true"


@needs_helm
def test_default_environment_is_the_old_webhooks_plus_the_new_settings(rendered):
    """LISTENON, TLSCERT, TLSKEY, DOMAINS and DEBUG as the old webhook read them."""
    docs, _ = rendered["default"]
    env = env_of(docs)
    assert env == {
        "LISTENON": ":8443",
        "TLSCERT": "/etc/webhook/certs/tls.crt",
        "TLSKEY": "/etc/webhook/certs/tls.key",
        "DOMAINS": "toolforge.org",
        "GATEWAYS": "istio-gateway/toolforge",
        "CATCHALLTOOL": "fourohfour",
        "LEGACYHOST": "",
        "EXEMPTNAMESPACES": "kube-system,kube-public,kube-node-lease,route-admission",
        "DEBUG": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    container = _pod(docs)["spec"]["containers"][0]
    assert container["command"] == ["webservice-admission", "serve"]
    assert container["image"].endswith(f":{webservice.__version__}")


@needs_helm
def test_the_server_reads_every_variable_the_chart_sets(rendered):
    """The chart and webservice.webhook agree on the environment (an interface check)."""
    import importlib.util

    spec = importlib.util.find_spec("webservice.webhook")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("webservice.webhook (the webhook server) is not in this tree")
    source = "\n".join(path.read_text(encoding="utf-8")
                       for location in spec.submodule_search_locations
                       for path in sorted(Path(location).rglob("*.py")))
    variables = set(env_of(rendered["default"][0])) - {"PYTHONDONTWRITEBYTECODE"}
    unread = sorted(v for v in variables if not re.search(rf"""["']{v}["']""", source))
    assert not unread, f"the chart sets variables webservice.webhook never reads: {unread}"


@needs_helm
@pytest.mark.parametrize(("values", "scope"), [({}, 'a namespace labelled\n{"tenancy":"tool"}'),
                                               ({"toolNamespaceLabels": None}, "any namespace")])
def test_notes_tell_the_admin_what_is_reviewed(values, scope):
    _need_chart()
    manifests = helmrender.render(CHART, values, **RELEASE)
    (notes,) = [text for path, text in manifests.items() if path.endswith("NOTES.txt")]
    assert scope in notes
    assert "route-admission.toolforge.org" in notes and "kube-system" in notes
    assert "kubectl -n route-admission get pods,certificate,pdb" in notes
