"""``stop``: delete the webservice's objects (routing first, the Deployment last), update
the manifest, and wait until its pods are gone.

What is deleted is what carries the webservice's labels in the tool's own namespace,
checked on each object before its deletion, and deleted with a uid precondition; an object
named like ours but not ours is named in a warning and left as it is. Requests: 4 lists +
up to 4 deletes + 1 Pod list (+ 1 Pod watch while pods remain).
"""

from __future__ import annotations

import time

from webservice.actions import status as status_mod
from webservice.actions.connect import connect as _connect
from webservice.actions.lifecycle import _our_names, _ours
from webservice.actions.signals import (
    UNCHANGED,
    CommandLock as _ToolLock,
    exit_code as _exit_code,
    shielded as _shielded,
    terminable as _terminable,
)
from webservice.model.context import Context
from webservice.state import manifest as state_manifest
from webservice.ui.results import StopResult

STOP_TIMEOUT = 60


def _stop_change(data: dict) -> dict:
    kept = state_manifest.manifest_for_stop(data)
    if data and not kept:
        kept = {"version": state_manifest.MANIFEST_VERSION}  # nothing left: the file is removed
    return kept



def stop(request) -> StopResult:
    with _terminable():
        return _stop(request)


def _stop(request) -> StopResult:
    lock = _ToolLock()
    try:
        return _stop_locked(request, lock)
    finally:
        lock.release()


def _stop_locked(request, lock: _ToolLock) -> StopResult:
    from webservice.actions import preflight

    begin = time.monotonic()
    ctx = None
    try:  # the read phase: an interruption here leaves everything as it was
        ctx = Context.load(request)
        cluster = _connect(ctx, request)
        lock.acquire(ctx.tool.home)
        found = []
        # routing first (visitors get the "no webservice" page at once), the Deployment last;
        # every object of each kind, so that one named like ours but not ours can be named
        for kind in ("Ingress", "HTTPRoute", "Service", "Deployment"):
            items = status_mod.list_routes(cluster, kind, None) if kind == "HTTPRoute" else cluster.list(kind)[0]
            found += [(kind, item) for item in items if _ours(item, cluster.namespace)]
            for other_kind, other in preflight.foreign_named(_our_names(ctx.tool.name), {kind: items},
                                                             cluster.namespace):
                ctx.warnings.append(f"{preflight.not_ours_line(other_kind, other)}: left as it is")
    except KeyboardInterrupt as exc:
        tool = ctx.tool.name if ctx is not None else (request.tool or "")
        return StopResult(tool=tool, was_running=False, pods_gone=False, exit_code=_exit_code(exc),
                          message=UNCHANGED, elapsed=time.monotonic() - begin)
    deleted = []
    if found:
        from webservice.ui.output import announce

        announce(request, "Stopping webservice")
    with _shielded() as interrupted:
        for kind, item in found:
            meta = item["metadata"]
            if cluster.delete(kind, meta["name"], uid=meta.get("uid")):
                deleted.append(f"{kind}/{meta['name']}")
        state_manifest.update_manifest(ctx.tool.home, _stop_change, lock=lock.lock)
    lock.release()
    result = StopResult(tool=ctx.tool.name, was_running=any(k == "Deployment" for k, _ in found), deleted=deleted)
    if not found:
        result.message = "not running (nothing to stop)"
        if interrupted:
            result.exit_code = _exit_code(interrupted)
    elif interrupted:
        result.exit_code = _exit_code(interrupted)
        result.pods_gone = False
        result.message = "interrupted; its objects are deleted and its pods are going away"
    elif request.wait and result.was_running:
        from webservice.ui.output import progress
        from webservice.actions.wait import wait_gone

        timeout = request.timeout or STOP_TIMEOUT
        try:
            with progress(request, f"stopping {ctx.tool.name}") as report:
                result.pods_gone = wait_gone(cluster, timeout=timeout, progress=report)
        except KeyboardInterrupt as exc:
            result.pods_gone = False
            result.exit_code = _exit_code(exc)
            result.message = "stopped waiting (interrupted); its objects are deleted and its pods are going away"
            result.elapsed = time.monotonic() - begin
            return result
        result.message = "stopped" if result.pods_gone else f"stopped; some pods were still shutting down after {timeout} s"
    else:
        result.message = "stopped"
    result.elapsed = time.monotonic() - begin
    return result
