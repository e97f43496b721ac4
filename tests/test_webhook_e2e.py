"""End to end: the stand-in API server calls the real webhook over HTTPS (tests/standin/webhook.py),
as kube-apiserver does, for every Ingress and HTTPRoute write.

``kubectl apply`` of a look-alike host is refused by the webhook with kube-apiserver's
message; ``webservice start`` (a subprocess, server-side apply) of the tool's own host is
accepted; the webhook's metrics show it reviewed them.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest
import yaml

from tests.standin.fixtures import KUBECTL
from tests.standin.webhook import NAME, start_webhook, stop_webhook

HAVE_KUBECTL = os.path.exists(KUBECTL) or bool(shutil.which("kubectl"))


@pytest.fixture
def webhook(standin, tmp_path):
    server, client = start_webhook(standin, str(tmp_path / "webhook"))
    yield server, client
    standin.webhook = None
    stop_webhook(server, client)


def reviewed(server) -> dict:
    text = server.metrics.render()
    return {k: int(v) for k, v in re.findall(r'^webservice_admission_reviews_total\{decision="(\w+)"\} (\d+)$', text,
                                             re.MULTILINE)}


def ingress(name: str, host: str) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
            "spec": {"rules": [{"host": host, "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "mytool", "port": {"number": 8000}}}}]}}]}}


def test_the_hook_is_off_by_default(standin):
    assert standin.webhook is None


@pytest.mark.skipif(not HAVE_KUBECTL, reason="kubectl is not installed")
@pytest.mark.parametrize("host", ["mytool.toolforge.org.example", "mytool.toolforgexorg", "othertool.toolforge.org"])
def test_kubectl_apply_of_a_lookalike_host_is_refused_by_the_webhook(webhook, kubectl, standin, tmp_path, host):
    server, client = webhook
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(ingress("evil", host)))
    result = kubectl("apply", "-f", str(path))
    assert result.returncode == 1, result.stdout
    assert f'admission webhook "{NAME}" denied the request: Ingress evil: host {host!r} is not allowed' \
        in result.stderr, result.stderr
    assert "Forbidden" in result.stderr
    assert standin.get("Ingress", standin.namespace, "evil") is None
    assert reviewed(server).get("denied") == 1
    assert client.reviews[-1]["request"]["operation"] == "CREATE"
    assert client.reviews[-1]["request"]["namespace"] == "tool-mytool"


@pytest.mark.skipif(not HAVE_KUBECTL, reason="kubectl is not installed")
def test_kubectl_apply_of_the_own_host_then_an_update_to_a_lookalike(webhook, kubectl, standin, tmp_path):
    server, client = webhook
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(ingress("good", "mytool.toolforge.org")))
    result = kubectl("apply", "-f", str(path))
    assert result.returncode == 0, result.stderr
    assert standin.get("Ingress", standin.namespace, "good") is not None
    path.write_text(yaml.safe_dump(ingress("good", "mytool.toolforge.org.evil.example")))
    result = kubectl("apply", "-f", str(path))
    assert result.returncode == 1
    assert "denied the request" in result.stderr and "'mytool.toolforge.org.evil.example' is not allowed" in result.stderr
    assert client.reviews[-1]["request"]["operation"] == "UPDATE"
    assert standin.get("Ingress", standin.namespace, "good")["spec"]["rules"][0]["host"] == "mytool.toolforge.org"


@pytest.fixture
def app_env(ws_env):
    src = os.path.join(ws_env.home, "www", "python", "src")
    os.makedirs(src)
    with open(os.path.join(src, "app.py"), "w") as f:
        f.write("app = None\n")
    return ws_env


def test_webservice_start_of_the_own_host_is_accepted(webhook, app_env):
    server, client = webhook
    result = app_env.run("python3.11", "start")
    assert result.returncode == 0, result.stderr
    assert reviewed(server).get("allowed", 0) >= 1 and reviewed(server).get("denied", 0) == 0
    routes = [r["request"]["object"] for r in client.reviews]
    assert routes[-1]["kind"] == "HTTPRoute" and routes[-1]["spec"]["hostnames"] == ["mytool.toolforge.org"]
    assert app_env.standin.get("HTTPRoute", app_env.standin.namespace, "mytool") is not None


def test_webservice_start_with_an_httproute_is_accepted(webhook, app_env):
    server, client = webhook
    result = app_env.run("python3.11", "start", env_extra={"WEBSERVICE_ROUTING": "httproute",
                                                           "WEBSERVICE_GATEWAY_NAMESPACE": "istio-gateway"})
    assert result.returncode == 0, result.stderr
    kinds = [r["request"]["kind"]["kind"] for r in client.reviews]
    assert "HTTPRoute" in kinds and reviewed(server).get("denied", 0) == 0


def test_a_webhook_that_cannot_be_reached_fails_closed(webhook, standin):
    server, client = webhook
    stop_webhook(server, client)
    from tests.standin.errors import ApiError

    with pytest.raises(ApiError) as error:
        standin.create({**ingress("x", "mytool.toolforge.org"), "metadata": {"name": "x",
                                                                             "namespace": standin.namespace}})
    assert error.value.code == 500 and f'failed calling webhook "{NAME}"' in error.value.message


def test_webservice_start_with_ingress_routing_is_accepted(webhook, app_env):
    server, client = webhook
    result = app_env.run("--routing", "ingress", "python3.11", "start", "--no-wait")
    assert result.returncode == 0, result.stderr
    assert reviewed(server).get("denied", 0) == 0
    routes = [r["request"]["object"] for r in client.reviews]
    assert routes[-1]["kind"] == "Ingress" and routes[-1]["spec"]["rules"][0]["host"] == "mytool.toolforge.org"
    assert app_env.standin.get("Ingress", app_env.standin.namespace, "mytool-subdomain") is not None
