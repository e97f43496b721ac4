"""Legacy path routing and today's Gateway, end to end: the real CLI against the stand-in.

* Where the site routes with the Gateway and names no ``legacy_host`` (today's Toolforge),
  ``--routing legacy-path`` is refused in one line before any request: the stand-in's
  request log stays empty.
* Where the site config names its legacy host, ``start --routing legacy-path`` applies the
  HTTPRoute ``<tool>-legacy`` (redirect rule + ``/<tool>/`` prefix rule), which the real
  admission webhook (``tests/standin/webhook.py``, with ``LEGACYHOST``) admits and the
  stand-in's Gateway controller accepts; ``status`` shows the URL under ``/<tool>/``, and a
  move back to the default routing deletes the legacy route.
"""

from __future__ import annotations

import json

import pytest

from tests.standin.webhook import start_webhook, stop_webhook
from tests.test_lifecycle_e2e import env, run, web_objects  # noqa: F401 - env is a fixture
from tests.test_lifecycle_gateway_e2e import GATEWAY, route_conditions, site_config

LEGACY = "tools.wmflabs.org"


@pytest.fixture
def legacy_webhook(env, tmp_path):
    """The real admission webhook, configured with the site's legacy host."""
    server, client = start_webhook(env.standin, str(tmp_path / "webhook"), legacy_host=LEGACY)
    yield server, client
    env.standin.webhook = None
    stop_webhook(server, client)


@pytest.mark.parametrize("action", ["start", "restart"])
@pytest.mark.parametrize("site", ["", "routing: httproute\n"])
def test_legacy_path_is_refused_before_any_request_where_the_site_does_not_serve_it(env, action, site):
    site_config(env, site)
    result = run(env, "python3.11", action, "--routing", "legacy-path")
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("webservice: error: --routing legacy-path: this site does not serve legacy path routing")
    assert "--routing httproute" in line and "https://mytool.toolforge.org/" in line
    assert env.standin.requests == []  # not even the catalogue or a Deployment list
    assert web_objects(env) == {"Deployment": [], "Service": [], "Ingress": [], "HTTPRoute": []}


def test_stop_and_status_still_work_with_legacy_path_in_the_environment(env):
    assert run(env, "python3.11", "start").returncode == 0
    extra = {"WEBSERVICE_ROUTING": "legacy-path"}
    status = run(env, "status", env_extra=extra)
    assert status.returncode == 0, status.stderr
    stop = run(env, "stop", env_extra=extra)
    assert stop.returncode == 0, stop.stderr
    assert web_objects(env)["HTTPRoute"] == []


def test_legacy_path_under_the_gateway_serves_and_moves_back(env, legacy_webhook):
    server, client = legacy_webhook
    site_config(env, f"legacy_host: {LEGACY}\n")
    result = run(env, "python3.11", "start", "--routing", "legacy-path")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"route: accepted by {GATEWAY}" in result.stdout
    assert f"https://{LEGACY}/mytool/" in result.stdout
    assert web_objects(env)["HTTPRoute"] == ["mytool-legacy"] and web_objects(env)["Ingress"] == []
    route = env.standin.get("HTTPRoute", env.standin.namespace, "mytool-legacy")
    assert route["spec"]["hostnames"] == [LEGACY]
    assert [m["path"] for r in route["spec"]["rules"] for m in r["matches"]] == [
        {"type": "Exact", "value": "/mytool"}, {"type": "PathPrefix", "value": "/mytool/"}]
    assert route_conditions(env, "mytool-legacy") == {"Accepted": "True", "ResolvedRefs": "True"}
    reviewed = [r["request"]["object"]["metadata"]["name"] for r in client.reviews
                if r["request"]["kind"]["kind"] == "HTTPRoute"]
    assert "mytool-legacy" in reviewed  # the webhook admitted it, not only the client's own check
    deployment = env.standin.get("Deployment", env.standin.namespace, "mytool")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "WEBSERVICE_PATH_PREFIX", "value": "/mytool"} in container["env"]

    data = json.loads(run(env, "status", "--json").stdout)
    assert data["urls"] == [f"https://{LEGACY}/mytool/"]
    (entry,) = data["routes"]
    assert (entry["kind"], entry["name"], entry["state"]) == ("HTTPRoute", "mytool-legacy", "attached")

    moved = run(env, "python3.11", "restart")  # back to the default routing
    assert moved.returncode == 0, moved.stderr
    assert web_objects(env)["HTTPRoute"] == ["mytool"]
    (delete,) = [r for r in env.standin.requests if r.method == "DELETE"]
    assert delete.path.endswith("/httproutes/mytool-legacy")
    assert delete.body["preconditions"]["uid"] == route["metadata"]["uid"]


def test_a_webhook_without_the_legacy_host_refuses_what_the_site_config_claims(env, tmp_path):
    """A site config naming a legacy host its cluster does not admit: the cluster's refusal is
    one line (the client cannot know the webhook's settings), nothing is left routed."""
    server, client = start_webhook(env.standin, str(tmp_path / "webhook"))  # LEGACYHOST unset
    try:
        site_config(env, f"legacy_host: {LEGACY}\n")
        result = run(env, "python3.11", "start", "--routing", "legacy-path")
    finally:
        env.standin.webhook = None
        stop_webhook(server, client)
    assert result.returncode == 7, result.stdout + result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("webservice: error: ")]
    assert f"HTTPRoute mytool-legacy: hostname '{LEGACY}' is not allowed" in line and "nothing was started" in line
    assert web_objects(env) == {"Deployment": [], "Service": [], "Ingress": [], "HTTPRoute": []}  # rolled back
