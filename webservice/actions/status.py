"""The truth about a running webservice: read its objects, classify, explain.

:func:`read` asks the cluster for as little as it can (the Deployment, the pods and the
routing objects: 3 requests when healthy; events and replica sets, plus one log, only
when something is wrong) and :func:`classify` turns what it got into one of the states of
:data:`webservice.ui.results.STATES`. ``classify`` and :func:`summarise` are pure, so the
wait loop (``webservice.actions.wait``) uses them on the objects its watch delivers.

It never changes anything in the cluster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from webservice.health import diagnose
from webservice.health.routes import route_state
from webservice.errors import EXIT_NOT_RUNNING, EXIT_OK, EXIT_UNHEALTHY
from webservice.ui.results import StatusResult
from webservice.conventions import CONTAINER

# The values of webservice.builders.objects, repeated here so that reading a status does not import
# the object builders (and with them quantity and decimal); tests/test_diagnose.py checks
# that they agree.
STARTED_AT = "toolforge.org/started-at"
SELECTOR = "app.kubernetes.io/component=web,app.kubernetes.io/managed-by=webservice"


def selector() -> str:
    """The label selector that finds "the webservice" (as ``webservice.builders.objects.selector``)."""
    return SELECTOR


WARNING_EVENTS = 8  # recent warnings shown when unhealthy
STUCK_AFTER = 300  # seconds a pod may take to become ready before what is seen counts as failure
LOG_LINES = 10


@dataclass
class Snapshot:
    """The webservice's objects as last seen (plain API dicts)."""

    deployment: dict | None = None
    pods: list = field(default_factory=list)
    replicasets: list = field(default_factory=list)
    events: list = field(default_factory=list)
    routes: list = field(default_factory=list)


def template_started_at(deployment: dict | None) -> str | None:
    if not deployment:
        return None
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return (template.get("annotations") or {}).get(STARTED_AT)


def _started_at(obj: dict) -> str | None:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(STARTED_AT)


