"""What commands return: plain dataclasses, drawn by ``webservice.ui.output``.

A core function never prints its outcome; it returns one of these. Each result knows
its exit code; ``output`` draws it for people (text, tables) or scripts (``--json``).

The one exception to "all results live here" is ``--dry-run``'s ``RenderResult``, in
``webservice.actions.render``: building these six classes costs about 6 ms, and ``--dry-run`` has a
0.15 s budget (bench/) in which it must not pay for the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field


# --- start / stop / restart / status (webservice.actions.lifecycle) ------------------------------

STATES = ("running", "starting", "degraded", "crashing", "stopped")
STATUS_SCHEMA = 1


@dataclass
class StatusResult:
    """``webservice status``; ``--json`` prints :meth:`as_dict`, a stable object (schema 1):

    ``schema``
        1; raised only when a field changes meaning or goes away (new fields may appear).
    ``tool``, ``namespace``
        the tool name and its Kubernetes namespace (``tool-<tool>``).
    ``state``
        ``running`` (every wanted pod is ready, rollout complete), ``starting`` (pods are
        coming up or a rollout is in progress, no failure seen), ``degraded`` (some pods
        serve but a problem is seen, or it is scaled to 0), ``crashing`` (no pod serves and
        a failure is certain: crash loop, image pull, quota...), ``stopped`` (no Deployment).
    ``healthy``
        true exactly when ``state`` is ``running``.
    ``type``
        the webservice type recorded in service.manifest (``python3.11``...), or null.
    ``image``, ``runner``
        the container image, and the ``webservice-runner --type`` (null for buildservice).
    ``replicas``
        ``{"desired", "ready", "updated"}``: pods wanted, pods ready (any template),
        ready pods of the current template.
    ``pods``
        list of ``{"name", "phase", "ready", "restarts", "age_seconds", "state",
        "last_termination", "started_at", "terminating", "node"}``; ``state`` is
        ``running``, ``pending[: reason]``, ``waiting: <reason>`` or ``terminated: <reason>``;
        ``last_termination`` is like ``"Error (exit code 1)"`` or null.
    ``urls``
        the public URLs routed to it (from its Ingress/HTTPRoute objects).
    ``routes``
        its routing objects: ``{"kind", "name", "hostnames", "parent", "state", "reason",
        "message", "conditions"}``; for an HTTPRoute ``state`` is ``attached`` (the Gateway
        ``parent`` accepted it and resolved its backend for its current generation),
        ``refused`` (``reason``/``message`` of the False condition) or ``unconfirmed`` (no
        controller wrote a status for it); ``conditions`` are the API's conditions of that
        parent entry. An Ingress is ``unchecked``.
    ``resources``
        ``{"limits": {"cpu", "memory"}, "requests": {"cpu", "memory"}}`` as Kubernetes
        quantities, or null when stopped.
    ``started_at``
        the ``toolforge.org/started-at`` time of the current pod template (UTC ISO 8601).
    ``problems``
        list of ``{"code", "message", "hint", "certain", "pod", "container", "exit_code",
        "log", "pods"}``; ``code`` is one of ``crashloop``, ``oom``, ``imagepull``,
        ``failedcreate``, ``unschedulable``, ``neverready``, ``scaledtozero``, and on a start
        ``routerefused`` (the Gateway did not accept the HTTPRoute) or ``routeunconfirmed``
        (no Gateway controller confirmed it in time).
    ``events``
        recent Warning events about its objects when not healthy: ``{"time", "type",
        "reason", "object", "message", "count"}``; empty when healthy.
    ``exit_code``
        0 running, 3 stopped, 4 any other state (the command's exit status).
    """

    tool: str
    namespace: str
    state: str
    type: str | None = None
    image: str | None = None
    runner: str | None = None
    replicas: dict = field(default_factory=lambda: {"desired": 0, "ready": 0, "updated": 0})
    pods: list = field(default_factory=list)  # PodInfo
    urls: list = field(default_factory=list)
    routes: list = field(default_factory=list)  # routes.RouteState
    resources: dict | None = None
    started_at: str | None = None
    problems: list = field(default_factory=list)  # diagnose.Problem
    events: list = field(default_factory=list)
    exit_code: int = 0

    @property
    def healthy(self) -> bool:
        return self.state == "running"

    def as_dict(self) -> dict:
        return {
            "schema": STATUS_SCHEMA,
            "tool": self.tool,
            "namespace": self.namespace,
            "state": self.state,
            "healthy": self.healthy,
            "type": self.type,
            "image": self.image,
            "runner": self.runner,
            "replicas": dict(self.replicas),
            "pods": [p.as_dict() for p in self.pods],
            "urls": list(self.urls),
            "routes": [r.as_dict() for r in self.routes],
            "resources": self.resources,
            "started_at": self.started_at,
            "problems": [p.as_dict() for p in self.problems],
            "events": list(self.events),
            "exit_code": self.exit_code,
        }


@dataclass
class StartResult:
    """``start`` and ``restart``. ``outcome``: ``ready`` (serving), ``submitted``
    (``--no-wait``), ``failed`` (a certain problem, exit 5), ``timeout`` (not ready within
    ``--timeout``, exit 5), ``interrupted`` (Ctrl-C while waiting, exit 130: the objects
    were applied and keep starting).

    ``--json`` prints :meth:`as_dict`: ``{"action", "tool", "outcome", "type", "url",
    "replicas", "elapsed_seconds", "message", "problems", "status", "exit_code"}`` where
    ``problems`` are as in :class:`StatusResult` and ``status`` is the status object when
    waiting ended (or null).
    """

    action: str
    tool: str
    outcome: str
    type: str | None = None
    url: str | None = None
    replicas: int | None = None
    elapsed: float = 0.0
    message: str = ""
    problems: list = field(default_factory=list)
    status: StatusResult | None = None
    changes: list = field(default_factory=list)  # e.g. "memory 512Mi -> 1Gi"
    exit_code: int = 0

    def as_dict(self) -> dict:
        return {
            "action": self.action,
            "tool": self.tool,
            "outcome": self.outcome,
            "type": self.type,
            "url": self.url,
            "replicas": self.replicas,
            "elapsed_seconds": round(self.elapsed, 2),
            "message": self.message,
            "changes": list(self.changes),
            "problems": [p.as_dict() for p in self.problems],
            "status": self.status.as_dict() if self.status is not None else None,
            "exit_code": self.exit_code,
        }


@dataclass
class StopResult:
    """``stop``. ``--json``: ``{"tool", "was_running", "deleted", "pods_gone",
    "elapsed_seconds", "message", "exit_code"}``; ``deleted`` lists ``Kind/name``."""

    tool: str
    was_running: bool
    deleted: list = field(default_factory=list)
    pods_gone: bool = True
    elapsed: float = 0.0
    message: str = ""
    exit_code: int = 0

    def as_dict(self) -> dict:
        return {
            "tool": self.tool,
            "was_running": self.was_running,
            "deleted": list(self.deleted),
            "pods_gone": self.pods_gone,
            "elapsed_seconds": round(self.elapsed, 2),
            "message": self.message,
            "exit_code": self.exit_code,
        }


# --- logs and shell (issue 5) ---


@dataclass
class LogsResult:
    """``logs``: the lines themselves were printed as they came (``output.log_printer``);
    this says what was read, for the closing notes."""

    pods: list[str] = field(default_factory=list)  # pods whose logs were read at the start
    lines: int = 0  # lines printed
    notes: list[str] = field(default_factory=list)  # said on stderr (not started, ...)
    previous: bool = False
    follow: bool = False
    interrupted: bool = False  # a follow ended by Ctrl-C (its normal end)
    exit_code: int = 0


@dataclass
class ShellResult:
    """``shell``: the session ran on the terminal; its exit status is the command's."""

    pod: str
    exit_code: int = 0
    deleted: bool = True  # the pod is gone afterwards (deleted by kubectl or by us)
    cleanup_problem: str | None = None  # why it may be left behind
    interrupted: bool = False


# --- types ---


@dataclass
class TypesResult:
    """``types``. ``--json``: ``{"source", "fetched_at", "types": [{"name", "runner", "image",
    "deprecated", "replacement", "aliases", "profile"}]}`` (``catalogue.TypeInfo``); ``source`` is ``cluster``, ``cache`` or
    ``builtin``; ``fetched_at`` when the cluster's list was read (Unix time) or null."""

    types: list
    source: str
    fetched_at: float | None = None
    exit_code: int = 0

    def as_dict(self) -> dict:
        return {"source": self.source, "fetched_at": self.fetched_at, "types": [t.as_dict() for t in self.types]}
