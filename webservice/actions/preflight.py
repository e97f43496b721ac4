"""Checks run before ``start``/``restart`` applies anything, so that a request that
cannot work fails at once with a clear reason instead of leaving broken objects behind.

* :func:`check_files`: the files the type's launcher needs exist in the tool's home
  (``WebserviceType.required``; ``nodejs`` also needs a ``start`` script).
* :func:`check_limits`: the requested cpu/memory fit the namespace's LimitRange (per
  container min/max) and ResourceQuota (hard minus used, counting what the running
  webservice gives back on a restart). Pure: the caller reads the two lists.

* :func:`check_names`: no object start applies (Deployment, Service, route) exists under
  the same name without the webservice's labels (a job's, one made by hand).
* :func:`check_host_claims`: no other route in the namespace (an HTTPRoute a job publishes,
  an Ingress or route made by hand) claims the host and path the webservice's route uses.
* :func:`check_counts`: the quota has room for the Service and Deployment start creates
  (``services``, ``count/deployments.apps``), naming what uses it.
  These three are pure too; owners are read from labels (:mod:`webservice.health.owners`).

Template validity and the admission host rule are checked by ``Context.spec`` and
``Context.check_admission`` (shared with ``--dry-run``). Nothing here talks to the
cluster or prints.
"""

from __future__ import annotations

import json
import os
import re
from decimal import Decimal
from pathlib import Path

from webservice.health import owners
from webservice.model import quantity
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


# --- sharing the namespace with jobs and other owners (issue 14 section 3) -----------------
#
# Each takes what the caller listed (every object of the kind in the tool's namespace, not
# only the webservice's) and tells whether start/restart may go on. ``existing`` maps a kind
# to its list, or to None when the tool may not list that kind (the check is then skipped:
# the cluster still decides).


def _owned_words(owner: owners.Owner) -> str:
    if owner.kind == "job":
        return f"it belongs to {owner.words}"
    if owner.kind == "managed":
        return f"it is managed by {owner.words}"
    return f"it was {owner.words}"


def not_ours_line(kind: str, obj: dict) -> str:
    """``Service 'foo' is not managed by webservice (it belongs to the job 'foo')``."""
    return (f"{kind} '{owners.name_of(obj)}' is not managed by webservice "
            f"({_owned_words(owners.owner_of(kind, obj))})")


def foreign_named(wanted, existing: dict, namespace: str) -> list[tuple[str, dict]]:
    """The objects of ``existing`` named like one of ``wanted`` ((kind, name) pairs) that do
    not carry the webservice's labels, in the order of ``wanted``."""
    found = []
    for kind, name in wanted:
        for obj in existing.get(kind) or []:
            if owners.name_of(obj) == name and not owners.ours(obj, namespace):
                found.append((kind, obj))
    return found


def check_names(wanted, existing: dict, namespace: str) -> None:
    """Raise PreflightError if an object start would apply exists under another owner: a
    forced server-side apply would take it over (and a later stop would delete it)."""
    found = foreign_named(wanted, existing, namespace)
    if not found:
        return
    kind, obj = found[0]
    owner = owners.owner_of(kind, obj)
    raise PreflightError(
        f"{not_ours_line(kind, obj)}: webservice will not overwrite or take it over, so nothing was changed",
        hint=f"free the name first ('{owner.free}'), then run the command again",
    )


_REGEX = re.compile(r"[(\[{*?+$^\\|]")


def _prefix(path) -> str:
    """The literal leading part of a route path, without a trailing slash ('' for /)."""
    return _REGEX.split(str(path or "/"), 1)[0].rstrip("/")


