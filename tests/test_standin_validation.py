"""What the stand-in refuses, with the real API server's status codes, reasons and
message shapes: decoding errors (400), validation (422), admission (403 LimitRange and
ResourceQuota, the Toolforge ingress webhook), authorisation (403)."""

from __future__ import annotations

import copy

import pytest

from tests.standin import validation

NS = "tool-mytool"
IMAGE = "docker-registry.tools.wmflabs.org/toolforge-python311-sssd-web:latest"
LABELS = {"toolforge": "tool", "name": "mytool"}


def pod(name="p", **resources):
    c = {"name": "webservice", "image": IMAGE}
    if resources:
        c["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [c]}}


def deployment(name="mytool"):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": LABELS},
            "spec": {"replicas": 1, "selector": {"matchLabels": LABELS},
                     "template": {"metadata": {"labels": LABELS},
                                  "spec": {"containers": [{"name": "webservice", "image": IMAGE}]}}}}


def ingress(host="mytool.toolforge.org"):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "mytool-subdomain", "labels": LABELS},
            "spec": {"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                "service": {"name": "mytool", "port": {"number": 8000}}}}]}}]}}


DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
needs_schemas = pytest.mark.skipif(not validation.schemas_available(),
                                   reason="strict schemas need kubernetes-validate (not in Debian)")
PODS = f"/api/v1/namespaces/{NS}/pods"
INGRESSES = f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses"


@needs_schemas
def test_unknown_field_is_a_strict_decoding_error(standin):
    body = deployment()
    body["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    body["spec"]["bogus"] = 1
    code, _, status = standin.http("POST", DEPLOYMENTS, body)
    assert code == 400 and status["reason"] == "BadRequest"
    assert status["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.bogus", unknown field "spec.template.spec.containers[0].readinessprobe"')
    assert standin.get("Deployment", NS, "mytool") is None


@needs_schemas
def test_unknown_field_with_warn_is_dropped_with_a_warning(standin):
    body = deployment()
    body["spec"]["bogus"] = 1
    code, headers, obj = standin.http("POST", DEPLOYMENTS + "?fieldValidation=Warn", body)
    assert code == 201 and "bogus" not in obj["spec"]
    assert headers["Warning"] == '299 - "unknown field \\"spec.bogus\\""'


@needs_schemas
def test_wrong_type_is_a_decoding_error(standin):
    body = deployment()
    body["spec"]["replicas"] = "two"
    code, _, status = standin.http("POST", DEPLOYMENTS, body)
    assert code == 400 and status["reason"] == "BadRequest"
    assert "cannot unmarshal string into Go struct field" in status["message"]
    assert "spec.replicas" in status["message"]


@pytest.mark.parametrize("value", ["1.5 Gi", "lots", "1Gb"])
def test_bad_quantity(standin, value):
    code, _, status = standin.http("POST", PODS, pod(limits={"memory": value}))
    assert code == 400 and status["reason"] == "BadRequest"
    assert status["message"] == ('Pod in version "v1" cannot be handled as a Pod: quantities must match the '
                                 "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


def test_bad_name_is_invalid(standin):
    code, _, status = standin.http("POST", DEPLOYMENTS, deployment("My_Tool"))
    assert code == 422 and status["reason"] == "Invalid"
    assert status["message"].startswith('Deployment.apps "My_Tool" is invalid: metadata.name: Invalid value: '
                                        '"My_Tool": a lowercase RFC 1123 subdomain must consist of')
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "metadata.name",
                                            "message": status["message"].split("metadata.name: ", 1)[1]}]
    assert status["details"]["kind"] == "Deployment" and status["details"]["group"] == "apps"


def test_several_problems_are_listed(standin):
    body = deployment()
    body["spec"]["template"]["metadata"]["labels"] = {"other": "x"}
    body["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 70000}]
    code, _, status = standin.http("POST", DEPLOYMENTS, body)
    assert code == 422
    msg = status["message"]
    assert msg.startswith('Deployment.apps "mytool" is invalid: [') and msg.endswith("]")
    fields = [c["field"] for c in status["details"]["causes"]]
    assert fields == ["spec.template.metadata.labels", "spec.template.spec.containers[0].ports[0].containerPort"]
    assert "`selector` does not match template `labels`" in msg
    assert "Invalid value: 70000: must be between 1 and 65535, inclusive" in msg


def test_service_name_must_be_a_dns1035_label(standin):
    code, _, status = standin.http("POST", f"/api/v1/namespaces/{NS}/services", {
        "metadata": {"name": "1tool"}, "spec": {"ports": [{"port": 8000}]}})
    assert code == 422 and "a DNS-1035 label must consist of" in status["message"]


def test_label_value_is_checked(standin):
    body = pod()
    body["metadata"]["labels"] = {"name": "not valid!"}
    code, _, status = standin.http("POST", PODS, body)
    assert code == 422 and status["details"]["causes"][0]["field"] == "metadata.labels"
    assert "a valid label must be an empty string or consist of alphanumeric characters" in status["message"]


def test_missing_image_is_required(standin):
    body = pod()
    del body["spec"]["containers"][0]["image"]
    code, _, status = standin.http("POST", PODS, body)
    assert code == 422
    assert status["message"] == 'Pod "p" is invalid: spec.containers[0].image: Required value'


def test_requests_over_limits(standin):
    code, _, status = standin.http("POST", PODS, pod(limits={"cpu": "500m"}, requests={"cpu": "1"}))
    assert code == 422
    assert "spec.containers[0].resources.requests: Invalid value: \"1\": must be less than or equal to cpu " \
           "limit" in status["message"]


def test_selector_is_immutable(standin):
    assert standin.http("POST", DEPLOYMENTS, deployment())[0] == 201
    body = deployment()
    body["spec"]["selector"]["matchLabels"]["extra"] = "x"
    body["spec"]["template"]["metadata"]["labels"]["extra"] = "x"
    code, _, status = standin.http("PUT", DEPLOYMENTS + "/mytool", body)
    assert code == 422 and "spec.selector: Invalid value" in status["message"]
    assert "field is immutable" in status["message"]


@pytest.mark.parametrize("host", ["evil.example", "mytool.toolforge.org.evil.example", "mytool.toolforgexorg",
                                  "othertool.toolforge.org"])
def test_ingress_host_must_be_the_tools_own(standin, host):
    code, _, status = standin.http("POST", INGRESSES, ingress(host))
    assert code == 400 and "reason" not in status
    assert status["message"] == ('admission webhook "ingress-admission.tools.wmcloud.org" denied the request: '
                                 "Ingress host must be <toolname>.toolforge.org")
    assert standin.objects("Ingress", NS) == []


def test_ingress_host_upper_case_is_invalid_and_rules_required(standin):
    code, _, status = standin.http("POST", INGRESSES, ingress("MyTool.toolforge.org"))
    assert code == 422 and status["details"]["causes"][0]["field"] == "spec.rules[0].host"
    body = ingress()
    body["metadata"]["name"] = "default-backend-only"
    body["spec"] = {"defaultBackend": {"service": {"name": "mytool", "port": {"number": 8000}}}}
    code, _, status = standin.http("POST", INGRESSES, body)
    assert code == 400 and "Ingress host must be <toolname>.toolforge.org" in status["message"]
    body = ingress()
    body["spec"]["tls"] = [{"hosts": ["evil.example"]}]
    code, _, status = standin.http("POST", INGRESSES, body)
    assert code == 400 and "denied the request" in status["message"]


def test_ingress_path_type_required(standin):
    body = ingress()
    del body["spec"]["rules"][0]["http"]["paths"][0]["pathType"]
    code, _, status = standin.http("POST", INGRESSES, body)
    assert code == 422
    assert status["details"]["causes"][0] == {"reason": "FieldValueRequired",
                                              "field": "spec.rules[0].http.paths[0].pathType",
                                              "message": "Required value: pathType must be specified"}


def test_pod_over_limitrange_is_forbidden(standin):
    code, _, status = standin.http("POST", PODS, pod(limits={"cpu": "2", "memory": "512Mi"}))
    assert code == 403 and status["reason"] == "Forbidden"
    assert status["message"] == 'pods "p" is forbidden: maximum cpu usage per Container is 1, but limit is 2'
    code, _, status = standin.http("POST", PODS, pod(limits={"cpu": "2", "memory": "8Gi"}))
    assert status["message"] == ('pods "p" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, '
                                 'maximum memory usage per Container is 4Gi, but limit is 8Gi]')
    code, _, status = standin.http("POST", PODS, pod(limits={"cpu": "500m"}, requests={"cpu": "10m"}))
    assert status["message"] == 'pods "p" is forbidden: minimum cpu usage per Container is 50m, but request is 10m'


def test_limitrange_defaults_are_applied(standin):
    code, _, obj = standin.http("POST", PODS, pod())
    assert code == 201
    assert obj["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "500m", "memory": "512Mi"},
                                                         "requests": {"cpu": "150m", "memory": "256Mi"}}


def test_quota_exceeded_is_forbidden(standin):
    standin.set_quota({"pods": "1"})
    assert standin.http("POST", PODS, pod("a"))[0] == 201
    code, _, status = standin.http("POST", PODS, pod("b"))
    assert code == 403
    assert status["message"] == ('pods "b" is forbidden: exceeded quota: tool-mytool, requested: pods=1, '
                                 'used: pods=1, limited: pods=1')
    standin.set_quota({"pods": "4", "limits.memory": "1Gi"})
    code, _, status = standin.http("POST", PODS, pod("c", limits={"memory": "768Mi"}))
    assert status["message"] == ('pods "c" is forbidden: exceeded quota: tool-mytool, requested: '
                                 'limits.memory=768Mi, used: limits.memory=512Mi, limited: limits.memory=1Gi')


def test_second_service_over_quota(standin):
    svc = {"metadata": {"name": "one"}, "spec": {"ports": [{"port": 8000}]}}
    assert standin.http("POST", f"/api/v1/namespaces/{NS}/services", svc)[0] == 201
    code, _, status = standin.http("POST", f"/api/v1/namespaces/{NS}/services", {**svc, "metadata": {"name": "two"}})
    assert code == 403 and "exceeded quota: tool-mytool, requested: services=1, used: services=1, " \
                           "limited: services=1" in status["message"]


def test_namespace_mismatch_and_missing_namespace(standin):
    body = pod()
    body["metadata"]["namespace"] = "tool-othertool"
    code, _, status = standin.http("POST", PODS, body)
    assert code == 400 and "does not match the namespace" in status["message"]
    code, _, status = standin.http("POST", "/api/v1/namespaces/tool-nope/pods", pod(), user="kubernetes-admin")
    assert code == 404 and status["message"] == 'namespaces "tool-nope" not found'


@needs_schemas
def test_schema_validators_are_cached_and_versions_selectable():
    v1 = validation.validator_for("1.29", "Deployment", "apps/v1")
    assert v1 is validation.validator_for("1.29", "Deployment", "apps/v1")
    newest = validation.shipped_versions()[-1]
    res = __import__("tests.standin.store", fromlist=["BY_KIND"]).BY_KIND["Deployment"]
    obj, warnings = validation.decode(res, deployment(), newest)
    assert warnings == [] and obj["metadata"]["name"] == "mytool"
    bad = copy.deepcopy(deployment())
    bad["spec"]["nope"] = True
    with pytest.raises(Exception) as e:
        validation.decode(res, bad, newest)
    assert e.value.code == 400


@needs_schemas
def test_standin_on_newest_kubernetes_version(tmp_path):
    from tests.standin import StandIn
    newest = validation.shipped_versions()[-1]
    s = StandIn(k8s_version=newest, directory=str(tmp_path)).start()
    try:
        code, _, info = s.http("GET", "/version")
        assert code == 200 and info["minor"] == newest.split(".")[1]
        assert s.http("POST", DEPLOYMENTS, deployment())[0] == 201
        s.wait_for(lambda: s.pods() and s.pods()[0]["status"].get("phase") == "Running")
    finally:
        s.stop()
