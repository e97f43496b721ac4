"""start, restart and status against the cluster (``stop`` is :mod:`webservice.actions.stop`).

Each action is one function taking the CLI's ``Request`` and returning a result
dataclass (``webservice.ui.results``) whose ``exit_code`` is the command's. The order of
work is always: resolve and check everything local (tool, config, template, manifest,
type, required files, admission rule), then the few cluster reads the checks need
(LimitRange, ResourceQuota, every Deployment, Service and route of the namespace), then
the checks against other owners (nothing named like ours and not ours, no other route on
our host, room in the quota for a new Service or Deployment: ``webservice.actions.preflight``),
then the changes (server-side apply under one field manager, so that running a command
twice converges), then the manifest, then the wait. The changes and the manifest update
are shielded from Ctrl-C so that an interruption never leaves them half done; an
interruption while waiting leaves a consistent, submitted webservice and says so, and one
while reading says that nothing was changed. SIGTERM is handled like Ctrl-C while a
command runs, with exit 143 instead of 130.

From the first cluster read to the manifest write (never while waiting), start, restart
and stop hold the tool's command lock (:class:`webservice.actions.signals.CommandLock`): two commands on one tool do
those steps one after the other, so each sees what the other did and the manifest always
describes the objects last applied.

Requests per command (no discovery; the catalogue ConfigMap only when its cache is
stale, +1): ``status`` 1 when stopped, 4 when running (Deployments, Pods, Ingresses,
HTTPRoutes), 5 when unhealthy (+ Events, ReplicaSets)
and 1 log read when a container crashed; ``start``/``restart`` 1 Deployment list +
LimitRange + ResourceQuota + 1 Service list + 2 routing lists (Ingress and HTTPRoute,
whatever the routing mode: an object of the other kind is stale); these four lists are of
the whole namespace, not only the webservice's, for the checks against other owners;
+ 3 server-side applies + 4 watch streams (Deployments, ReplicaSets,
Pods, Events; + the HTTPRoute, until the Gateway has accepted it), a
restart of a running webservice 1 Pod list more (its old pods, before the apply), and
on a failure 1 Events list + 1-2 log reads; ``stop`` 4 lists (of the whole namespace: an
object named like ours that is not ours is named, and left alone) + up to 3 deletes + 1
Pod list (+ 1 Pod watch while pods remain). While waiting, a Deployment GET per quiet second
only until the watch has shown the Deployment (normally at once).

What is deleted is what carries the webservice's labels in the tool's own namespace,
checked on each object before its deletion, and deleted with a uid precondition.
"""

from __future__ import annotations

import dataclasses
import time

from webservice.state import manifest as state_manifest
from webservice.actions import status as status_mod
from webservice.model.context import Context
from webservice.actions.connect import catalogue_fetch, connect as _connect
from webservice.actions.signals import (
    UNCHANGED,
    CommandLock as _ToolLock,
    exit_code as _exit_code,
    shielded as _shielded,
    terminable as _terminable,
)
from webservice.errors import (
    EXIT_FAILED_TO_START,
    AlreadyRunningError,
    ClusterError,
    ForbiddenError,
    ManifestError,
)
from webservice.text import format_time, parse_time
from webservice.ui.results import StartResult, StatusResult
from webservice.actions.status import selector



# --- helpers -------------------------------------------------------------------------------


def _ours(obj: dict, namespace: str) -> bool:
    """Whether an object carries the webservice's labels in the tool's namespace."""
    from webservice.health.owners import ours

    return ours(obj, namespace)


def _debug(request, text: str) -> None:
    if getattr(request, "debug", False):
        from webservice.ui.output import note

        note(f"debug: {text}")


