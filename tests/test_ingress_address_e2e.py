"""An Ingress is "serving" only once the site's ingress controller gave it an address.

Where the site config says its ingress controller writes ``status.loadBalancer``
(``ingress_status: true``), start/restart wait for the Ingress to get an address, within the
same deadline, and report one that never gets it as unconfirmed (exit 5), like an HTTPRoute
no Gateway controller accepted. The stand-in's ingress controller modes
(``tests/standin/ingress.py``: none, ``nginx``, ``istio``) decide which Ingresses get one.
Elsewhere an Ingress is not waited for, as before.
"""

from __future__ import annotations

import json

import pytest

from tests.test_lifecycle_e2e import env, run  # noqa: F401 - env is a fixture
from tests.test_lifecycle_gateway_e2e import error_line, site_config
from tests.standin.ingress import INGRESS_IP

SITE = "routing: ingress\ningress_status: true\n"


@pytest.mark.parametrize("controller,ingress_class", [("istio", "istio"), ("nginx", None), ("nginx", "nginx")])
def test_start_waits_for_the_address_and_says_so(env, controller, ingress_class):
    env.standin.ingress_controller = controller
    site_config(env, SITE + (f"ingress_class: {ingress_class}\n" if ingress_class else ""))
    result = run(env, "python3.11", "start", "--timeout", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "started (python3.11)" in result.stdout and "URL: https://mytool.toolforge.org/" in result.stdout
    ingress = env.standin.get("Ingress", env.standin.namespace, "mytool-subdomain")
    assert ingress["status"]["loadBalancer"]["ingress"] == [{"ip": INGRESS_IP}]
    watched = [r for r in env.standin.requests if r.query.get("watch") == "true" and "ingresses" in r.path]
    assert len(watched) == 1  # the Ingress is watched, not polled


@pytest.mark.parametrize("controller,ingress_class", [
    (None, "istio"),  # nothing serves Ingresses (today's Toolforge)
    ("istio", None),  # Istio in STRICT mode serves only class istio
    ("nginx", "istio"),
])
def test_an_ingress_without_an_address_is_unconfirmed_and_non_zero(env, controller, ingress_class):
    env.standin.ingress_controller = controller
    site_config(env, SITE + (f"ingress_class: {ingress_class}\n" if ingress_class else ""))
    result = run(env, "python3.11", "start", "--timeout", "4")
    assert result.returncode == 5, result.stdout + result.stderr
    line = error_line(result)
    assert ("no ingress controller has given the Ingress/mytool-subdomain a load-balancer address within 4 s"
            in line), line
    assert "serves at" not in result.stdout + result.stderr
    data = json.loads(run(env, "status", "--json").stdout)
    assert data["routes"][0]["kind"] == "Ingress" and data["routes"][0]["message"] == "no load-balancer address"


def test_without_the_site_setting_an_ingress_is_not_waited_for(env):
    env.standin.ingress_controller = None
    site_config(env, "routing: ingress\n")
    result = run(env, "python3.11", "start", "--timeout", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [r for r in env.standin.requests if r.query.get("watch") == "true" and "ingresses" in r.path]
