"""Presets of the stand-in: "today's Toolforge" (REFERENCE section 8) and jobs-api's
published routes.

``StandIn.configure(preset=None, **settings)`` (also ``@pytest.mark.standin(...)`` on a
test, and the ``toolforge`` / ``toolforge_with_job`` fixtures) sets, in this order, the
preset's settings and then each named setting (``SETTINGS``; an unknown name is a
``TypeError``).

Settings that belong to the Gateway controller (``gateway.py``) are set on it:
``gateway_mode`` -> ``standin.gateway.mode`` (``"accept"``/``"none"``/``"gate"``),
``gateways`` -> ``standin.gateway.gateways``, ``gateway_allowed_namespaces`` ->
``standin.gateway.allowed_namespaces``.

Preset ``"toolforge"`` (``TOOLFORGE``): ``rbac="tools-user"``, ``pod_policy=True`` (the
Kyverno rule on every value jobs-api sends), ``gateway_mode="accept"`` (Gateway
``istio-gateway/toolforge``), ``ingress_controller=None`` (an Ingress is never served), ``quota=TOOLFORGE_QUOTA`` (the 2023 defaults: pods 10,
services 1, count/deployments.apps 3, ...), ``limits`` the LimitRange defaults.
``published_job=`` (a job name, or a dict of ``publish_job`` arguments; default ``None``)
adds a job published on the tool's host.  Preset ``"toolforge-2021"``: the stand-in's
historical defaults (everything off, ingress-nginx serving Ingresses, no Gateway
controller), for symmetry.

``StandIn.publish_job(name="myjob", port=8080, *, tool=None, host=None, deployment=True,
older_by=3600)`` creates (as the cluster admin, validation and admission applied) what jobs-api makes for a continuous job
``name`` published on ``<tool>.<ingress_domains[0]>``: a Deployment (unless
``deployment=False``; its pods carry jobs-api's full security context), a Service and an
HTTPRoute, all named ``name`` and labelled ``JOB_LABELS`` (``app.kubernetes.io/managed-by:
toolforge-jobs-framework``, ``app.kubernetes.io/created-by: <tool>``,
``app.kubernetes.io/name: <name>``, ``app.kubernetes.io/component: deployments``,
``toolforge: tool``, ...).  Their ``creationTimestamp`` is ``older_by`` seconds in the past
(so the job's route is the older one and wins its host).  Quota admission applies: the
Service counts against ``services``.  Returns ``{"Deployment": ..., "Service": ...,
"HTTPRoute": ...}`` as stored.
"""

from __future__ import annotations

import copy
import datetime

JOBS_MANAGER = "toolforge-jobs-framework"
JOB_IMAGE = "docker-registry.svc.toolforge.org/toolforge-bookworm-sssd:latest"

TOOLFORGE_QUOTA = {"requests.cpu": "2", "requests.memory": "6Gi", "limits.cpu": "2", "limits.memory": "8Gi",
                   "pods": "10", "services": "1", "services.nodeports": "0", "count/deployments.apps": "3",
                   "configmaps": "10", "secrets": "10"}
TOOLFORGE_LIMITS = {"max": {"cpu": "1", "memory": "4Gi"}, "min": {"cpu": "50m", "memory": "100Mi"},
                    "default": {"cpu": "500m", "memory": "512Mi"},
                    "defaultRequest": {"cpu": "150m", "memory": "256Mi"}}

TOOLFORGE = {"rbac": "tools-user", "pod_policy": True, "gateway_mode": "accept",
             "ingress_controller": None, "quota": TOOLFORGE_QUOTA, "limits": TOOLFORGE_LIMITS}
TOOLFORGE_2021 = {"rbac": None, "pod_policy": False, "gateway_mode": "none", "ingress_controller": "nginx"}
PRESETS = {"toolforge": TOOLFORGE, "toolforge-2021": TOOLFORGE_2021}

