"""Pure builders of the Kubernetes objects of one webservice (REFERENCE section 2).

One function per kind, each taking a ``Spec`` and returning a plain ``dict`` ready to
be serialised (YAML for ``--dry-run``, JSON for server-side apply). No I/O, no clock,
no kubernetes import: the same spec always gives the same objects, which is what the
golden-file tests pin.

Routing modes:

* ``httproute`` (default): Gateway API HTTPRoute ``<tool>`` for host ``<tool>.<domain>``,
  attached to the shared Gateway (``istio-gateway/toolforge`` by default, no sectionName
  unless configured), one rule without matches (all paths) to the Service: the form
  Toolforge's own jobs-api publishes (REFERENCE 8).
* ``ingress``: Ingress ``<tool>-subdomain`` for host ``<tool>.<domain>`` (with
  ``spec.ingressClassName`` when the site config sets ``ingress_class``).
* ``legacy-path`` under a Gateway (the site's own routing is ``httproute`` and its config
  names ``legacy_host``): HTTPRoute ``<tool>-legacy`` for host ``[<legacy host>]`` with two
  rules: an ``Exact`` ``/<tool>`` match whose ``RequestRedirect`` filter answers 302 to
  ``/<tool>/`` (Gateway API keeps the query string), and a ``PathPrefix`` ``/<tool>/``
  match to the Service, path unchanged (see :func:`build_legacy_httproute`).
* ``legacy-path`` where the site runs an ingress controller (its ``routing`` is ``ingress``
  or ``legacy-path``): Ingress ``<tool>-legacy`` on ``<project>.wmflabs.org/<tool>/``. Where
  ingress-nginx allows snippet annotations (``legacy_snippets: true``) this is the
  seed's form: regex path, ``rewrite-target`` and a ``configuration-snippet`` redirecting
  ``/<tool>`` to ``/<tool>/``. Where snippets are disabled (the default, as on current
  clusters) it is a plain ``Prefix`` path ``/<tool>`` with no annotations at all. In both
  forms the container gets ``WEBSERVICE_PATH_PREFIX=/<tool>``: webservice-runner then
  serves the app under ``/<tool>/`` (as the old layout expected) and itself answers the
  bare ``/<tool>`` with a redirect that keeps the query string, which is what makes the
  snippet-free form work. All three forms route the same URLs to the same backend paths.
"""

from __future__ import annotations

from webservice.model import quantity
from webservice.conventions import (  # noqa: F401 (the builders' names, re-exported for their users)
    COMPONENT,
    CONTAINER,
    MANAGED_BY,
    MANAGER,
    MOUNT_LABEL,
    PATH_PREFIX_ENV,
    PORT,
    RUNNER,
    SHELL_COMPONENT,
    STARTED_AT,
    labels,
    selector,
)


def _metadata(spec, name: str) -> dict:
    return {"name": name, "namespace": spec.namespace, "labels": labels(spec.tool)}


def resources(spec) -> dict:
    return {
        "limits": {
            "cpu": quantity.format_cpu(spec.cpu_limit),
            "memory": quantity.format_memory(spec.mem_limit),
        },
        "requests": {
            "cpu": quantity.format_cpu(spec.cpu_request),
            "memory": quantity.format_memory(spec.mem_request),
        },
    }


