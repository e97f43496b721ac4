"""Wait until a webservice serves, by watching (never polling), within a time budget.

:func:`wait_ready` opens one watch over the webservice's Deployment, ReplicaSets and
Pods (by label) and the namespace's Events, starting from the current state (the first
answer of each stream is the current objects), and re-evaluates after every change and
every second:

* ready: every wanted pod of the new template (``toolforge.org/started-at``) is Ready and
  no pod of an older template is still running (the rollout is complete), and, with
  ``route`` (HTTPRoute routing), the Gateway controller has accepted the route for its
  current generation (``webservice.health.routes``; the HTTPRoute is watched like the pods);
* failed: :mod:`webservice.health.diagnose` finds a certain problem with the new pods or their
  ReplicaSet (crash loop, image pull, FailedCreate, ...), or the Gateway refused the route
  (``Accepted``/``ResolvedRefs`` False for its current generation): stop at once;
* timeout: neither within ``timeout`` seconds; the uncertain problems say what was seen
  (a route no controller confirmed is the ``routeunconfirmed`` problem);
* stopped: the Deployment was deleted while waiting, or was already gone when the watch
  began (then a tick passes without it: one GET per tick says whether it exists).

The wait follows the Deployment's current template: when another ``restart`` applied a
newer one (a higher ``metadata.generation`` than the one this run applied, and another
``toolforge.org/started-at``), the pods of this run's template will never come, so it
waits for the newer rollout instead (``WaitOutcome.superseded_by``).

Progress goes through a callback (``progress(text)``), which ``webservice.ui.output`` draws
as a spinner or plain lines; this module prints nothing and imports no UI library.
:func:`wait_gone` waits until the webservice's pods are gone (``stop``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from webservice.health import diagnose
from webservice.health import routes
from webservice.actions.status import (
    Snapshot,
    classify,
    current_pods,
    older_pods,
    problems_of,
    selector,
    template_started_at,
    terminating_pods,
)

KINDS = ("Deployment", "ReplicaSet", "Pod", "Event")


@dataclass
class WaitOutcome:
    ready: bool
    timed_out: bool = False
    stopped: bool = False  # the Deployment disappeared while waiting
    problems: list = field(default_factory=list)
    snapshot: Snapshot = field(default_factory=Snapshot)
    elapsed: float = 0.0
    last_seen: str = ""  # on a timeout: how far it got (as the progress said)
    superseded_by: str | None = None  # the started-at of a newer rollout that replaced ours
    route: dict | None = None  # the HTTPRoute as last seen (with its status), when one was waited for


def _uid(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return meta.get("uid") or meta.get("name") or ""


def describe(snapshot: Snapshot, started_at: str | None) -> str:
    """One line saying how far the rollout got, for the progress display."""
    state, replicas = classify(snapshot, [], started_at)
    current, others = current_pods(snapshot, started_at)
    text = f"{replicas['updated']}/{replicas['desired']} pods ready"
    waiting = [p for p in current if not diagnose.pod_ready(p)]
    if not current:
        text += ", creating pods"
    elif waiting:
        info = diagnose.pod_info(waiting[0], time.time())
        detail = info.state
        if info.state == "running":
            detail = "started, waiting for it to answer on port 8000"
        elif info.state.startswith("waiting: ContainerCreating"):
            detail = "pulling the image and creating the container"
        elif info.state.startswith("pending"):
            detail = "waiting for a node" if info.node is None else "pending"
        text += f", {detail}"
    if others:
        text += f", {len(others)} old pod(s) still serving"
    return text


def wait_ready(cluster, *, started_at: str, timeout: float, progress: Callable[[str], None] | None = None,
               since: float | None = None, mem_limit=None, max_memory=None,
               pods_before: tuple[list, str] | None = None, generation: int | None = None,
               name: str | None = None, route: str | None = None,
               route_generation: int | None = None, route_kind: str = "HTTPRoute") -> WaitOutcome:
    """Wait until the pods of template ``started_at`` serve; see the module docstring.

    ``pods_before``: (pods, resourceVersion) listed before the apply of a restart, so that
    the old pods are known from the start (a quota refusal while they go is not final).
    ``generation``: the Deployment's generation as this run's apply left it (a higher one
    is a newer change by someone else). ``name``: the Deployment's name (to check that it
    still exists when the watch has not shown it). ``route``: the name of the HTTPRoute
    that must be attached (watched too), ``route_generation``: its generation after our apply;
    ``route_kind``: ``Ingress`` to wait instead for the Ingress ``route`` to get a
    load-balancer address (where the site's ingress controller writes them).
    """
    begin = time.monotonic()
    snapshot = Snapshot()
    deployments: dict[str, dict] = {}
    replicasets: dict[str, dict] = {}
    pods: dict[str, dict] = {}
    events: dict[str, dict] = {}
    httproutes: dict[str, dict] = {}
    stores = {"Deployment": deployments, "ReplicaSet": replicasets, "Pod": pods, "Event": events,
              route_kind: httproutes}
    kinds = KINDS + ((route_kind,) if route else ())
    last_text = None
    seen_deployment = False
    problems: list = []
    old_seen, old_gone_at = False, None  # pods of the previous template (a restart)
    superseded_by = None

    def refresh() -> None:
        snapshot.deployment = deployments.get(_deployment_key[0]) if _deployment_key[0] else (
            next(iter(deployments.values()), None))
        snapshot.replicasets = list(replicasets.values())
        snapshot.pods = list(pods.values())
        snapshot.events = list(events.values())

    _deployment_key: list = [None]
    versions = None
    if pods_before is not None:
        pods.update({_uid(p): p for p in pods_before[0]})
        versions = {kind: (pods_before[1] if kind == "Pod" else None) for kind in kinds}

    def our_route() -> dict | None:
        return next((r for r in httproutes.values() if (r.get("metadata") or {}).get("name") == route), None)

    def route_now() -> routes.RouteState | None:
        seen = our_route()
        if not route:
            return None
        if seen is None:
            return routes.RouteState(route_kind, route, message="the route has not been seen yet")
        return routes.route_state(seen, route_generation, expect_address=route_kind == "Ingress")

    def outcome(ready: bool, **kw) -> WaitOutcome:
        return WaitOutcome(ready, snapshot=snapshot, elapsed=time.monotonic() - begin, route=our_route(), **kw)

    stream = cluster.watch(*kinds, label_selector=selector(), resource_version=versions, timeout=timeout, tick=1.0)
    try:
        for kind_of, obj in stream:
            if kind_of == "SYNC":
                store = stores[obj["kind"]]
                store.clear()
                for item in obj["items"]:
                    store[_uid(item)] = item
            elif kind_of is not None:
                store = stores.get(obj.get("kind"))
                if store is None:
                    continue
                if obj.get("kind") == "Event":
                    when = diagnose.event_time(obj)
                    if since is not None and when is not None and when < since - 1:
                        continue
                if kind_of == "DELETED":
                    store.pop(_uid(obj), None)
                else:
                    store[_uid(obj)] = obj
                if obj.get("kind") == "Deployment":
                    _deployment_key[0] = _uid(obj) if kind_of != "DELETED" else None
            refresh()
            if snapshot.deployment is not None:
                seen_deployment = True
            elif seen_deployment:
                return WaitOutcome(False, stopped=True, snapshot=snapshot, elapsed=time.monotonic() - begin,
                                   superseded_by=superseded_by)
            elif kind_of is None and name and cluster.get("Deployment", name) is None:
                # a quiet second and still no Deployment: deleted before the watch began
                return WaitOutcome(False, stopped=True, snapshot=snapshot, elapsed=time.monotonic() - begin)
            newer = _newer_template(snapshot.deployment, started_at, generation)
            if newer is not None:
                started_at = superseded_by = newer
                old_seen, old_gone_at = False, None
            if older_pods(snapshot, started_at) or terminating_pods(snapshot):
                old_seen, old_gone_at = True, None
            elif old_seen and old_gone_at is None:
                old_gone_at = time.time()
            problems = problems_of(snapshot, now=time.time(), since=since, mem_limit=mem_limit,
                                   max_memory=max_memory, started_at=started_at, failed_create_after=old_gone_at)
            state, _ = classify(snapshot, problems, started_at)
            attachment = route_now()
            refused = routes.problem(attachment) if attachment is not None and attachment.state == "refused" else None
            if refused is not None:
                return outcome(False, problems=[refused] + problems, superseded_by=superseded_by)
            pods_ready = state == "running" and _template_matches(snapshot, started_at)
            if pods_ready and (attachment is None or attachment.attached):
                return outcome(True, problems=[], superseded_by=superseded_by)
            certain = diagnose.first_certain(problems)
            if certain is not None:
                return WaitOutcome(False, problems=problems, snapshot=snapshot, elapsed=time.monotonic() - begin,
                                   superseded_by=superseded_by)
            if progress is not None and snapshot.deployment is not None:
                text = describe(snapshot, started_at)
                if pods_ready:
                    text += (", waiting for the Gateway to accept the route" if route_kind == "HTTPRoute"
                             else ", waiting for the Ingress to get an address")
                if text != last_text:
                    progress(text)
                    last_text = text
    finally:
        stream.close()
    attachment = route_now()
    if attachment is not None and not attachment.attached:
        unconfirmed = routes.problem(attachment, timeout)
        problems = [unconfirmed] + list(problems) if unconfirmed is not None else problems
    return outcome(False, timed_out=True, problems=problems,
                   last_seen=describe(snapshot, started_at) if snapshot.deployment is not None else "",
                   superseded_by=superseded_by)


def _template_matches(snapshot: Snapshot, started_at: str) -> bool:
    return template_started_at(snapshot.deployment) == started_at


def _newer_template(deployment: dict | None, started_at: str, generation: int | None) -> str | None:
    """The started-at of the Deployment's template when a newer change replaced ours, else None.

    Newer: the Deployment's generation is above the one our apply gave it (without that
    number: a later started-at). An older template (a watch event from before our apply)
    is not followed.
    """
    current = template_started_at(deployment)
    if deployment is None or current is None or current == started_at:
        return None
    if generation is not None:
        try:
            return current if int((deployment.get("metadata") or {}).get("generation") or 0) > generation else None
        except (TypeError, ValueError):
            return None
    return current if current > started_at else None


def wait_gone(cluster, *, timeout: float, progress: Callable[[str], None] | None = None) -> bool:
    """Wait until no pod of the webservice is left; True if they all went in time.

    One LIST (nothing left: done), then one watch from its version until the last goes.
    """
    items, version = cluster.list("Pod", label_selector=selector())
    pods = {_uid(p): p for p in items}
    if not pods:
        return True
    if progress is not None:
        progress(f"waiting for {len(pods)} pod(s) to stop")
    stream = cluster.watch("Pod", label_selector=selector(), resource_version=version, timeout=timeout)
    try:
        for kind_of, obj in stream:
            if kind_of == "SYNC":
                pods = {_uid(p): p for p in obj["items"]}
            elif kind_of == "DELETED":
                pods.pop(_uid(obj), None)
            elif kind_of is not None:
                pods[_uid(obj)] = obj
            if not pods:
                return True
            if progress is not None and kind_of == "DELETED":
                progress(f"waiting for {len(pods)} pod(s) to stop")
    finally:
        stream.close()
    return not pods
