"""Why a webservice does not serve: pods, events and replica sets in, reasons out.

Pure functions over the plain dicts the API returns (no I/O, no clock: ``now`` is an
argument), so that every rule is tested with table fixtures. The lifecycle calls
:func:`diagnose` while waiting (to stop as soon as a failure is certain) and ``status``
calls it to explain an unhealthy state.

Each :class:`Problem` says, in a tool maintainer's words, what is wrong and what to do:

==============  ==========================================================  =========
code            seen as                                                     certain
==============  ==========================================================  =========
crashloop       container exits again and again (exit code, restarts)       CrashLoopBackOff or 2+ restarts
oom             container killed for using more memory than its limit       at once
imagepull       ErrImagePull / ImagePullBackOff / InvalidImageName          back-off, or "not found"
failedcreate    ReplicaSet ``FailedCreate`` (quota, LimitRange): server's   not while pods of the
                message                                                     webservice terminate
unschedulable   pod Pending, ``Unschedulable`` / ``FailedScheduling``       after ``unschedulable_grace`` s
neverready      running but its probe fails (``Unhealthy``), or restarted   when killed for a failed
                for a failed liveness/startup probe                         probe
==============  ==========================================================  =========

A quota ``FailedCreate`` is certain at once only when the request alone exceeds the
quota (a LimitRange refusal always is); during a restart the old pods still count until
they are gone, so a refusal then is transient and only final if it persists
``FAILED_CREATE_GRACE`` s after the last of them went.

A problem that is not certain is still reported (``status``, or when the wait times
out) but does not end the wait. Reading the crashed container's log is the caller's job
(:attr:`Problem.wants_log` says which pod/container); this module only words things.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from webservice.conventions import PORT
from webservice.health.policy import parse_denial
from webservice.text import parse_time

if TYPE_CHECKING:  # only in annotations: reading a status need not import decimal
    from decimal import Decimal

ORDER = ("failedcreate", "imagepull", "oom", "crashloop", "unschedulable", "neverready")
PULL_ERRORS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable")


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    hint: str | None = None
    certain: bool = False
    pod: str | None = None
    container: str | None = None
    exit_code: int | None = None
    wants_log: bool = False  # the last lines of the previous container's log would help
    log_lines: tuple[str, ...] = ()
    count: int = 1  # pods showing it

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "hint": self.hint, "certain": self.certain,
                "pod": self.pod, "container": self.container, "exit_code": self.exit_code,
                "log": list(self.log_lines), "pods": self.count}


@dataclass(frozen=True)
class PodInfo:
    """One pod as ``status`` shows it."""

    name: str
    phase: str
    ready: bool
    restarts: int
    age: float | None  # seconds
    state: str  # running, waiting: <reason>, terminated: <reason>, pending
    last_termination: str | None  # "Error (exit code 1)", "OOMKilled (exit code 137)"
    started_at: str | None  # the toolforge.org/started-at of its template
    terminating: bool = False
    node: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict:
        return {"name": self.name, "phase": self.phase, "ready": self.ready, "restarts": self.restarts,
                "age_seconds": None if self.age is None else int(self.age), "state": self.state,
                "last_termination": self.last_termination, "started_at": self.started_at,
                "terminating": self.terminating, "node": self.node}


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _statuses(pod: dict) -> list[dict]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


def _condition(pod: dict, kind: str) -> dict | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return None


def pod_ready(pod: dict) -> bool:
    if _meta(pod).get("deletionTimestamp"):
        return False
    condition = _condition(pod, "Ready")
    return bool(condition and condition.get("status") == "True")


def _termination(state: dict | None) -> tuple[str, int | None] | None:
    term = (state or {}).get("terminated")
    if not term:
        return None
    return str(term.get("reason") or "Error"), term.get("exitCode")


def _describe_termination(term: tuple[str, int | None] | None) -> str | None:
    if term is None:
        return None
    reason, code = term
    return f"{reason} (exit code {code})" if code is not None else reason


def pod_info(pod: dict, now: float, started_at_key: str = "toolforge.org/started-at") -> PodInfo:
    meta = _meta(pod)
    status = pod.get("status") or {}
    containers = _statuses(pod)
    restarts = sum(int(c.get("restartCount") or 0) for c in containers)
    state = "pending"
    last = None
    for c in containers:
        current = c.get("state") or {}
        if "waiting" in current:
            state = f"waiting: {(current['waiting'] or {}).get('reason') or 'unknown'}"
        elif "terminated" in current:
            state = f"terminated: {_describe_termination(_termination(current))}"
        elif "running" in current and state == "pending":
            state = "running"
        last = _describe_termination(_termination(c.get("lastState"))) or last
    if not containers:
        scheduled = _condition(pod, "PodScheduled")
        if scheduled and scheduled.get("status") == "False":
            state = f"pending: {scheduled.get('reason') or 'not scheduled'}"
    created = parse_time(meta.get("creationTimestamp"))
    annotations = meta.get("annotations") or {}
    return PodInfo(
        name=meta.get("name", "?"),
        phase=status.get("phase") or "Pending",
        ready=pod_ready(pod),
        restarts=restarts,
        age=None if created is None else max(0.0, now - created),
        state=state,
        last_termination=last,
        started_at=annotations.get(started_at_key),
        terminating=bool(meta.get("deletionTimestamp")),
        node=(pod.get("spec") or {}).get("nodeName"),
    )


def event_time(event: dict) -> float | None:
    series = event.get("series") or {}
    return (parse_time(event.get("lastTimestamp")) or parse_time(series.get("lastObservedTime"))
            or parse_time(event.get("eventTime")) or parse_time(event.get("firstTimestamp"))
            or parse_time(_meta(event).get("creationTimestamp")))


def relevant_events(events: list[dict], uids: set[str], since: float | None = None,
                    warnings_only: bool = False) -> list[dict]:
    """Events about the objects with these uids, not older than ``since``, oldest first."""
    out = []
    for event in events:
        involved = event.get("involvedObject") or event.get("regarding") or {}
        if involved.get("uid") not in uids:
            continue
        if warnings_only and event.get("type") != "Warning":
            continue
        when = event_time(event)
        if since is not None and when is not None and when < since - 1:
            continue
        out.append(event)
    return sorted(out, key=lambda e: event_time(e) or 0)


def format_memory(value) -> str:
    from webservice.model.quantity import format_memory as fmt  # only when a pod ran out of memory

    return fmt(value)


def _memory_hint(limit: Decimal | None, max_memory: Decimal | None) -> str:
    if limit is None:
        return "give it more memory, e.g. 'webservice restart --mem 1Gi'"
    more = limit * 2
    if max_memory is not None and more > max_memory:
        more = max_memory
    if more <= limit:
        return (f"it already has the most memory the namespace allows ({format_memory(limit)}); "
                "make the app use less")
    return f"give it more memory: 'webservice restart --mem {format_memory(more)}'"


def _pod_problems(pod: dict, events: list[dict], now: float, mem_limit, max_memory,
                  unschedulable_grace: float) -> list[Problem]:
    meta = _meta(pod)
    name = meta.get("name")
    out: list[Problem] = []
    if meta.get("deletionTimestamp"):
        return out
    scheduled = _condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        since = parse_time(scheduled.get("lastTransitionTime"))
        waited = 0.0 if since is None else now - since
        message = scheduled.get("message") or "no node has room for it"
        tries = sum(_count(e) for e in events if e.get("reason") == "FailedScheduling")
        out.append(Problem(
            "unschedulable",
            f"Kubernetes cannot find a node to run the pod: {_tail(message)}",
            hint="ask for less cpu or memory (--cpu, --mem), or try again later: the cluster may be full",
            certain=waited >= unschedulable_grace or tries >= 2, pod=name,
        ))
    probe_kills = [e for e in events if e.get("reason") == "Killing"
                   and re.search(r"failed (liveness|startup) probe", e.get("message") or "")]
    unhealthy = [e for e in events if e.get("reason") == "Unhealthy"]
    for c in (pod.get("status") or {}).get("containerStatuses") or []:
        container = c.get("name")
        state = c.get("state") or {}
        restarts = int(c.get("restartCount") or 0)
        waiting = state.get("waiting") or {}
        reason = waiting.get("reason")
        if reason in PULL_ERRORS:
            detail = waiting.get("message") or reason
            pulled = [e for e in events if e.get("reason") == "Failed" and "Failed to pull image" in (e.get("message") or "")]
            if pulled:
                detail = pulled[-1].get("message")
            not_there = bool(re.search(r"not found|manifest unknown|unauthorized|denied|invalid reference", detail or "", re.I))
            out.append(Problem(
                "imagepull",
                f"the image {c.get('image') or ''} cannot be pulled ({reason}): {_pull_reason(detail)}",
                hint="check the image name; for a buildservice image check that the build succeeded "
                "('toolforge build show') and that --buildservice-image names it",
                certain=reason != "ErrImagePull" or not_there, pod=name, container=container,
            ))
            continue
        term = _termination(state) or _termination(c.get("lastState"))
        if term and term[0] == "OOMKilled":
            out.append(Problem(
                "oom",
                f"the container ran out of memory: it used more than its limit"
                f"{' of ' + format_memory(mem_limit) if mem_limit is not None else ''} and was killed "
                f"(OOMKilled, exit code {term[1]}), restarted {restarts} time(s)",
                hint=_memory_hint(mem_limit, max_memory),
                certain=True, pod=name, container=container, exit_code=term[1], wants_log=True,
            ))
            continue
        killed_by_probe = bool(probe_kills) and (restarts >= 1 or reason == "CrashLoopBackOff")
        if killed_by_probe:
            last_failure = unhealthy[-1].get("message") if unhealthy else probe_kills[-1].get("message")
            out.append(Problem(
                "neverready",
                f"the app never answered its health check, so Kubernetes restarted it {restarts} time(s) "
                f"({_tail(last_failure)})",
                hint=f"make sure the app listens on port {PORT} ($PORT) and that its --health-check-path answers 200",
                certain=True, pod=name, container=container, wants_log=True,
            ))
            continue
        if reason == "CrashLoopBackOff" or (term and restarts >= 1):
            code = term[1] if term else None
            what = (f"it exited with code {code} ({term[0]})" if term and code not in (None, 0)
                    else "it exited (code 0) instead of serving" if code == 0 else "it keeps exiting")
            hint = "look at the log lines below, fix the app, then 'webservice restart'; 'webservice logs --previous' shows more"
            if code == 0:
                hint = f"a webservice must keep running and answer on port {PORT} ($PORT); " + hint
            out.append(Problem(
                "crashloop",
                f"the app keeps crashing: {what}; restarted {restarts} time(s)",
                hint=hint, certain=reason == "CrashLoopBackOff" or restarts >= 2,
                pod=name, container=container, exit_code=code, wants_log=True,
            ))
            continue
        if "running" in state and not c.get("ready") and unhealthy:
            out.append(Problem(
                "neverready",
                f"the app runs but does not answer its health check yet ({_tail(unhealthy[-1].get('message'))})",
                hint=f"make sure the app listens on port {PORT} ($PORT)"
                     " and, with --health-check-path, that the path answers 200",
                certain=False, pod=name, container=container, wants_log=True,
            ))
    return out


def _count(event: dict) -> int:
    return int(event.get("count") or (event.get("series") or {}).get("count") or 1)


def _pull_reason(detail: str | None) -> str:
    """The telling end of a pull error: 'rpc error: ... desc = failed to ...: x: not found' -> 'not found'."""
    text = " ".join(str(detail or "").split())
    if "desc = " in text:
        last = text.rsplit(": ", 1)[-1].strip()
        if last and len(last) < 120:
            return last
    return _tail(text, 200)


def _tail(text: str | None, limit: int = 240) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: how long a quota refusal must persist after the last terminating pod went before it
#: counts as final (the quota's usage is recounted asynchronously on a real cluster)
FAILED_CREATE_GRACE = 3.0
_QUOTA_PART = re.compile(r"(requested|used|limited): ([^\s,]+=[^\s,]+(?:,[^\s,]+=[^\s,]+)*)")


def _quota_parts(message: str) -> dict[str, dict[str, str]]:
    """{'requested': {'pods': '1'}, 'used': {...}, 'limited': {...}} of a quota refusal."""
    out: dict[str, dict[str, str]] = {}
    for part, values in _QUOTA_PART.findall(message):
        out[part] = dict(item.split("=", 1) for item in values.split(","))
    return out


def request_alone_exceeds(message: str) -> bool:
    """Whether a quota refusal asks for more than the quota allows even when nothing else
    runs (then no waiting can help)."""
    from webservice.model.quantity import parse

    parts = _quota_parts(message)
    requested, limited = parts.get("requested") or {}, parts.get("limited") or {}
    for key, value in requested.items():
        if key not in limited:
            continue
        try:
            if parse(value) > parse(limited[key]):
                return True
        except Exception:  # noqa: BLE001 - an unreadable value decides nothing
            continue
    return False


def _failed_create(replicasets: list[dict], events: list[dict], rolling: bool = False,
                   after: float | None = None, grace: float = FAILED_CREATE_GRACE) -> list[Problem]:
    """FailedCreate of the given replica sets.

    Certain at once when it cannot resolve: a LimitRange refusal, or a quota refusal whose
    request alone exceeds the quota. A quota refusal is transient while pods of the
    webservice are terminating (``rolling``: they still count against the quota); once
    the last of them went (at ``after``) it is certain only if it persists: refused again
    at least ``grace`` seconds later. With no terminating pods seen at all it is certain.
    """
    out = []
    for rs in replicasets:
        uid = _meta(rs).get("uid")
        failures = [e for e in events if (e.get("involvedObject") or {}).get("uid") == uid
                    and e.get("reason") == "FailedCreate" and e.get("type") == "Warning"]
        if not failures:
            continue
        wanted = int((rs.get("spec") or {}).get("replicas") or 0)
        have = int((rs.get("status") or {}).get("replicas") or 0)
        if wanted and have >= wanted:
            continue  # it caught up since
        message = failures[-1].get("message") or "the pods could not be created"
        denial = parse_denial(message)
        if denial is not None:  # a policy (Kyverno) refusal: certain, and said in one line
            out.append(Problem("failedcreate", denial.one_line(),
                               hint="this version of webservice may not match the cluster's policy: report it "
                                    "on #wikimedia-cloud with 'webservice --debug start'", certain=True))
            continue
        quota = "exceeded quota" in message
        limit_range = not quota and ("maximum" in message or "minimum" in message or "LimitRange" in message)
        if quota:
            hint = ("the tool's namespace quota is used up: ask for less (--cpu, --mem, --replicas) "
                    "or stop other jobs ('toolforge jobs list')")
        elif limit_range:
            hint = "the namespace's per-container limits do not allow this: choose --cpu/--mem within them"
        else:
            hint = "the cluster refused to create the pods; see the message"
        when = event_time(failures[-1])
        if limit_range or (quota and request_alone_exceeds(message)):
            certain = True
        elif rolling:
            certain = False
        elif after is not None:
            certain = when is not None and when >= after + grace
        else:
            certain = True
        out.append(Problem("failedcreate", f"Kubernetes cannot create the pods: {_tail(message, 400)}",
                           hint=hint, certain=certain))
    return out


def diagnose(pods: list[dict], events: list[dict], replicasets: list[dict] | None = None, *,
             now: float | None = None, since: float | None = None, mem_limit: Decimal | None = None,
             max_memory: Decimal | None = None, unschedulable_grace: float = 5.0, rolling: bool = False,
             failed_create_after: float | None = None) -> list[Problem]:
    """The problems keeping the webservice's pods from being ready, most telling first.

    ``pods`` and ``replicasets`` are the webservice's own (the caller selected them by
    label); ``events`` may be every event of the namespace: only those about these
    objects and not older than ``since`` are used. One problem per code, naming one pod
    and counting the pods that show it. ``rolling``: pods of an older template are still
    there, or pods of the webservice are terminating (a quota refusal may only last until
    they are gone); ``failed_create_after``: when the last of them went.
    """
    now = time.time() if now is None else now
    replicasets = replicasets or []
    uids = {_meta(o).get("uid") for o in list(pods) + list(replicasets)} - {None}
    mine = relevant_events(events, uids, since)
    found: dict[str, Problem] = {}
    for problem in _failed_create(replicasets, mine, rolling, failed_create_after):
        found.setdefault(problem.code, problem)
    for pod in pods:
        pod_events = [e for e in mine if (e.get("involvedObject") or {}).get("uid") == _meta(pod).get("uid")]
        for problem in _pod_problems(pod, pod_events, now, mem_limit, max_memory, unschedulable_grace):
            if problem.code in found:
                earlier = found[problem.code]
                keep = earlier if earlier.certain or not problem.certain else problem
                found[problem.code] = replace(keep, count=earlier.count + 1)
            else:
                found[problem.code] = problem
    return sorted(found.values(), key=lambda p: (not p.certain, ORDER.index(p.code)))


def first_certain(problems: list[Problem]) -> Problem | None:
    return next((p for p in problems if p.certain), None)
