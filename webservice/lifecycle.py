"""start, stop, restart and status against the cluster.

Each action is one function taking the CLI's ``Request`` and returning a result
dataclass (``webservice.results``) whose ``exit_code`` is the command's. The order of
work is always: resolve and check everything local (tool, config, template, manifest,
type, required files, admission rule), then the few cluster reads the checks need
(LimitRange, ResourceQuota, the current Deployment), then the changes (server-side
apply under one field manager, so that running a command twice converges), then the
manifest, then the wait. The changes and the manifest update are shielded from Ctrl-C
so that an interruption never leaves them half done; an interruption while waiting
leaves a consistent, submitted webservice and says so.

Requests per command (no discovery; the catalogue ConfigMap only when its cache is
stale, +1): ``status`` 1 when stopped, 3 when running (Deployments, Pods, Ingresses),
5 when unhealthy (+ Events, ReplicaSets) and 1 log read when a container crashed;
``start``/``restart`` 1 Deployment list + LimitRange + ResourceQuota + 1 routing list +
3 server-side applies + 4 watch streams (Deployments, ReplicaSets, Pods, Events), a
restart of a running webservice 1 Pod list more (its old pods, before the apply), and
on a failure 1 Events list + 1-2 log reads; ``stop`` 4 lists + up to 3 deletes + 1 Pod
list (+ 1 Pod watch while pods remain).

What is deleted is what carries the webservice's labels in the tool's own namespace,
checked on each object before its deletion, and deleted with a uid precondition.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from datetime import datetime, timedelta, timezone

from webservice import objects, preflight, statefiles
from webservice import status as status_mod
from webservice.context import Context
from webservice.errors import (
    EXIT_FAILED_TO_START,
    EXIT_INTERRUPTED,
    AlreadyRunningError,
    ClusterError,
    ForbiddenError,
    ManifestError,
    PreflightError,
)
from webservice.objects import COMPONENT, MANAGED_BY, selector
from webservice.results import StartResult, StatusResult, StopResult

CATALOGUE_NAMESPACE = "tf-public"
CATALOGUE_CONFIGMAP = "image-config"
CATALOGUE_KEY = "images-v1.yaml"
STOP_TIMEOUT = 60


# --- helpers -------------------------------------------------------------------------------


def _connect(ctx: Context, request):
    from webservice.cluster import Cluster

    return Cluster.connect(ctx.tool, debug=request.debug)


def catalogue_fetch(cluster):
    """The ``fetch`` for ``Context.catalogue``: images-v1.yaml from tf-public/image-config."""

    def fetch() -> str:
        config_map = cluster.read_config_map(CATALOGUE_NAMESPACE, CATALOGUE_CONFIGMAP)
        text = ((config_map or {}).get("data") or {}).get(CATALOGUE_KEY)
        if not isinstance(text, str) or not text.strip():
            raise ClusterError(f"ConfigMap {CATALOGUE_NAMESPACE}/{CATALOGUE_CONFIGMAP} has no {CATALOGUE_KEY}")
        return text

    return fetch


def _ours(obj: dict, namespace: str) -> bool:
    """Whether an object carries the webservice's labels in the tool's namespace."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    return (labels.get(COMPONENT) == "web" and labels.get(MANAGED_BY) == "webservice"
            and meta.get("namespace", namespace) == namespace)


