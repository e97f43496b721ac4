"""The Kyverno pod policy of today's Toolforge (REFERENCE section 8), as a validating
admission webhook in front of pod creation.

``StandIn.pod_security`` chooses it:

``None`` (default)
    no pod policy (the stand-in's historical behaviour).
``"kyverno"``
    what the cluster is about to require, every value explicitly present: pod
    ``securityContext.runAsNonRoot: true``, ``runAsUser``/``runAsGroup``/``fsGroup`` = the
    tool's uid/gid (``StandIn.tool_uids[tool]``, gid = uid as on Toolforge), ``seccompProfile.type:
    RuntimeDefault``; no ``hostNetwork``/``hostPID``/``hostIPC``; ``hostPath`` volumes only
    under ``HOSTPATH_PREFIXES``; every container and init container
    ``securityContext.allowPrivilegeEscalation: false``, ``capabilities.drop`` containing
    ``ALL``, ``privileged`` absent or false, ``runAsNonRoot`` absent or true, and
    ``runAsUser``/``runAsGroup`` absent or the tool's.
``"kyverno-runasnonroot"``
    only today's enforced rule: a pod with ``securityContext.runAsNonRoot: false`` is refused.

The first failing field is reported, in Kyverno's wording (kube-apiserver wraps a webhook
denial as ``400`` with no reason)::

    admission webhook "validate.kyverno.svc-fail" denied the request:

    resource Pod/tool-mytool/shell-abc was blocked due to the following policies

    toolforge-kyverno-pod-policy:
      toolforge-validate-pod-policy: 'validation error: pod security context must follow
        the Toolforge policy. rule toolforge-validate-pod-policy failed at path
        /spec/securityContext/runAsNonRoot/'

(one line for the rule).  A ReplicaSet's pods have no name yet at admission
(``resource Pod/tool-mytool/ was blocked``); the controller records the refusal as the
ReplicaSet's ``FailedCreate`` Warning Event ``Error creating: admission webhook ...``.
Kyverno's auto-generated rules for Deployments are off (as on Toolforge, where the
refusal shows on the ReplicaSet), so a Deployment itself is admitted.
"""

from __future__ import annotations

from .errors import ApiError

WEBHOOK = "validate.kyverno.svc-fail"
POLICY = "toolforge-kyverno-pod-policy"
RULE = "toolforge-validate-pod-policy"
RULE_MESSAGE = "pod security context must follow the Toolforge policy"
HOSTPATH_PREFIXES = ("/data/project", "/data/scratch", "/public/dumps", "/mnt/nfs", "/etc/wmcs-project",
                     "/etc/ldap.conf", "/etc/ldap.yaml", "/etc/novaobserver.yaml", "/var/lib/sss/pipes")
MODES = (None, "kyverno", "kyverno-runasnonroot")


def message(namespace: str, name: str, path: str) -> str:
    return (f'admission webhook "{WEBHOOK}" denied the request: \n\nresource Pod/{namespace}/{name} was '
            f"blocked due to the following policies \n\n{POLICY}:\n  {RULE}: 'validation error: "
            f"{RULE_MESSAGE}. rule {RULE} failed at path {path}'\n")


def first_violation(pod: dict, mode: str, uid: int | None) -> str | None:
    """The Kyverno path of the first field that breaks the policy, or None."""
    spec = pod.get("spec") or {}
    psc = spec.get("securityContext") or {}
    if mode == "kyverno-runasnonroot":
        return "/spec/securityContext/runAsNonRoot/" if psc.get("runAsNonRoot") is False else None
    if psc.get("runAsNonRoot") is not True:
        return "/spec/securityContext/runAsNonRoot/"
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        if not isinstance(psc.get(key), int) or (uid is not None and psc[key] != uid):
            return f"/spec/securityContext/{key}/"
    if ((psc.get("seccompProfile") or {}).get("type")) != "RuntimeDefault":
        return "/spec/securityContext/seccompProfile/type/"
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            return f"/spec/{key}/"
    for i, vol in enumerate(spec.get("volumes") or []):
        hp = (vol.get("hostPath") or {}).get("path")
        if hp is not None and not any(hp == p or hp.startswith(p.rstrip("/") + "/") for p in HOSTPATH_PREFIXES):
            return f"/spec/volumes/{i}/hostPath/path/"
    for field in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(field) or []):
            sc = c.get("securityContext") or {}
            base = f"/spec/{field}/{i}/securityContext"
            if sc.get("allowPrivilegeEscalation") is not False:
                return f"{base}/allowPrivilegeEscalation/"
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                return f"{base}/capabilities/drop/"
            if sc.get("privileged"):
                return f"{base}/privileged/"
            if sc.get("runAsNonRoot") is False:
                return f"{base}/runAsNonRoot/"
            for key in ("runAsUser", "runAsGroup"):
                if key in sc and uid is not None and sc[key] != uid:
                    return f"{base}/{key}/"
    return None


def admit_pod(pod: dict, namespace: str, mode: str | None, uid: int | None):
    """Raise the webhook's denial (an ``ApiError``, 400) if ``mode`` refuses ``pod``."""
    if mode is None:
        return
    if mode not in MODES:
        raise ValueError(f"unknown StandIn.pod_security {mode!r}; choose one of {MODES}")
    if not namespace.startswith("tool-"):
        return
    path = first_violation(pod, mode, uid)
    if path:
        raise ApiError(400, "", message(namespace, pod["metadata"].get("name") or "", path))
