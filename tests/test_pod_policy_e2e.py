"""Toolforge's pod policy (Kyverno) in the stand-in: webservice's pods pass it; a pod or a
Deployment without the security context is refused, and webservice says which rule and
field in one line."""

from __future__ import annotations

import json

import pytest

from tests.standin.errors import ApiError

WEB = {"app.kubernetes.io/component": "web", "app.kubernetes.io/managed-by": "webservice"}


@pytest.fixture
def env(python_env):
    python_env.standin.pod_policy = True
    return python_env


def test_a_default_start_passes_the_pod_policy(env):
    result = env.run("python3.11", "start")
    assert result.returncode == 0, result.stderr
    (pod,) = [p for p in env.standin.objects("Pod", "tool-mytool")]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_the_policy_refuses_a_pod_without_the_security_context(env):
    with pytest.raises(ApiError) as refused:
        env.standin.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare"},
                            "spec": {"containers": [{"name": "c", "image": "img:1"}]}}, namespace="tool-mytool")
    assert refused.value.code == 400 and "toolforge-validate-pod-policy" in refused.value.message


def test_a_deployment_the_policy_refuses_is_reported_with_rule_and_field(env):
    """A Deployment applied by an older webservice (no security context): its pods are
    refused; status says why in one line, and start's wait would too (same diagnosis)."""
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "mytool", "labels": {**WEB, "name": "mytool"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"name": "mytool"}},
                 "template": {"metadata": {"labels": {**WEB, "name": "mytool"}},
                              "spec": {"containers": [{"name": "webservice", "image": "img:1"}]}}},
    }
    env.standin.create(deployment, namespace="tool-mytool")
    env.standin.wait_for(lambda: any(e.get("reason") == "FailedCreate" for e in env.standin.objects("Event", "tool-mytool")),
                         timeout=30)
    result = env.run("status", "--json")
    data = json.loads(result.stdout)
    assert result.returncode == 4 and data["state"] == "crashing"
    (problem,) = data["problems"]
    assert problem["code"] == "failedcreate" and problem["certain"] is True
    assert ("policy toolforge-kyverno-pod-policy, rule toolforge-validate-pod-policy at "
            "spec.securityContext.runAsNonRoot") in problem["message"]
    text = env.run("status")
    assert text.returncode == 0 and "rule toolforge-validate-pod-policy" in text.stdout
