"""Toolforge's Kyverno pod rule, as the stand-in's admission (switch: ``StandIn.pod_policy``).

A pod must say, explicitly, what jobs-api sends (REFERENCE 8): pod ``runAsNonRoot: true``
and ``seccompProfile.type: RuntimeDefault``; every container ``allowPrivilegeEscalation:
false``, ``capabilities.drop: [ALL]`` and not ``privileged``. The first field that is not
so is refused with Kyverno's message (kube-apiserver passes it on): a 400 for a pod
created directly, a ``FailedCreate`` event for a ReplicaSet's pod (the controller turns
every admission error into one).
"""

from __future__ import annotations

from .errors import ApiError

POLICY = "toolforge-kyverno-pod-policy"
RULE = "toolforge-validate-pod-policy"


def _violation(pod: dict) -> tuple[str, str] | None:
    spec = pod.get("spec") or {}
    context = spec.get("securityContext") or {}
    if context.get("runAsNonRoot") is not True:
        return "/spec/securityContext/runAsNonRoot/", "pod security context must set runAsNonRoot: true"
    if (context.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        return "/spec/securityContext/seccompProfile/type/", "pod seccompProfile must be RuntimeDefault"
    for index, container in enumerate(spec.get("containers") or []):
        c = container.get("securityContext") or {}
        base = f"/spec/containers/{index}/securityContext"
        if c.get("allowPrivilegeEscalation") is not False:
            return f"{base}/allowPrivilegeEscalation/", "containers must set allowPrivilegeEscalation: false"
        if "ALL" not in ((c.get("capabilities") or {}).get("drop") or []):
            return f"{base}/capabilities/drop/", "containers must drop ALL capabilities"
        if c.get("privileged"):
            return f"{base}/privileged/", "containers must not be privileged"
    return None


def check_pod(pod: dict, namespace: str, name: str) -> None:
    found = _violation(pod)
    if found is None:
        return
    path, text = found
    message = (
        'admission webhook "validate.kyverno.svc-fail" denied the request: \n\n'
        f"resource Pod/{namespace}/{name} was blocked due to the following policies \n\n"
        f"{POLICY}:\n  {RULE}: 'validation error: {text}. rule {RULE} failed at path {path}'\n"
    )
    raise ApiError(400, "BadRequest", message, {})