@contextlib.contextmanager
def _shielded():
    """Defer Ctrl-C (and SIGTERM) until the block is done: changes are never half made.

    Yields a list that holds the signals received meanwhile (empty: none).
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def defer(signum, frame):  # noqa: ARG001
        received.append(signum)

    previous = {sig: signal.signal(sig, defer) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _manifest_type(ctx: Context) -> str | None:
    try:
        return ctx.manifest().web_type
    except ManifestError as error:
        ctx.warnings.append(str(error))
        return None


def _start_change(values: dict):
    def change(data: dict) -> dict:
        return statefiles.manifest_for_start(
            data, web_type=values["web"], backend=values["backend"], cpu=values["cpu"], memory=values["memory"],
            replicas=values["replicas"], buildservice_image=values["buildservice-image"],
            extra_args=values["web::extra_args"], health_check_path=values.get("health-check-path"),
            mount=values.get("mount"),
        )

    return change


def _stop_change(data: dict) -> dict:
    kept = statefiles.manifest_for_stop(data)
    if data and not kept:
        kept = {"version": statefiles.MANIFEST_VERSION}  # nothing left: the file is removed
    return kept


def _container(deployment: dict | None) -> dict:
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
    from webservice.quantity import parse

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
    moment = datetime.strptime(started_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return (moment + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- status --------------------------------------------------------------------------------


def status(request) -> StatusResult:
    ctx = Context.load(request)
    cluster = _connect(ctx, request)
    return status_mod.read(cluster, ctx.tool.name, config=ctx.config, type_name=_manifest_type(ctx))


# --- start / restart -----------------------------------------------------------------------


def start(request) -> StartResult:
    return _start(request, restart=False)


def restart(request) -> StartResult:
    return _start(request, restart=True)


def _start(request, *, restart: bool) -> StartResult:
    begin = time.monotonic()
    action = "restart" if restart else "start"
    ctx = Context.load(request)
    cluster = _connect(ctx, request)
    catalogue = ctx.catalogue(fetch=catalogue_fetch(cluster))
    spec = ctx.spec(catalogue)
    preflight.check_files(ctx.tool.home, catalogue.resolve(spec.type_name), spec)
    label = selector()

    # every Deployment (not only ours): one of another workload with our name must not be
    # taken over by a forced apply
    deployments, _ = cluster.list("Deployment")
    current = status_mod.pick_deployment([d for d in deployments if _ours(d, cluster.namespace)], spec.tool)
    for other in deployments:
        if other["metadata"].get("name") == spec.tool and not _ours(other, cluster.namespace):
            raise PreflightError(
                f"a Deployment named {spec.tool} exists in {cluster.namespace} and is not a webservice "
                "(a continuous job?); webservice will not take it over",
                hint=f"rename or delete it (e.g. 'toolforge jobs delete {spec.tool}'), then start again",
            )
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
    routes = []
    for kind in status_mod.routing_kinds(ctx.config):
        routes += [(kind, r) for r in status_mod.list_routes(cluster, kind, label)]
    wanted_routes = {(o["kind"], o["metadata"]["name"]) for o in built[2:]}
    stale = [(kind, r) for kind, r in routes if (kind, r["metadata"]["name"]) not in wanted_routes
             and _ours(r, cluster.namespace)]
    changes = _changes(current, built[0])

    # a restart knows the old pods before new ones appear (one more request)
    pods_before = cluster.list("Pod", label_selector=label) if current is not None and request.wait else None
    since = time.time()
    with _shielded() as interrupted:
        applied = _apply_all(cluster, built, rollback=current is None)
        for kind, route in stale:
            cluster.delete(kind, route["metadata"]["name"], uid=route["metadata"].get("uid"))
        statefiles.update_manifest(ctx.tool.home, _start_change(spec.manifest_values()))

    result = StartResult(action=action, tool=spec.tool, outcome="submitted", type=spec.type_name, url=spec.url,
                         replicas=spec.replicas, changes=changes)
    if interrupted:
        return _interrupted(result, action, begin)
    if not request.wait:
        result.elapsed = time.monotonic() - begin
        result.message = "submitted; 'webservice status' shows when it serves"
        return result

    from webservice.output import progress
    from webservice.wait import wait_ready

    timeout = request.timeout or ctx.config.timeout
    max_memory = _max_memory(limit_ranges)
    try:
        with progress(request, f"{'restarting' if restart else 'starting'} {spec.tool}") as report:
            outcome = wait_ready(cluster, started_at=spec.started_at, timeout=timeout, progress=report,
                                 since=since - 2, mem_limit=spec.mem_limit, max_memory=max_memory,
                                 pods_before=pods_before)
    except KeyboardInterrupt:
        return _interrupted(result, action, begin)

    result.elapsed = time.monotonic() - begin
    snapshot = outcome.snapshot
    snapshot.routes = applied[2:]
    if snapshot.deployment is None and not outcome.stopped:
        snapshot.deployment = applied[0]  # the watch ended before the Deployment's own event
    now = time.time()
    result.status = status_mod.summarise(spec.tool, cluster.namespace, snapshot, type_name=spec.type_name,
                                         now=now, problems=outcome.problems, started_at=spec.started_at,
                                         since=since - 2)
    if outcome.ready:
        result.outcome = "ready"
        result.message = f"{spec.tool} serves at {spec.url}"
        return result
    result.exit_code = EXIT_FAILED_TO_START
    if outcome.stopped:
        result.outcome = "failed"
        result.message = "the webservice was stopped (its Deployment was deleted) while waiting"
        return result
    # the watch may have stopped a moment before the most telling events arrived
    snapshot.events = cluster.events()
    problems = status_mod.problems_of(snapshot, now=time.time(), since=since - 2, mem_limit=spec.mem_limit,
                                      max_memory=max_memory, started_at=spec.started_at) or outcome.problems
    result.problems = status_mod.attach_logs(cluster, problems)
    result.status = status_mod.summarise(spec.tool, cluster.namespace, snapshot, type_name=spec.type_name,
                                         now=now, problems=result.problems, started_at=spec.started_at,
                                         since=since - 2)
    if outcome.timed_out:
        result.outcome = "timeout"
        result.message = f"not ready within {timeout} s" + (f" ({outcome.last_seen})" if outcome.last_seen else "")
    else:
        result.outcome = "failed"
        result.message = "it cannot come up"
    return result


def _apply_all(cluster, built: list, *, rollback: bool) -> list:
    """Apply every object in order. If one is refused on a start, the Deployment this run
    created is deleted again, so that nothing runs half set up and 'start' can be retried."""
    applied: list = []
    try:
        for obj in built:
            applied.append(cluster.apply(obj))
    except ClusterError as error:
        if rollback and applied:
            meta = applied[0].get("metadata") or {}
            try:
                cluster.delete("Deployment", meta.get("name"), uid=meta.get("uid"))
            except ClusterError:
                pass
            error.hint = (error.hint + "; " if error.hint else "") + "nothing was started"
        raise
    return applied


def _interrupted(result: StartResult, action: str, begin: float) -> StartResult:
    result.outcome = "interrupted"
    result.exit_code = EXIT_INTERRUPTED
    result.elapsed = time.monotonic() - begin
    result.message = (f"stopped waiting (interrupted); the webservice was {action}ed and keeps coming up "
                      "in the background: 'webservice status' shows how it goes")
    return result


# --- stop ----------------------------------------------------------------------------------


def stop(request) -> StopResult:
    begin = time.monotonic()
    ctx = Context.load(request)
    cluster = _connect(ctx, request)
    label = selector()
    found = []
    # routing first (visitors get the "no webservice" page at once), the Deployment last
    for kind in ("Ingress", "HTTPRoute", "Service", "Deployment"):
        items = status_mod.list_routes(cluster, kind, label) if kind == "HTTPRoute" else \
            cluster.list(kind, label_selector=label)[0]
        found += [(kind, item) for item in items if _ours(item, cluster.namespace)]
    deleted = []
    with _shielded() as interrupted:
        for kind, item in found:
            meta = item["metadata"]
            if cluster.delete(kind, meta["name"], uid=meta.get("uid")):
                deleted.append(f"{kind}/{meta['name']}")
        statefiles.update_manifest(ctx.tool.home, _stop_change)
    result = StopResult(tool=ctx.tool.name, was_running=any(k == "Deployment" for k, _ in found), deleted=deleted)
    if not found:
        result.message = "not running (nothing to stop)"
    elif interrupted:
        result.exit_code = EXIT_INTERRUPTED
        result.pods_gone = False
        result.message = "interrupted; its objects are deleted and its pods are going away"
    elif request.wait and result.was_running:
        from webservice.output import progress
        from webservice.wait import wait_gone

        timeout = request.timeout or STOP_TIMEOUT
        try:
            with progress(request, f"stopping {ctx.tool.name}") as report:
                result.pods_gone = wait_gone(cluster, timeout=timeout, progress=report)
        except KeyboardInterrupt:
            result.pods_gone = False
            result.exit_code = EXIT_INTERRUPTED
            result.message = "stopped waiting (interrupted); its objects are deleted and its pods are going away"
            result.elapsed = time.monotonic() - begin
            return result
        result.message = "stopped" if result.pods_gone else f"stopped; some pods were still shutting down after {timeout} s"
    else:
        result.message = "stopped"
    result.elapsed = time.monotonic() - begin
    return result