def _everything(cluster, request, kind: str) -> list | None:
    """Every object of ``kind`` in the namespace (not only the webservice's: the checks for
    other owners need them all); [] when the cluster does not serve the kind (404: HTTPRoute
    without Gateway API); None when the tool may not list them (403: those checks are then
    skipped, the cluster still decides). An Ingress list that is refused stays an error, as
    in ``status.list_routes``: a stale Ingress of ours must be found."""
    try:
        items, _ = cluster.list(kind, missing_ok=kind == "HTTPRoute")
    except ForbiddenError:
        if kind == "Ingress":
            raise
        _debug(request, f"may not list {kind}s: the checks for other owners skip them")
        return None
    return items


def _our_names(tool: str) -> list[tuple[str, str]]:
    """Every (kind, name) a webservice of ``tool`` may have, whatever the routing mode."""
    return [("Deployment", tool), ("Service", tool), ("HTTPRoute", tool), ("Ingress", f"{tool}-subdomain"),
            ("Ingress", f"{tool}-legacy")]


def _manifest_type(ctx: Context) -> str | None:
    try:
        return ctx.manifest().web_type
    except ManifestError as error:
        ctx.warnings.append(str(error))
        return None


def _start_change(values: dict):
    def change(data: dict) -> dict:
        return state_manifest.manifest_for_start(
            data, web_type=values["web"], backend=values["backend"], cpu=values["cpu"], memory=values["memory"],
            replicas=values["replicas"], buildservice_image=values["buildservice-image"],
            extra_args=values["web::extra_args"], health_check_path=values.get("health-check-path"),
            mount=values.get("mount"),
        )

    return change