def current_pods(snapshot: Snapshot, started_at: str | None = None) -> tuple[list, list]:
    """(pods of the current template, other pods still running), terminating pods left out."""
    started_at = started_at or template_started_at(snapshot.deployment)
    live = [p for p in snapshot.pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    if started_at is None:
        return live, []
    current = [p for p in live if _started_at(p) == started_at]
    others = [p for p in live if _started_at(p) != started_at]
    return current, others


def current_replicasets(snapshot: Snapshot, started_at: str | None = None) -> list:
    started_at = started_at or template_started_at(snapshot.deployment)
    out = []
    for rs in snapshot.replicasets:
        template = ((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}
        if started_at is None or (template.get("annotations") or {}).get(STARTED_AT) == started_at:
            out.append(rs)
    return out


def desired_replicas(deployment: dict | None) -> int:
    if not deployment:
        return 0
    value = (deployment.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def older_pods(snapshot: Snapshot, started_at: str | None = None) -> list:
    """Pods of an older template, terminating ones included (they still count in quotas)."""
    started_at = started_at or template_started_at(snapshot.deployment)
    return [p for p in snapshot.pods if started_at is not None and _started_at(p) != started_at]


def terminating_pods(snapshot: Snapshot) -> list:
    """Pods of the webservice being deleted (they count against the quota until gone)."""
    return [p for p in snapshot.pods if (p.get("metadata") or {}).get("deletionTimestamp")]


def problems_of(snapshot: Snapshot, *, now: float, since: float | None = None, mem_limit=None,
                max_memory=None, started_at: str | None = None, failed_create_after: float | None = None) -> list:
    current, _ = current_pods(snapshot, started_at)
    return diagnose.diagnose(current, snapshot.events, current_replicasets(snapshot, started_at), now=now,
                             since=since, mem_limit=mem_limit, max_memory=max_memory,
                             rolling=bool(older_pods(snapshot, started_at) or terminating_pods(snapshot)),
                             failed_create_after=failed_create_after)


def classify(snapshot: Snapshot, problems: list, started_at: str | None = None) -> tuple[str, dict]:
    """(state, replicas) of the snapshot; ``problems`` from :func:`problems_of`."""
    if snapshot.deployment is None:
        return "stopped", {"desired": 0, "ready": 0, "updated": 0}
    desired = desired_replicas(snapshot.deployment)
    current, others = current_pods(snapshot, started_at)
    updated = sum(1 for p in current if diagnose.pod_ready(p))
    ready = updated + sum(1 for p in others if diagnose.pod_ready(p))
    replicas = {"desired": desired, "ready": ready, "updated": updated}
    if desired == 0:
        return "degraded", replicas
    if updated >= desired and not others:
        return "running", replicas
    if any(p.certain for p in problems):
        return ("degraded" if ready else "crashing"), replicas
    return "starting", replicas


def _resources(deployment: dict) -> tuple[str | None, str | None, dict | None]:
    containers = ((((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")) or []
    container = next((c for c in containers if c.get("name") == CONTAINER), containers[0] if containers else {})
    command = container.get("command") or []
    runner = command[command.index("--type") + 1] if "--type" in command[:-1] else None
    resources = container.get("resources") or None
    return container.get("image"), runner, resources


def _urls(routes: list) -> list:
    urls = []
    for route in routes:
        spec = route.get("spec") or {}
        if route.get("kind") == "HTTPRoute":
            urls += [f"https://{h}{p}" for h in spec.get("hostnames") or [] for p in _route_prefixes(spec)]
            continue
        for rule in spec.get("rules") or []:
            host = rule.get("host")
            for path in ((rule.get("http") or {}).get("paths") or []):
                value = path.get("path") or "/"
                if "(" in value:  # legacy regex form: /tool(/|$)(.*)
                    value = value.split("(", 1)[0]
                if not value.endswith("/"):
                    value += "/"
                if host:
                    urls.append(f"https://{host}{value}")
    return list(dict.fromkeys(urls))


def _route_prefixes(spec: dict) -> list:
    """The path prefixes an HTTPRoute sends to a backend (``/`` for a rule without matches;
    the legacy form's ``/<tool>/``); redirect-only rules serve nothing themselves."""
    prefixes = []
    for rule in spec.get("rules") or [{"backendRefs": [{}]}]:
        if not rule.get("backendRefs"):
            continue
        for match in rule.get("matches") or [{}]:
            path = match.get("path") or {}
            if path.get("type", "PathPrefix") == "PathPrefix":
                value = path.get("value") or "/"
                prefixes.append(value if value.endswith("/") else value + "/")
    return list(dict.fromkeys(prefixes)) or ["/"]


def _event_rows(snapshot: Snapshot, since: float | None) -> list:
    """Recent Warning events about the webservice's objects, repeats merged, oldest first."""
    uids = {(o.get("metadata") or {}).get("uid") for o in snapshot.pods + snapshot.replicasets}
    if snapshot.deployment:
        uids.add((snapshot.deployment.get("metadata") or {}).get("uid"))
    rows: dict = {}
    for event in diagnose.relevant_events(snapshot.events, uids - {None}, since, warnings_only=True):
        involved = event.get("involvedObject") or {}
        when = diagnose.event_time(event)
        message = " ".join(str(event.get("message") or "").split())[:400]
        key = (involved.get("uid"), event.get("reason"), message)
        count = int(event.get("count") or (event.get("series") or {}).get("count") or 1)
        if key in rows:
            count += rows.pop(key)["count"]
        rows[key] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)) if when else None,
            "type": event.get("type"),
            "reason": event.get("reason"),
            "object": f"{involved.get('kind')}/{involved.get('name')}",
            "message": message,
            "count": count,
        }
    return list(rows.values())[-WARNING_EVENTS:]


def summarise(tool: str, namespace: str, snapshot: Snapshot, *, type_name: str | None, now: float,
              problems: list | None = None, started_at: str | None = None, since: float | None = None,
              mem_limit=None, max_memory=None) -> StatusResult:
    """The StatusResult of a snapshot (pure)."""
    if problems is None:
        problems = problems_of(snapshot, now=now, since=since, mem_limit=mem_limit, max_memory=max_memory,
                               started_at=started_at)
    current, _ = current_pods(snapshot, started_at)
    created = [diagnose.parse_time((p.get("metadata") or {}).get("creationTimestamp")) for p in current
               if not diagnose.pod_ready(p)]
    if any(c is not None and now - c > STUCK_AFTER for c in created):
        # not ready for minutes: what was seen is no longer "still starting"
        problems = [replace(p, certain=True) for p in problems]
    state, replicas = classify(snapshot, problems, started_at)
    result = StatusResult(tool=tool, namespace=namespace, state=state, type=type_name, replicas=replicas)
    result.pods = sorted((diagnose.pod_info(p, now) for p in snapshot.pods), key=lambda p: p.name)
    result.urls = _urls(snapshot.routes)
    result.routes = [route_state(r) for r in snapshot.routes if r]
    if snapshot.deployment is not None:
        result.image, result.runner, result.resources = _resources(snapshot.deployment)
        result.started_at = started_at or template_started_at(snapshot.deployment)
    if state == "degraded" and replicas["desired"] == 0:
        problems = [diagnose.Problem("scaledtozero", "the Deployment is scaled to 0 pods, so nothing serves",
                                     hint="run 'webservice restart' to start it again", certain=True)]
    if state not in ("running", "stopped"):
        result.problems = list(problems)
        result.events = _event_rows(snapshot, since)
    result.exit_code = {"running": EXIT_OK, "stopped": EXIT_NOT_RUNNING}.get(state, EXIT_UNHEALTHY)
    return result


def pick_deployment(items: list, tool: str) -> dict | None:
    if not items:
        return None
    return next((d for d in items if (d.get("metadata") or {}).get("name") == tool), items[0])


def list_routes(cluster, kind: str, label: str) -> list:
    """The webservice's routing objects of ``kind``; none if the cluster does not serve
    that kind (HTTPRoute without the Gateway API: 404) or the tool may not read it (403)."""
    from webservice.errors import ForbiddenError

    try:
        return cluster.list(kind, label_selector=label, missing_ok=True)[0]
    except ForbiddenError:
        if kind == "Ingress":
            raise
        return []


def routing_kinds(config) -> tuple[str, ...]:  # noqa: ARG001 - every mode: a tool may have switched
    """The routing kinds the webservice may own, whatever the configured mode: an object of
    another mode left by an earlier start is still shown, and deleted by the next start."""
    return ("Ingress", "HTTPRoute")


def read(cluster, tool: str, *, config=None, type_name: str | None = None, now: float | None = None,
         with_logs: bool = True) -> StatusResult:
    """Read the webservice's state from the cluster and explain it."""
    label = selector()
    deployments, _ = cluster.list("Deployment", label_selector=label)
    snapshot = Snapshot(deployment=pick_deployment(deployments, tool))
    if snapshot.deployment is not None:
        snapshot.pods, _ = cluster.list("Pod", label_selector=label)
        for kind in routing_kinds(config):
            snapshot.routes += list_routes(cluster, kind, label)
    now = time.time() if now is None else now
    result = summarise(tool, cluster.namespace, snapshot, type_name=type_name, now=now, problems=[])
    if result.state in ("running", "stopped"):
        return result
    # something is wrong: the events and replica sets say why
    snapshot.events = cluster.events()
    snapshot.replicasets, _ = cluster.list("ReplicaSet", label_selector=label)
    result = summarise(tool, cluster.namespace, snapshot, type_name=type_name, now=now,
                       mem_limit=_memory_limit(snapshot.deployment))
    if with_logs:
        result.problems = attach_logs(cluster, result.problems)
    return result


def _memory_limit(deployment: dict | None):
    from webservice.model.quantity import parse

    if not deployment:
        return None
    _, _, resources = _resources(deployment)
    value = ((resources or {}).get("limits") or {}).get("memory")
    try:
        return parse(value) if value is not None else None
    except Exception:  # noqa: BLE001 - a strange value only costs the hint
        return None


def attach_logs(cluster, problems: list) -> list:
    """Add the last log lines of the crashed container to the first problem that wants them."""
    from dataclasses import replace

    out = list(problems)
    for index, problem in enumerate(out):
        if not problem.wants_log or not problem.pod:
            continue
        previous = problem.code in ("crashloop", "oom") or problem.code == "neverready" and problem.certain
        text = cluster.pod_log(problem.pod, container=problem.container, previous=previous,
                               tail_lines=LOG_LINES, timestamps=False)
        if not text.strip() and previous:
            text = cluster.pod_log(problem.pod, container=problem.container, tail_lines=LOG_LINES, timestamps=False)
        lines = tuple(line for line in text.splitlines() if line.strip())[-LOG_LINES:]
        out[index] = replace(problem, log_lines=lines)
        break
    return out
