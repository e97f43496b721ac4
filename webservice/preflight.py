"""Checks run before ``start``/``restart`` applies anything, so that a request that
cannot work fails at once with a clear reason instead of leaving broken objects behind.

* :func:`check_files`: the files the type's launcher needs exist in the tool's home
  (``WebserviceType.required``; ``nodejs`` also needs a ``start`` script).
* :func:`check_limits`: the requested cpu/memory fit the namespace's LimitRange (per
  container min/max) and ResourceQuota (hard minus used, counting what the running
  webservice gives back on a restart). Pure: the caller reads the two lists.

Template validity and the admission host rule are checked by ``Context.spec`` and
``Context.check_admission`` (shared with ``--dry-run``). Nothing here talks to the
cluster or prints.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

from webservice import quantity
from webservice.errors import PreflightError

DOCS = "https://wikitech.wikimedia.org/wiki/Help:Toolforge/Web"


def check_files(home: Path, wstype, spec) -> None:
    """Raise PreflightError naming the first missing path the type needs."""
    home = Path(home)
    for group in getattr(wstype, "required", ()) or ():
        if any(os.path.lexists(home / path) for path in group):
            continue
        wanted = " or ".join(f"~/{path}" for path in group)
        raise PreflightError(
            f"type {spec.type_name} needs {wanted}, which does not exist in {home}",
            hint=f"create it (see {DOCS}), or choose another type",
        )
    if spec.runner == "nodejs":
        package = home / "www/js/package.json"
        try:
            data = json.loads(package.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "it is not valid JSON"
            raise PreflightError(f"cannot use ~/www/js/package.json: {reason}",
                                 hint="fix the file; 'npm start' runs its \"start\" script") from None
        scripts = data.get("scripts") if isinstance(data, dict) else None
        if not isinstance(scripts, dict) or not scripts.get("start"):
            raise PreflightError("~/www/js/package.json has no \"start\" script, which the nodejs type runs",
                                 hint='add e.g. "scripts": {"start": "node server.js"}')


def _q(value, kind: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return quantity.parse(value, kind)
    except Exception:  # noqa: BLE001 - a value we cannot read is not our user's fault
        return None


def _fmt(kind: str, value: Decimal) -> str:
    return quantity.format_cpu(value) if kind == "cpu" else quantity.format_memory(value)


def _flag(kind: str) -> str:
    return "--cpu" if kind == "cpu" else "--mem"


def pod_usage(deployment: dict | None) -> dict[str, Decimal]:
    """What the running Deployment's pods count against the quota (all replicas)."""
    usage = {"requests.cpu": Decimal(0), "requests.memory": Decimal(0), "limits.cpu": Decimal(0),
             "limits.memory": Decimal(0), "pods": Decimal(0)}
    if not deployment:
        return usage
    replicas = Decimal((deployment.get("spec") or {}).get("replicas", 1) or 0)
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    for container in containers:
        resources = container.get("resources") or {}
        for part in ("requests", "limits"):
            for kind in ("cpu", "memory"):
                value = _q((resources.get(part) or {}).get(kind), kind)
                if value is not None:
                    usage[f"{part}.{kind}"] += value * replicas
    usage["pods"] = replicas
    return usage


def check_limits(spec, limit_ranges: list, quotas: list, current: dict | None = None) -> list[str]:
    """Raise PreflightError if the spec cannot fit; return warnings (e.g. no room to surge).

    ``current`` is the running Deployment (restart): its pods are replaced, so what they
    use is given back before the new pods are counted.
    """
    warnings: list[str] = []
    per_container = {
        ("limits", "cpu"): spec.cpu_limit, ("limits", "memory"): spec.mem_limit,
        ("requests", "cpu"): spec.cpu_request, ("requests", "memory"): spec.mem_request,
    }
    for limit_range in limit_ranges:
        name = (limit_range.get("metadata") or {}).get("name", "?")
        for item in (limit_range.get("spec") or {}).get("limits") or []:
            if item.get("type") not in ("Container", "Pod"):
                continue
            for kind in ("cpu", "memory"):
                maximum = _q((item.get("max") or {}).get(kind), kind)
                minimum = _q((item.get("min") or {}).get(kind), kind)
                limit = per_container[("limits", kind)]
                request = per_container[("requests", kind)]
                if maximum is not None and limit > maximum:
                    raise PreflightError(
                        f"{_flag(kind)} {_fmt(kind, limit)} is over the namespace's maximum of "
                        f"{_fmt(kind, maximum)} {kind} per {item['type'].lower()} (LimitRange {name})",
                        hint=f"use at most {_flag(kind)} {_fmt(kind, maximum)}",
                    )
                if minimum is not None and request < minimum:
                    raise PreflightError(
                        f"the {kind} request {_fmt(kind, request)} (from {_flag(kind)} {_fmt(kind, limit)}) is under "
                        f"the namespace's minimum of {_fmt(kind, minimum)} per {item['type'].lower()} (LimitRange {name})",
                        hint=f"use a larger {_flag(kind)}",
                    )
    wanted = {
        "requests.cpu": spec.cpu_request * spec.replicas, "requests.memory": spec.mem_request * spec.replicas,
        "limits.cpu": spec.cpu_limit * spec.replicas, "limits.memory": spec.mem_limit * spec.replicas,
        "pods": Decimal(spec.replicas),
    }
    one_pod = {k: (v / spec.replicas) for k, v in wanted.items()}
    given_back = pod_usage(current)
    aliases = {"cpu": "requests.cpu", "memory": "requests.memory"}
    for quota in quotas:
        name = (quota.get("metadata") or {}).get("name", "?")
        hard = (quota.get("spec") or {}).get("hard") or (quota.get("status") or {}).get("hard") or {}
        used = (quota.get("status") or {}).get("used") or {}
        for key, limit_text in hard.items():
            key_n = aliases.get(key, key)
            if key_n not in wanted:
                continue
            kind = "memory" if "memory" in key_n else "cpu" if "cpu" in key_n else "pods"
            limit = _q(limit_text, key)
            in_use = _q(used.get(key, "0"), key) or Decimal(0)
            if limit is None:
                continue
            free = limit - max(Decimal(0), in_use - given_back[key_n])
            if wanted[key_n] > free:
                shown = (lambda v: str(int(v))) if kind == "pods" else (lambda v, k=kind: _fmt(k, v))
                what = f"{spec.replicas} pod(s)" if kind == "pods" else f"{key_n} {shown(wanted[key_n])}"
                others = max(Decimal(0), in_use - given_back[key_n])
                raise PreflightError(
                    f"the namespace quota {name} allows {key} {shown(limit)} and other workloads already use "
                    f"{shown(others)}, so {what} do not fit",
                    hint="ask for less (--cpu, --mem, --replicas) or stop other jobs ('toolforge jobs list')",
                )
            if current is not None and wanted[key_n] + one_pod[key_n] > free:
                warnings.append(
                    f"the quota {name} ({key}) leaves no room for an extra pod during the restart: "
                    "pods are replaced one at a time, so the webservice may be briefly unavailable"
                )
    return list(dict.fromkeys(warnings))