def _probes(spec) -> dict:
    """Startup, readiness and liveness probes: HTTP on --health-check-path, else TCP."""

    def check() -> dict:  # a fresh dict each time: no shared YAML anchors in --dry-run
        if spec.health_check_path:
            return {"httpGet": {"path": spec.health_check_path, "port": PORT}}
        return {"tcpSocket": {"port": PORT}}

    return {
        "startupProbe": {**check(), "periodSeconds": 2, "failureThreshold": 90, "timeoutSeconds": 2},
        "readinessProbe": {**check(), "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 5},
        "livenessProbe": {**check(), "periodSeconds": 20, "failureThreshold": 3, "timeoutSeconds": 5},
    }


def container_command(spec) -> list | None:
    """The container command: webservice-runner for catalogue types; for build-service
    images the image's own entrypoint unless extra args replace it."""
    if spec.buildservice:
        return list(spec.extra_args) or None
    return [RUNNER, "--type", spec.runner, "--port", str(PORT), *spec.extra_args]


def _env(spec) -> list:
    env = []
    if spec.buildservice:
        env += [{"name": "PORT", "value": str(PORT)}, {"name": "NO_HOME", "value": "a buildservice pod does not need a home"}]
    if spec.routing == "legacy-path":  # both forms keep the /<tool> prefix for the app
        env.append({"name": PATH_PREFIX_ENV, "value": f"/{spec.tool}"})
    return env


def pod_security_context(spec) -> dict:
    """What the cluster's pod policy requires (Kyverno; REFERENCE 8), sent explicitly as
    jobs-api does: non-root as the tool's uid and gid, the runtime's seccomp profile."""
    context = {}
    if spec.uid is not None:
        context["runAsUser"] = spec.uid
    if spec.gid is not None:
        context["runAsGroup"] = spec.gid
        context["fsGroup"] = spec.gid
    context["runAsNonRoot"] = True
    context["seccompProfile"] = {"type": "RuntimeDefault"}
    return context


def container_security_context(spec) -> dict:
    """No privilege escalation, no capabilities, not privileged, non-root (REFERENCE 8)."""
    context = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False,
               "runAsNonRoot": True}
    if spec.uid is not None:
        context["runAsUser"] = spec.uid
    if spec.gid is not None:
        context["runAsGroup"] = spec.gid
    return context


def _container(spec) -> dict:
    container = {"name": CONTAINER, "image": spec.image}
    command = container_command(spec)
    if command:
        container["command"] = command
    if not spec.buildservice and spec.mount != "none":
        container["workingDir"] = f"/data/project/{spec.tool}/"
    env = _env(spec)
    if env:
        container["env"] = env
    container["ports"] = [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]
    container["resources"] = resources(spec)
    container.update(_probes(spec))
    container["securityContext"] = container_security_context(spec)
    return container


def build_deployment(spec) -> dict:
    pod_labels = labels(spec.tool)
    pod_labels[MOUNT_LABEL] = spec.mount
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(spec, spec.tool),
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": labels(spec.tool)},
            # new pods become ready before old ones go: no 502s during a restart
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": {STARTED_AT: spec.started_at}},
                "spec": {"securityContext": pod_security_context(spec), "containers": [_container(spec)]},
            },
        },
    }


def build_service(spec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec, spec.tool),
        "spec": {
            "selector": {"name": spec.tool},
            "ports": [{"name": "http", "protocol": "TCP", "port": PORT, "targetPort": PORT}],
        },
    }


def _backend(spec) -> dict:
    return {"service": {"name": spec.tool, "port": {"number": PORT}}}


def build_ingress(spec) -> dict:
    if spec.routing == "legacy-path":
        return build_legacy_ingress(spec)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _metadata(spec, f"{spec.tool}-subdomain"),
        "spec": {
            **_ingress_class(spec),
            "rules": [
                {
                    "host": f"{spec.tool}.{spec.public_domain}",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": _backend(spec)}]},
                }
            ],
        },
    }


def _ingress_class(spec) -> dict:
    return {"ingressClassName": spec.ingress_class} if getattr(spec, "ingress_class", "") else {}


def build_legacy_ingress(spec) -> dict:
    metadata = _metadata(spec, f"{spec.tool}-legacy")
    if spec.legacy_snippets:
        metadata["annotations"] = {
            "nginx.ingress.kubernetes.io/use-regex": "true",
            "nginx.ingress.kubernetes.io/rewrite-target": f"/{spec.tool}/$2",
            "nginx.ingress.kubernetes.io/configuration-snippet": f"rewrite ^(/{spec.tool})$ $1/ redirect;",
        }
        path = {"path": f"/{spec.tool}(/|$)(.*)", "pathType": "ImplementationSpecific", "backend": _backend(spec)}
    else:
        path = {"path": f"/{spec.tool}", "pathType": "Prefix", "backend": _backend(spec)}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": {**_ingress_class(spec), "rules": [{"host": spec.legacy_host, "http": {"paths": [path]}}]},
    }