def _overlap(a, b) -> bool:
    a, b = _prefix(a), _prefix(b)
    return not a or not b or a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _dicts(value) -> list:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def route_claims(kind: str, obj: dict) -> list[tuple[str, str]]:
    """The (host, path) pairs an HTTPRoute or Ingress routes: exact hosts only (a route
    without hostnames or with a wildcard loses to an exact one, whatever its age)."""
    spec = (obj or {}).get("spec") or {}
    out = []
    if kind == "HTTPRoute":
        paths = []
        for rule in _dicts(spec.get("rules")) or [{}]:
            for match in _dicts(rule.get("matches")) or [{}]:
                paths.append(str((match.get("path") or {}).get("value") or "/"))
        hosts = [h for h in spec.get("hostnames") or [] if isinstance(h, str) and "*" not in h]
        return [(h.lower(), p) for h in hosts for p in paths]
    for rule in _dicts(spec.get("rules")):
        host = rule.get("host")
        if not isinstance(host, str) or not host or "*" in host:
            continue
        paths = [str(p.get("path") or "/") for p in _dicts((rule.get("http") or {}).get("paths"))] or ["/"]
        out += [(host.lower(), p) for p in paths]
    return out


def route_backends(kind: str, obj: dict) -> set[str]:
    """The names of the Services a route sends requests to."""
    spec = (obj or {}).get("spec") or {}
    names = set()
    if kind == "HTTPRoute":
        for rule in _dicts(spec.get("rules")):
            names |= {str(ref.get("name")) for ref in _dicts(rule.get("backendRefs"))}
        return names
    service = ((spec.get("defaultBackend") or {}).get("service") or {}).get("name")
    names |= {str(service)} if service else set()
    for rule in _dicts(spec.get("rules")):
        for path in _dicts((rule.get("http") or {}).get("paths")):
            service = ((path.get("backend") or {}).get("service") or {}).get("name")
            names |= {str(service)} if service else set()
    return names


def host_claims(wanted: dict, routes, namespace: str) -> list[tuple[str, dict, str]]:
    """The routes of ``routes`` ((kind, object) pairs) not ours that claim a host and path
    ``wanted`` (the routing object start applies) will route: (kind, object, where). A
    route that sends requests only to the webservice's own Service (a path routed by hand
    to it) takes nothing away from it and is not a claim."""
    mine = route_claims(wanted.get("kind", ""), wanted)
    ours_backends = route_backends(wanted.get("kind", ""), wanted)
    found = []
    for kind, obj in routes:
        if owners.ours(obj, namespace):
            continue
        backends = route_backends(kind, obj)
        if backends and backends <= ours_backends:
            continue
        for host, path in route_claims(kind, obj):
            if any(host == my_host and _overlap(path, my_path) for my_host, my_path in mine):
                found.append((kind, obj, host + ("" if not _prefix(path) else _prefix(path))))
                break
    return found


def claim_line(kind: str, obj: dict, where: str) -> str:
    """``the job 'foo' publishes HTTPRoute 'foo' on mytool.toolforge.org``."""
    owner = owners.owner_of(kind, obj)
    name = owners.name_of(obj)
    if owner.kind == "job":
        return f"{owner.words} publishes {kind} '{name}' on {where}"
    if owner.kind == "managed":
        return f"{kind} '{name}' (managed by {owner.words}) claims {where}"
    return f"{kind} '{name}' ({owner.words}) claims {where}"


def _keeps_host(route: dict, other: dict) -> bool:
    """Whether ``route`` keeps a host that ``other`` claims too: Gateway API (and
    ingress-nginx for one host and path) gives it to the older one, on a tie to the first
    by namespace/name."""
    def key(obj: dict) -> tuple:
        meta = (obj or {}).get("metadata") or {}
        return str(meta.get("creationTimestamp") or "~"), str(meta.get("namespace") or ""), str(meta.get("name") or "")

    return key(route) < key(other)