def _container(deployment: dict | None) -> dict:
    from webservice.builders import objects

    spec = (((deployment or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = spec.get("containers") or [{}]
    return next((c for c in containers if c.get("name") == objects.CONTAINER), containers[0])


def _changes(current: dict | None, wanted: dict) -> list[str]:
    """What a restart changes, in words (``memory limit 512Mi -> 1Gi``)."""
    if not current:
        return []
    out = []
    old, new = _container(current), _container(wanted)
    for part in ("limits", "requests"):
        for kind in ("cpu", "memory"):
            before = ((old.get("resources") or {}).get(part) or {}).get(kind)
            after = ((new.get("resources") or {}).get(part) or {}).get(kind)
            if before != after and part == "limits":
                out.append(f"{kind} {before or 'unset'} -> {after}")
    before, after = (current.get("spec") or {}).get("replicas", 1), wanted["spec"]["replicas"]
    if before != after:
        out.append(f"replicas {before} -> {after}")
    if old.get("image") != new.get("image"):
        out.append(f"image {old.get('image')} -> {new.get('image')}")
    if old.get("command") != new.get("command"):
        out.append("command changed")
    return out


def _max_memory(limit_ranges: list):
    from webservice.model.quantity import parse

    found = None
    for limit_range in limit_ranges:
        for item in (limit_range.get("spec") or {}).get("limits") or []:
            value = (item.get("max") or {}).get("memory")
            if item.get("type") == "Container" and value is not None:
                try:
                    parsed = parse(value)
                except Exception:  # noqa: BLE001
                    continue
                found = parsed if found is None else min(found, parsed)
    return found


def _readable(cluster, kind: str) -> list:
    """The namespace's objects of ``kind``, or [] if we may not read them (the cluster still
    enforces them; a refusal then shows up as FailedCreate, which the wait explains)."""
    try:
        return cluster.list(kind)[0]
    except ForbiddenError:
        return []


def _later(started_at: str, than: str | None) -> str:
    """``started_at``, moved on by whole seconds until it differs from ``than``."""
    if started_at != than:
        return started_at
    return format_time(parse_time(started_at) + 1)


# --- status --------------------------------------------------------------------------------


def status(request) -> StatusResult:
    ctx = Context.load(request)
    cluster = _connect(ctx, request)
    return status_mod.read(cluster, ctx.tool.name, config=ctx.config, type_name=_manifest_type(ctx))


# --- start / restart -----------------------------------------------------------------------


def start(request) -> StartResult:
    with _terminable():
        return _start(request, restart=False)


def restart(request) -> StartResult:
    with _terminable():
        return _start(request, restart=True)


def _start(request, *, restart: bool) -> StartResult:
    lock = _ToolLock()
    try:
        return _start_locked(request, restart=restart, lock=lock)
    finally:
        lock.release()


def _start_locked(request, *, restart: bool, lock: _ToolLock) -> StartResult:
    from webservice.builders import objects
    from webservice.actions import preflight  # not needed to read a status

    begin = time.monotonic()
    action = "restart" if restart else "start"
    ctx = None
    try:  # the read phase: an interruption here leaves everything as it was
        ctx = Context.load(request)
        cluster = _connect(ctx, request)
        lock.acquire(ctx.tool.home)
        catalogue = ctx.catalogue(fetch=catalogue_fetch(cluster))
        spec = ctx.spec(catalogue)
        preflight.check_files(ctx.tool.home, catalogue.resolve(spec.type_name), spec)
        label = selector()

        # every Deployment (not only ours): one of another workload with our name must not be
        # taken over by a forced apply
        deployments, _ = cluster.list("Deployment")
        current = status_mod.pick_deployment([d for d in deployments if _ours(d, cluster.namespace)], spec.tool)
        preflight.check_names([("Deployment", spec.tool)], {"Deployment": deployments}, cluster.namespace)
        if current is not None and not restart:
            desired = status_mod.desired_replicas(current)
            ready = int((current.get("status") or {}).get("readyReplicas") or 0)
            if ready >= desired > 0:
                message = f"the webservice of {spec.tool} is already running ({ready}/{desired} pods ready)"
            else:
                message = (f"the webservice of {spec.tool} already exists but only {ready}/{desired} pods are ready "
                           "(see 'webservice status')")
            raise AlreadyRunningError(message, hint="use 'webservice restart' to restart it, with any new options")
        if current is not None:
            spec = dataclasses.replace(spec, started_at=_later(spec.started_at, status_mod.template_started_at(current)))

        built = objects.build_all(spec)
        ctx.check_admission(built[-1])
        limit_ranges = _readable(cluster, "LimitRange")
        quotas = _readable(cluster, "ResourceQuota")
        for warning in preflight.check_limits(spec, limit_ranges, quotas, current):
            ctx.warnings.append(warning)
            # no room for a surge pod: replace pods one at a time instead of deadlocking
            built[0]["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 0, "maxUnavailable": 1}
        # every route and Service in the namespace, not only ours (the same number of lists):
        # what another owner has under our names or on our host is never taken over
        existing = {"Deployment": deployments, "Service": _everything(cluster, request, "Service")}
        routes = []
        for kind in status_mod.routing_kinds(ctx.config):
            existing[kind] = _everything(cluster, request, kind)
            routes += [(kind, r) for r in existing[kind] or []]
        wanted = [(o["kind"], o["metadata"]["name"]) for o in built]
        preflight.check_names(wanted, existing, cluster.namespace)
        ctx.warnings.extend(preflight.check_host_claims(built[-1], routes, cluster.namespace))
        preflight.check_counts(wanted, quotas, existing, cluster.namespace)
        wanted_routes = {(o["kind"], o["metadata"]["name"]) for o in built[2:]}
        stale = [(kind, r) for kind, r in routes if (kind, r["metadata"]["name"]) not in wanted_routes
                 and _ours(r, cluster.namespace)]
        changes = _changes(current, built[0])

        # a restart knows the old pods before new ones appear (one more request)
        pods_before = cluster.list("Pod", label_selector=label) if current is not None and request.wait else None
    except KeyboardInterrupt as exc:
        tool = ctx.tool.name if ctx is not None else (request.tool or "")
        result = StartResult(action=action, tool=tool, outcome="interrupted", type=request.type,
                             exit_code=_exit_code(exc), elapsed=time.monotonic() - begin, message=UNCHANGED)
        return result
    from webservice.ui.output import announce

    # the line scripts and Toolforge's own tests grep for, before anything is changed
    announce(request, f"Restarting webservice of type {spec.type_name}..." if restart
             else f"Starting webservice of type {spec.type_name}...")
    since = time.time()
    record = _ManifestRecord(ctx.tool.home, spec.manifest_values(), lock.lock)
    with _shielded() as interrupted:
        applied = _apply_all(cluster, built, rollback=current is None, record=record)
        for kind, route in stale:
            cluster.delete(kind, route["metadata"]["name"], uid=route["metadata"].get("uid"))
    lock.release()  # the changes are made and recorded: others may go on while this one waits

    result = StartResult(action=action, tool=spec.tool, outcome="submitted", type=spec.type_name, url=spec.url,
                         replicas=spec.replicas, changes=changes)
    if interrupted:
        return _interrupted(result, action, begin, interrupted)
    if not request.wait:
        result.elapsed = time.monotonic() - begin
        result.message = "submitted; 'webservice status' shows when it serves"
        return result

    from webservice.ui.output import progress
    from webservice.actions.wait import wait_ready

    timeout = request.timeout or ctx.config.timeout
    max_memory = _max_memory(limit_ranges)
    try:
        with progress(request, f"{'restarting' if restart else 'starting'} {spec.tool}") as report:
            outcome = wait_ready(cluster, started_at=spec.started_at, timeout=timeout, progress=report,
                                 since=since - 2, mem_limit=spec.mem_limit, max_memory=max_memory,
                                 pods_before=pods_before, name=spec.tool,
                                 generation=(applied[0].get("metadata") or {}).get("generation"),
                                 **_route_wait(applied[2:], ctx.config.ingress_status))
    except KeyboardInterrupt as exc:
        return _interrupted(result, action, begin, exc)

    result.elapsed = time.monotonic() - begin
    snapshot = outcome.snapshot
    snapshot.routes = [outcome.route] if outcome.route is not None else applied[2:]
    if snapshot.deployment is None and not outcome.stopped:
        snapshot.deployment = applied[0]  # the watch ended before the Deployment's own event
    now = time.time()
    started_at = outcome.superseded_by or spec.started_at
    result.status = status_mod.summarise(spec.tool, cluster.namespace, snapshot, type_name=spec.type_name,
                                         now=now, problems=outcome.problems, started_at=started_at,
                                         since=since - 2)
    superseded = ""
    if outcome.superseded_by:
        superseded = f" (another restart replaced this one's rollout with its own, started at {outcome.superseded_by})"
        ctx.warnings.append(f"another restart replaced this one's rollout while it waited; "
                            f"waited for that one (started at {outcome.superseded_by}) instead")
    if outcome.ready:
        result.outcome = "ready"
        result.message = f"{spec.tool} serves at {spec.url}{superseded}"
        return result
    result.exit_code = EXIT_FAILED_TO_START
    if outcome.stopped:
        result.outcome = "failed"
        result.message = "the webservice was stopped (its Deployment was deleted) while waiting"
        return result
    # the watch may have stopped a moment before the most telling events arrived
    snapshot.events = cluster.events()
    route_problems = [p for p in outcome.problems if p.code in _ROUTE_PROBLEMS]  # the wait's own verdict
    problems = route_problems + (status_mod.problems_of(snapshot, now=time.time(), since=since - 2,
                                                        mem_limit=spec.mem_limit, max_memory=max_memory,
                                                        started_at=started_at)
                                 or [p for p in outcome.problems if p.code not in _ROUTE_PROBLEMS])
    result.problems = status_mod.attach_logs(cluster, problems)
    result.status = status_mod.summarise(spec.tool, cluster.namespace, snapshot, type_name=spec.type_name,
                                         now=now, problems=result.problems, started_at=started_at,
                                         since=since - 2)
    if outcome.timed_out and result.status.state == "running" and route_problems:
        result.outcome = "timeout"  # the pods serve, but nothing confirmed that the Gateway routes to them
        result.message = f"not confirmed as serving within {timeout} s (its pods are ready)"
    elif outcome.timed_out:
        result.outcome = "timeout"
        result.message = f"not ready within {timeout} s" + (f" ({outcome.last_seen})" if outcome.last_seen else "")
    else:
        result.outcome = "failed"
        result.message = "it cannot come up" + superseded
    return result


_ROUTE_PROBLEMS = ("routerefused", "routeunconfirmed")


def _route_wait(routes: list, ingress_status: bool = False) -> dict:
    """The ``wait_ready`` arguments that make it wait for an HTTPRoute to be attached, or,
    where the site's ingress controller writes addresses (``ingress_status``), for an
    Ingress to get one (elsewhere an Ingress is not waited for: nothing reports it)."""
    route = next((r for r in routes if r.get("kind") == "HTTPRoute"), None)
    if route is None and ingress_status:
        ingress = next((r for r in routes if r.get("kind") == "Ingress"), None)
        if ingress is not None:
            return {"route": (ingress.get("metadata") or {}).get("name"), "route_kind": "Ingress"}
    if route is None:
        return {}
    meta = route.get("metadata") or {}
    return {"route": meta.get("name"), "route_generation": meta.get("generation")}


class _ManifestRecord:
    """Writes the manifest of a start the moment its Deployment is applied, so that the
    manifest describes what was last applied even when a later apply fails (a restart that
    changed ``--mem`` and then failed on the Service must not be reverted by the next plain
    restart); ``undo`` puts the previous manifest back when a first start is rolled back."""

    def __init__(self, home, values: dict, lock):
        self.home, self.values, self.lock = home, values, lock
        self.previous: dict | None = None

    def write(self) -> None:
        change = _start_change(self.values)

        def remember_and_change(data: dict) -> dict:
            import copy

            self.previous = copy.deepcopy(data)
            return change(data)

        state_manifest.update_manifest(self.home, remember_and_change, lock=self.lock)

    def undo(self) -> None:
        if self.previous is not None:
            previous = self.previous
            state_manifest.update_manifest(self.home, lambda data: previous, lock=self.lock)


def _apply_all(cluster, built: list, *, rollback: bool, record: _ManifestRecord | None = None) -> list:
    """Apply every object in order; the manifest is written right after the Deployment
    (the first object). If one is refused on a first start, every object this run applied
    (the Deployment, and the Service when the route was refused) is deleted again, newest
    first, and the manifest put back, so that nothing is left half set up and 'start' can be
    retried. A manifest that cannot be saved is reported after the other applies."""
    applied: list = []
    unsaved: ManifestError | None = None
    try:
        for obj in built:
            applied.append(cluster.apply(obj))
            if record is not None and len(applied) == 1:
                try:
                    record.write()
                except ManifestError as error:
                    unsaved = error
    except ClusterError as error:
        if rollback and applied:
            try:
                for obj in reversed(applied):
                    meta = obj.get("metadata") or {}
                    cluster.delete(obj.get("kind"), meta.get("name"), uid=meta.get("uid"))
                if record is not None:
                    record.undo()
            except (ClusterError, ManifestError):
                pass
            error.hint = (error.hint + "; " if error.hint else "") + "nothing was started"
        raise
    if unsaved is not None:
        raise unsaved
    return applied


def _interrupted(result: StartResult, action: str, begin: float, interruption) -> StartResult:
    result.outcome = "interrupted"
    result.exit_code = _exit_code(interruption)
    result.elapsed = time.monotonic() - begin
    result.message = (f"stopped waiting (interrupted); the webservice was {action}ed and keeps coming up "
                      "in the background: 'webservice status' shows how it goes")
    return result
