"""Policy refusals read from the API server's text: Kyverno's real message shapes (as a
ReplicaSet FailedCreate event and as a direct denial), other webhooks, and non-denials."""

from __future__ import annotations

import pytest

from webservice.health import diagnose
from webservice.kube.apierrors import translate_http_error
from webservice.errors import PolicyDeniedError
from webservice.health.policy import parse_denial

KYVERNO = (
    'admission webhook "validate.kyverno.svc-fail" denied the request: \n\n'
    "resource Pod/tool-mytool/mytool-7d9f8c-x2x9z was blocked due to the following policies \n\n"
    "toolforge-kyverno-pod-policy:\n"
    "  toolforge-validate-pod-policy: 'validation error: pod security context must not run as root. "
    "rule toolforge-validate-pod-policy failed at path /spec/securityContext/runAsNonRoot/'\n"
)


@pytest.mark.parametrize("message,policy,rule,field,text", [
    (KYVERNO, "toolforge-kyverno-pod-policy", "toolforge-validate-pod-policy", "spec.securityContext.runAsNonRoot",
     "pod security context must not run as root. rule toolforge-validate-pod-policy failed at path "
     "/spec/securityContext/runAsNonRoot/"),
    ("Error creating: " + KYVERNO, "toolforge-kyverno-pod-policy", "toolforge-validate-pod-policy",
     "spec.securityContext.runAsNonRoot", None),
    ('admission webhook "ingress-admission.tools.wmflabs.org" denied the request: Ingress host is not allowed',
     None, None, None, "Ingress host is not allowed"),
])
def test_denials_are_read(message, policy, rule, field, text):
    denial = parse_denial(message)
    assert (denial.policy, denial.rule, denial.field) == (policy, rule, field)
    if text:
        assert denial.text == text
    assert "\n" not in denial.one_line()


@pytest.mark.parametrize("message", ["", "exceeded quota: tool-mytool, requested: pods=1", None, 5,
                                     "pods \"x\" is forbidden: maximum cpu usage per Container is 1"])
def test_other_messages_are_not_denials(message):
    assert parse_denial(message) is None


def test_a_failedcreate_from_the_pod_policy_is_certain_and_names_rule_and_field():
    rs = {"metadata": {"uid": "rs-1"}, "spec": {"replicas": 1}, "status": {"replicas": 0}}
    event = {"involvedObject": {"uid": "rs-1"}, "reason": "FailedCreate", "type": "Warning",
             "message": "Error creating: " + KYVERNO, "lastTimestamp": "2026-12-04T10:00:00Z"}
    (problem,) = diagnose.diagnose([], [event], [rs], now=1_800_000_000)
    assert problem.code == "failedcreate" and problem.certain
    assert problem.message.startswith("the cluster's policy refused the pods (policy toolforge-kyverno-pod-policy, "
                                      "rule toolforge-validate-pod-policy at spec.securityContext.runAsNonRoot)")


@pytest.mark.parametrize("code", [400, 403, 422])
def test_a_direct_denial_is_one_line_naming_the_rule(code):
    body = {"kind": "Status", "status": "Failure", "message": KYVERNO, "reason": "BadRequest", "code": code}
    import json

    error = translate_http_error(code, json.dumps(body), server="https://k8s", what="apply Deployment mytool",
                                 namespace="tool-mytool")
    assert isinstance(error, PolicyDeniedError) and error.exit_code == 7
    assert error.message.startswith("the cluster refused to apply Deployment mytool: the cluster's policy refused it "
                                    "(policy toolforge-kyverno-pod-policy, rule toolforge-validate-pod-policy at "
                                    "spec.securityContext.runAsNonRoot)")
    assert "\n" not in error.message