def check_host_claims(wanted: dict, routes, namespace: str) -> list[str]:
    """Raise PreflightError if another route in the namespace claims our host (and path):
    Gateway API would give the host to the older route, silently. Where the webservice's
    own route of that name exists already and is the older one (a restart; the other
    route came later and serves nothing there), return a warning instead."""
    meta = wanted.get("metadata") or {}
    current = next((obj for kind, obj in routes if kind == wanted.get("kind") and owners.ours(obj, namespace)
                    and owners.name_of(obj) == meta.get("name")), None)
    found, warnings = [], []
    for kind, obj, where in host_claims(wanted, routes, namespace):
        if current is not None and _keeps_host(current, obj):
            warnings.append(f"{claim_line(kind, obj, where)}, but the webservice's older {wanted.get('kind')} "
                            f"'{meta.get('name')}' keeps that host: the {kind} gets nothing there")
        else:
            found.append((kind, obj, where))
    if not found:
        return warnings
    kind, obj, where = found[0]
    owner = owners.owner_of(kind, obj)
    also = ""
    if len(found) > 1:
        also = " (also " + ", ".join(owners.describe(k, o) for k, o, _ in found[1:]) + ")"
    if owner.kind == "job":
        hint = f"free the host first ('{owner.free}', or run the job without --publish), then start again"
    else:
        hint = f"'{owner.free}' if it is not needed, or move it to another host or path; then start again"
    raise PreflightError(f"{claim_line(kind, obj, where)}{also}: the webservice cannot serve there too, "
                         "so nothing was changed", hint=hint)


COUNTED = {"Service": ("services", "count/services"), "Deployment": ("count/deployments.apps",)}


def _user(kind: str, obj: dict) -> str:
    owner = owners.owner_of(kind, obj)
    if owner.kind == "job":
        return f"{owner.words} ({kind} '{owners.name_of(obj)}')"
    return owners.describe(kind, obj)


def _taken(users: list, in_use: Decimal) -> str:
    """``the job 'foo' uses it (Service 'foo')``, ``they are used by ...``."""
    if len(users) == 1 and in_use <= 1:
        kind, obj = users[0]
        owner = owners.owner_of(kind, obj)
        if owner.kind == "job":
            return f"{owner.words} uses it ({kind} '{owners.name_of(obj)}')"
        return f"{owners.describe(kind, obj)} uses it"
    if users:
        others = " and other workloads" if len(users) < in_use else ""
        return "they are used by " + ", ".join(_user(k, o) for k, o in users) + others
    return "other workloads use " + ("it" if in_use <= 1 else "them")


def check_counts(wanted, quotas: list, existing: dict, namespace: str) -> None:
    """Raise PreflightError if the namespace quota has no room for a Service or Deployment
    start would create (``services``, ``count/deployments.apps``: hard minus used). An
    object of ours that exists already (a restart) is replaced in place and needs no room."""
    for kind, name in wanted:
        items = existing.get(kind)
        if kind not in COUNTED or items is None:
            continue
        if any(owners.name_of(o) == name and owners.ours(o, namespace) for o in items):
            continue
        for quota in quotas:
            quota_name = (quota.get("metadata") or {}).get("name", "?")
            hard = (quota.get("spec") or {}).get("hard") or (quota.get("status") or {}).get("hard") or {}
            used = (quota.get("status") or {}).get("used") or {}
            for key in COUNTED[kind]:
                limit = _q(hard.get(key), key)
                in_use = _q(used[key], key) if key in used else Decimal(len(items))
                if limit is None or in_use is None or in_use + 1 <= limit:
                    continue
                users = [(kind, o) for o in items if not owners.ours(o, namespace)]
                if limit <= 0:
                    what = f"the namespace quota {quota_name} allows no {kind} ({key}: 0)"
                else:
                    what = (f"the namespace quota {quota_name} allows {int(limit)} {kind}{'' if limit == 1 else 's'} "
                            f"and {_taken(users, in_use)} ({key}: {int(in_use)} of {int(limit)} used)")
                frees = list(dict.fromkeys(f"'{owners.owner_of(k, o).free}'" for k, o in users))
                hint = (f"remove one ({' or '.join(frees)}) or ask the Toolforge admins for a larger quota, "
                        "then start again") if frees else "ask the Toolforge admins for a larger quota"
                raise PreflightError(f"{what}, so the webservice's {kind} cannot be created; nothing was changed",
                                     hint=hint)