GATEWAY_SETTINGS = {"gateway_mode": "mode", "gateways": "gateways", "gateway_allowed_namespaces": "allowed_namespaces"}
SETTINGS = ("rbac", "pod_policy", *GATEWAY_SETTINGS, "ingress_controller", "quota", "limits",
            "tool_uids", "scenario", "image_scenarios", "time_scale", "field_validation", "ingress_domains")


def job_labels(tool: str, name: str) -> dict:
    return {"toolforge": "tool", "app.kubernetes.io/version": "2", "app.kubernetes.io/managed-by": JOBS_MANAGER,
            "app.kubernetes.io/created-by": tool, "app.kubernetes.io/component": "deployments",
            "app.kubernetes.io/name": name, "jobs.toolforge.org/filelog": "yes",
            "jobs.toolforge.org/emails": "none"}


JOB_LABELS = job_labels("<tool>", "<name>")


def _set(standin, name, value):
    if name in GATEWAY_SETTINGS:
        setattr(standin.gateway, GATEWAY_SETTINGS[name], value)
    else:
        setattr(standin, name, value)


def configure(standin, preset: str | None = None, published_job=None, **settings):
    if preset is not None:
        if preset not in PRESETS:
            raise TypeError(f"unknown stand-in preset {preset!r}; choose one of {sorted(PRESETS)}")
        for k, v in PRESETS[preset].items():
            _set(standin, k, copy.deepcopy(v))
    for k, v in settings.items():
        if k not in SETTINGS:
            raise TypeError(f"unknown stand-in setting {k!r}; choose from {SETTINGS}")
        _set(standin, k, v)
    if published_job:
        args = {"name": published_job} if isinstance(published_job, str) else dict(published_job)
        standin.publish_job(**args)
    return standin


def _security(uid: int) -> tuple[dict, dict]:
    pod = {"runAsUser": uid, "runAsGroup": uid, "fsGroup": uid, "runAsNonRoot": True,
           "seccompProfile": {"type": "RuntimeDefault"}}
    container = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False,
                 "runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid}
    return pod, container


def publish_job(standin, name: str = "myjob", port: int = 8080, *, tool: str | None = None,
                host: str | None = None, deployment: bool = True, older_by: float = 3600) -> dict:
    tool = tool or standin.tool
    ns = f"tool-{tool}"
    host = host or f"{tool}.{standin.ingress_domains[0]}"
    labels = job_labels(tool, name)
    made = {}
    if deployment:
        psc, csc = _security(standin.tool_uids.get(tool, 52500))
        selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": JOBS_MANAGER}
        made["Deployment"] = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns,
                                                                      "labels": dict(labels)},
            "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"securityContext": psc, "containers": [{
                                      "name": "job", "image": JOB_IMAGE, "workingDir": f"/data/project/{tool}",
                                      "command": ["/bin/sh", "-c", "--", f"exec ./serve --port {port}"],
                                      "ports": [{"containerPort": port, "protocol": "TCP"}],
                                      "securityContext": csc,
                                      "resources": {"limits": {"cpu": "500m", "memory": "512Mi"},
                                                    "requests": {"cpu": "250m", "memory": "256Mi"}}}]}}}}
        selector_labels = selector
    else:
        selector_labels = {"app.kubernetes.io/name": name}
    made["Service"] = {"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
                       "spec": {"selector": selector_labels,
                                "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]}}
    made["HTTPRoute"] = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                         "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
                         "spec": {"parentRefs": [{"name": "toolforge", "namespace": "istio-gateway"}],
                                  "hostnames": [host],
                                  "rules": [{"backendRefs": [{"name": name, "port": port}]}]}}
    then = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=older_by)) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")
    out = {}
    for kind, obj in made.items():
        standin.create(obj, ns)
        with standin.lock:
            stored = standin.store.get(kind, ns, name)
            stored["metadata"]["creationTimestamp"] = then
            out[kind] = standin.store.update(kind, stored)
    return out
