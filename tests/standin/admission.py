"""LimitRanger and ResourceQuota admission, with kube-apiserver's messages.

* LimitRange (``type: Container``): missing limits get ``default``, missing requests
  ``defaultRequest``; a container over ``max`` or under ``min`` is refused with
  ``403 Forbidden``: ``pods "x" is forbidden: maximum cpu usage per Container is 1, but
  limit is 2`` (several problems: ``[a, b]``).
* ResourceQuota: usage is summed over the namespace's non-terminal pods (and services,
  and deployments for ``count/deployments.apps``);
  a pod or service that would go over ``hard`` is refused with ``403 Forbidden``:
  ``pods "x" is forbidden: exceeded quota: tool-mytool, requested: limits.cpu=2,
  used: limits.cpu=1, limited: limits.cpu=2``.
"""

from __future__ import annotations

from decimal import Decimal

from . import quantity
from .errors import forbidden
from .store import BY_KIND

POD = BY_KIND["Pod"]


def _containers(pod):
    spec = pod.get("spec") or {}
    return (spec.get("containers") or []) + (spec.get("initContainers") or [])


def limitrange_mutate(pod: dict, limitranges: list[dict]):
    for lr in limitranges:
        for item in (lr.get("spec") or {}).get("limits") or []:
            if item.get("type") != "Container":
                continue
            default = item.get("default") or {}
            default_req = item.get("defaultRequest") or default
            for c in _containers(pod):
                res = c.setdefault("resources", {})
                limits, requests = res.get("limits") or {}, res.get("requests") or {}
                for k, v in default.items():
                    if k not in limits:
                        limits[k] = v
                for k, v in default_req.items():
                    if k not in requests:
                        requests[k] = limits.get(k, v) if k not in default_req else v
                if limits:
                    res["limits"] = limits
                if requests:
                    res["requests"] = requests


def limitrange_check(pod: dict, limitranges: list[dict]) -> list[str]:
    problems = []
    for lr in limitranges:
        for item in (lr.get("spec") or {}).get("limits") or []:
            if item.get("type") != "Container":
                continue
            for c in (pod.get("spec") or {}).get("containers") or []:
                res = c.get("resources") or {}
                limits, requests = res.get("limits") or {}, res.get("requests") or {}
                for k, mx in (item.get("max") or {}).items():
                    if k not in limits:
                        problems.append(f"maximum {k} usage per Container is {mx}.  No limit is specified")
                    elif quantity.parse(limits[k]) > quantity.parse(mx):
                        problems.append(f"maximum {k} usage per Container is {mx}, but limit is {limits[k]}")
                for k, mn in (item.get("min") or {}).items():
                    if k not in requests:
                        problems.append(f"minimum {k} usage per Container is {mn}.  No request is specified")
                    elif quantity.parse(requests[k]) < quantity.parse(mn):
                        problems.append(f"minimum {k} usage per Container is {mn}, but request is {requests[k]}")
    return problems


def pod_usage(pod: dict) -> dict[str, Decimal]:
    use = {"pods": Decimal(1), "count/pods": Decimal(1)}
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        for kind in ("limits", "requests"):
            for k, v in (res.get(kind) or {}).items():
                key = f"{kind}.{k}"
                use[key] = use.get(key, Decimal(0)) + quantity.parse(v)
                if kind == "requests":
                    use[k] = use.get(k, Decimal(0)) + quantity.parse(v)
    return use


def _terminal(pod):
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def namespace_usage(pods: list[dict], services: list[dict], deployments: list[dict] = ()) -> dict[str, Decimal]:
    total: dict[str, Decimal] = {"services": Decimal(len(services)), "count/services": Decimal(len(services)),
                                 "count/deployments.apps": Decimal(len(deployments))}
    for pod in pods:
        if _terminal(pod):
            continue
        for k, v in pod_usage(pod).items():
            total[k] = total.get(k, Decimal(0)) + v
    return total


def quota_check(quotas: list[dict], requested: dict[str, Decimal], used: dict[str, Decimal]) -> str | None:
    for q in quotas:
        hard = (q.get("spec") or {}).get("hard") or {}
        over = []
        for k, h in sorted(hard.items()):
            if k not in requested or requested[k] == 0:
                continue
            if used.get(k, Decimal(0)) + requested[k] > quantity.parse(h):
                over.append(k)
        if over:
            def show(values):
                return ",".join(f"{k}={quantity.fmt(k, values.get(k, Decimal(0)))}" for k in over)
            limited = {k: quantity.parse(hard[k]) for k in over}
            return (f"exceeded quota: {q['metadata']['name']}, requested: {show(requested)}, "
                    f"used: {show(used)}, limited: {show(limited)}")
    return None


def admit_pod(pod: dict, limitranges, quotas, pods, services, display_name: str | None = None, policy=None,
              deployments=()):
    """Mutate and check a pod being created; raise ApiError 403 when refused.  ``policy``:
    a validating webhook (``policy(pod)``), called after LimitRanger and before ResourceQuota
    as in kube-apiserver's plugin order."""
    name = display_name or pod["metadata"].get("name") or pod["metadata"].get("generateName", "")
    limitrange_mutate(pod, limitranges)
    problems = limitrange_check(pod, limitranges)
    if problems:
        raise forbidden(POD, name, problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]")
    if policy is not None:
        policy(pod)
    msg = quota_check(quotas, pod_usage(pod), namespace_usage(pods, services, deployments))
    if msg:
        raise forbidden(POD, name, msg)


def admit_service(svc: dict, quotas, pods, services, deployments=()):
    msg = quota_check(quotas, {"services": Decimal(1), "count/services": Decimal(1)},
                      namespace_usage(pods, services, deployments))
    if msg:
        raise forbidden(BY_KIND["Service"], svc["metadata"].get("name", ""), msg)


def admit_deployment(dep: dict, quotas, pods, services, deployments):
    """The ResourceQuota object count ``count/deployments.apps``."""
    msg = quota_check(quotas, {"count/deployments.apps": Decimal(1)},
                      namespace_usage(pods, services, deployments))
    if msg:
        raise forbidden(BY_KIND["Deployment"], dep["metadata"].get("name", ""), msg)


def quota_status(quota: dict, pods, services, deployments=()) -> dict:
    hard = (quota.get("spec") or {}).get("hard") or {}
    usage = namespace_usage(pods, services, deployments)
    return {"hard": dict(hard),
            "used": {k: quantity.fmt(k, usage.get(k, Decimal(0))) for k in hard}}
