"""Toolforge's Kyverno pod rule, as the stand-in's admission (switch: ``StandIn.pod_policy``).

``StandIn.pod_policy`` (reset to ``False``):

``False`` / ``None``
    no pod policy (the stand-in's historical behaviour).
``True`` (or ``"present"``)
    a pod must say, explicitly, what jobs-api sends (REFERENCE 8): pod ``runAsNonRoot:
    true`` and ``seccompProfile.type: RuntimeDefault``; every container
    ``allowPrivilegeEscalation: false``, ``capabilities.drop: [ALL]`` and not ``privileged``.
``"strict"``
    ``True`` plus what the old per-tool policy enforced: pod ``runAsUser``/``runAsGroup``/
    ``fsGroup`` present and, when the tool's uid is known (``StandIn.tool_uids[tool]``, gid =
    uid), equal to it; no ``hostNetwork``/``hostPID``/``hostIPC``; ``hostPath`` volumes only
    under ``HOSTPATH_PREFIXES``; init containers checked as containers; a container's
    ``runAsNonRoot`` absent or true and its ``runAsUser``/``runAsGroup`` absent or the tool's.
``"runasnonroot"``
    only the rule enforced today: a pod with ``securityContext.runAsNonRoot: false`` is refused.

Only ``tool-*`` namespaces are checked. The first field that is not so is refused with
Kyverno's message (kube-apiserver passes it on): a 400 without a reason for a pod created
directly, a ``FailedCreate`` event for a ReplicaSet's pod (the controller turns every
admission error into one; such a pod has no name yet: ``resource Pod/tool-x/ was blocked``).
Kyverno's auto-generated Deployment rules are off (as on Toolforge), so a Deployment itself
is admitted.
"""

from __future__ import annotations

from .errors import ApiError

WEBHOOK = "validate.kyverno.svc-fail"
POLICY = "toolforge-kyverno-pod-policy"
RULE = "toolforge-validate-pod-policy"
HOSTPATH_PREFIXES = ("/data/project", "/data/scratch", "/public/dumps", "/mnt/nfs", "/etc/wmcs-project",
                     "/etc/ldap.conf", "/etc/ldap.yaml", "/etc/novaobserver.yaml", "/var/lib/sss/pipes")
MODES = (False, None, True, "present", "strict", "runasnonroot")


def message(namespace: str, name: str, path: str, text: str) -> str:
    return (f'admission webhook "{WEBHOOK}" denied the request: \n\n'
            f"resource Pod/{namespace}/{name} was blocked due to the following policies \n\n"
            f"{POLICY}:\n  {RULE}: 'validation error: {text}. rule {RULE} failed at path {path}'\n")


def _container(c: dict, base: str, strict: bool, uid: int | None) -> tuple[str, str] | None:
    sc = c.get("securityContext") or {}
    base = f"{base}/securityContext"
    if sc.get("allowPrivilegeEscalation") is not False:
        return f"{base}/allowPrivilegeEscalation/", "containers must set allowPrivilegeEscalation: false"
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        return f"{base}/capabilities/drop/", "containers must drop ALL capabilities"
    if sc.get("privileged"):
        return f"{base}/privileged/", "containers must not be privileged"
    if strict:
        if sc.get("runAsNonRoot") is False:
            return f"{base}/runAsNonRoot/", "containers must not set runAsNonRoot: false"
        for key in ("runAsUser", "runAsGroup"):
            if key in sc and uid is not None and sc[key] != uid:
                return f"{base}/{key}/", f"containers must run with the tool's {key}"
    return None


def _violation(pod: dict, mode, uid: int | None) -> tuple[str, str] | None:
    spec = pod.get("spec") or {}
    context = spec.get("securityContext") or {}
    if mode == "runasnonroot":
        if context.get("runAsNonRoot") is False:
            return "/spec/securityContext/runAsNonRoot/", "pod security context must not set runAsNonRoot: false"
        return None
    strict = mode == "strict"
    if context.get("runAsNonRoot") is not True:
        return "/spec/securityContext/runAsNonRoot/", "pod security context must set runAsNonRoot: true"
    if strict:
        for key in ("runAsUser", "runAsGroup", "fsGroup"):
            if not isinstance(context.get(key), int) or (uid is not None and context[key] != uid):
                return f"/spec/securityContext/{key}/", f"pod security context must set {key} to the tool's id"
    if (context.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        return "/spec/securityContext/seccompProfile/type/", "pod seccompProfile must be RuntimeDefault"
    if strict:
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key):
                return f"/spec/{key}/", f"pods must not use {key}"
        for i, vol in enumerate(spec.get("volumes") or []):
            hp = (vol.get("hostPath") or {}).get("path")
            if hp is not None and not any(hp == p or hp.startswith(p.rstrip("/") + "/") for p in HOSTPATH_PREFIXES):
                return f"/spec/volumes/{i}/hostPath/path/", "hostPath volumes must be under the NFS paths"
    fields = ("initContainers", "containers") if strict else ("containers",)
    for field in fields:
        for index, container in enumerate(spec.get(field) or []):
            found = _container(container, f"/spec/{field}/{index}", strict, uid)
            if found:
                return found
    return None


def check_pod(pod: dict, namespace: str, name: str, mode=True, uid: int | None = None) -> None:
    """Raise Kyverno's denial (an ``ApiError``, 400, no reason) if ``mode`` refuses ``pod``."""
    if mode not in MODES:
        raise ValueError(f"unknown StandIn.pod_policy {mode!r}; choose one of {MODES}")
    if not mode or not (namespace or "").startswith("tool-"):
        return
    found = _violation(pod, mode, uid)
    if found is None:
        return
    path, text = found
    raise ApiError(400, "", message(namespace, name, path, text), {})