def parent_ref(spec) -> dict:
    """The HTTPRoute's parentRef: the shared Gateway, as jobs-api writes it (group and kind
    left to their defaults, gateway.networking.k8s.io and Gateway)."""
    parent = {"name": spec.gateway_name, "namespace": spec.gateway_namespace}
    if spec.gateway_section:
        parent["sectionName"] = spec.gateway_section
    return parent


def build_httproute(spec) -> dict:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _metadata(spec, spec.tool),
        "spec": {
            "parentRefs": [parent_ref(spec)],
            "hostnames": [f"{spec.tool}.{spec.public_domain}"],
            "rules": [{"backendRefs": [{"name": spec.tool, "port": PORT}]}],
        },
    }


def build_legacy_httproute(spec) -> dict:
    """Legacy path routing under a Gateway: ``<legacy host>/<tool>/`` to the Service.

    ``/<tool>`` (Exact) answers a 302 redirect to ``/<tool>/``: Gateway API's
    ``RequestRedirect`` with ``ReplaceFullPath`` keeps the request's query string, scheme
    and host, so relative links resolve (T242719) and ``/<tool>?q=1`` lands on
    ``/<tool>/?q=1``. A redirect rule may have no backendRefs (the CRD refuses both).

    ``/<tool>/`` (PathPrefix, element-wise like the Ingress ``Prefix``) goes to the Service
    with no ``URLRewrite`` filter, deliberately: the app expects the ``/<tool>`` prefix (the
    seed's ``rewrite-target: /<tool>/$2`` kept it, and webservice-runner serves under it
    through ``WEBSERVICE_PATH_PREFIX``), so ``/<tool>/x?y`` must reach it as ``/<tool>/x?y``.
    A ``ReplacePrefixMatch`` would strip the prefix and break every app that expects it."""
    prefix = f"/{spec.tool}"
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _metadata(spec, f"{spec.tool}-legacy"),
        "spec": {
            "parentRefs": [parent_ref(spec)],
            "hostnames": [spec.legacy_host],
            "rules": [
                {
                    "matches": [{"path": {"type": "Exact", "value": prefix}}],
                    "filters": [{"type": "RequestRedirect", "requestRedirect": {
                        "path": {"type": "ReplaceFullPath", "replaceFullPath": f"{prefix}/"},
                        "statusCode": 302}}],
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": f"{prefix}/"}}],
                    "backendRefs": [{"name": spec.tool, "port": PORT}],
                },
            ],
        },
    }


def build_routing(spec) -> dict:
    """The routing object of the configured mode."""
    if spec.routing == "httproute":
        return build_httproute(spec)
    if spec.routing == "legacy-path" and spec.legacy_kind == "HTTPRoute":
        return build_legacy_httproute(spec)
    return build_ingress(spec)


def build_all(spec) -> list[dict]:
    """Every object ``start`` applies, in apply order (routing last, once it can serve)."""
    return [build_deployment(spec), build_service(spec), build_routing(spec)]




def build_shell_pod(spec, name: str, command: list[str] | None = None, tty: bool = True) -> dict:
    """The pod of ``webservice shell`` (REFERENCE section 2), for ``kubectl run --overrides``."""
    container = {
        "name": name,
        "image": spec.image,
        "command": list(command) if command else ["/bin/bash", "-il"],
        "stdin": True,
        "stdinOnce": True,
        "tty": tty,
        "resources": resources(spec),
        "securityContext": container_security_context(spec),
    }
    if not spec.buildservice and spec.mount != "none":
        container["workingDir"] = f"/data/project/{spec.tool}/"
    if spec.buildservice:
        container["env"] = [{"name": "NO_HOME", "value": "a buildservice pod does not need a home"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": spec.namespace,
            "labels": {
                "name": name,
                COMPONENT: SHELL_COMPONENT,
                MANAGED_BY: MANAGER,
                "toolforge": "tool",
                MOUNT_LABEL: spec.mount,
            },
        },
        "spec": {"restartPolicy": "Never", "securityContext": pod_security_context(spec), "containers": [container]},
    }
