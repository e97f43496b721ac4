"""``webservice logs``: every pod's log, read concurrently and merged in time order.

Each line is printed as ``2026-11-26T10:00:00 [pod] message`` (UTC, whole seconds; the
order is decided on the kubelet's full nanosecond timestamps) or, with ``--json``, as one
object per line: ``{"time", "pod", "container", "message"}`` with the full timestamp.

Choices
    ``--last N``
        the last N lines of the webservice as a whole: each pod is asked for its last N
        lines (enough to contain the overall last N), the merge keeps the newest N. With
        ``-f`` this applies to the lines shown before following starts.
    ``--since D``
        ``30s``, ``5m``, ``2h``, ``1d`` or a sum such as ``1h30m``.
    ``--previous``
        the output of the previous (crashed) instance of each container; pods that never
        restarted are left out. It cannot be combined with ``-f`` (that run has ended).
    ``-f``
        first the merged history as above, then every new line as it comes. Pods are
        watched by the webservice's labels: a pod that appears (restart, crash loop,
        scale up) is followed from its first line, a new instance of a restarting
        container too, and pods that go are dropped. A log stream that drops while its
        container still runs is resumed from its last line (``sinceTime``), without gaps
        or repeats: lines are keyed on their timestamps. Ctrl-C ends it with exit 0.

Not running (no Deployment, no pods): exit 3. A Deployment without pods: exit 4 (see
``webservice status``), or with ``-f`` wait for its pods. No lines at all is not an
error: it is said on stderr, exit 0.

Lines go to a *sink* as they are ready (``output.log_printer`` by default), so that
nothing is collected during ``-f``; the function returns a :class:`LogsResult`.
"""

from __future__ import annotations

import calendar
import heapq
import queue
import re
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

from webservice.errors import ClusterError, InputError, NotFoundError, NotRunningError, UnhealthyError, UsageError
from webservice.ui.results import LogsResult

MAX_READERS = 6  # concurrent log reads (the cluster client keeps 8 connections)
RECONCILE_SECONDS = 1.0
MAX_RESUME_BACKOFF = 10.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?:\d+[smhd])+")
_STAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d) ?"
)


# --- pure helpers ------------------------------------------------------------------------


def parse_since(text: str) -> int:
    """``30s``, ``5m``, ``2h``, ``1d``, ``1h30m`` -> seconds (> 0); InputError otherwise."""
    value = (text or "").strip().lower()
    if not _DURATION.fullmatch(value):
        raise InputError(
            f"--since {text!r} is not a duration",
            hint="use a number with a unit: 30s, 5m, 2h, 1d (or a sum such as 1h30m)",
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)([smhd])", value))
    if seconds <= 0:
        raise InputError(f"--since {text!r} is zero", hint="give a duration of at least 1s")
    return seconds


@dataclass(frozen=True)
class LogLine:
    """One line of a container's log, with its kubelet timestamp."""

    ns: int  # nanoseconds since the epoch (UTC): the merge order
    time: str  # RFC 3339 in UTC with the kubelet's fraction, e.g. 2026-11-26T10:00:00.5Z
    pod: str
    container: str
    message: str

    @property
    def second(self) -> str:
        """The time shown to people: ``2026-11-26T10:00:00`` (UTC)."""
        return self.time[:19]

    def as_json(self) -> dict:
        return {"time": self.time, "pod": self.pod, "container": self.container, "message": self.message}


def parse_stamp(text: str) -> tuple[int, str, int] | None:
    """(ns since epoch, normalised UTC RFC 3339, length of the prefix) or None."""
    match = _STAMP.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    seconds = calendar.timegm((int(year), int(month), int(day), int(hour), int(minute), int(second)))
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    fraction = fraction or ""
    ns = seconds * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)
    shown = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    shown += (("." + fraction) if fraction else "") + "Z"
    return ns, shown, match.end()


def parse_line(raw: str, pod: str, container: str, previous: LogLine | None = None) -> LogLine:
    """A ``timestamps=true`` log line -> LogLine. A line without a timestamp (rare: the
    kubelet's own notes) takes the time of the line before it."""
    if raw.endswith("\r"):
        raw = raw[:-1]
    stamp = parse_stamp(raw)
    if stamp is None:
        ns, shown = (previous.ns, previous.time) if previous else (0, "1970-01-01T00:00:00Z")
        return LogLine(ns, shown, pod, container, raw)
    ns, shown, end = stamp
    return LogLine(ns, shown, pod, container, raw[end:])


def parse_log(text: str, pod: str, container: str) -> list[LogLine]:
    """A whole log answer (``timestamps=true``) -> its lines, in order."""
    if not text:
        return []
    raws = text.split("\n")
    if raws and raws[-1] == "":
        raws.pop()
    lines: list[LogLine] = []
    for raw in raws:
        lines.append(parse_line(raw, pod, container, lines[-1] if lines else None))
    return lines


def merge(streams: Iterable[list[LogLine]], last: int | None = None) -> list[LogLine]:
    """Merge per-container streams (each in time order) by time; equal times keep the
    order of the streams. ``last``: keep only the newest ``last`` lines."""
    merged = list(heapq.merge(*streams, key=lambda line: line.ns))
    if last is not None:
        merged = merged[-last:] if last > 0 else []
    return merged


@dataclass
class Seen:
    """What has been shown of one container: drops repeats when streams overlap
    (a resumed stream from ``sinceTime``, two streams of the same instance)."""

    last_ns: int | None = None
    last_time: str | None = None
    at_last: set = field(default_factory=set)

    def note(self, line: LogLine) -> None:
        if self.last_ns is None or line.ns > self.last_ns:
            self.last_ns, self.last_time, self.at_last = line.ns, line.time, {line.message}
        elif line.ns == self.last_ns:
            self.at_last.add(line.message)

    def is_new(self, line: LogLine) -> bool:
        if self.last_ns is None or line.ns > self.last_ns:
            return True
        return line.ns == self.last_ns and line.message not in self.at_last


def container_states(pod: dict) -> dict[str, tuple[bool, bool, int, str]]:
    """Per container of the pod: (has logs now, has a previous instance, restart count,
    why not started)."""
    spec = pod.get("spec") or {}
    statuses = {s.get("name"): s for s in ((pod.get("status") or {}).get("containerStatuses") or [])}
    states = {}
    for container in spec.get("containers") or []:
        name = container.get("name")
        status = statuses.get(name) or {}
        state = status.get("state") or {}
        last = status.get("lastState") or {}
        started = "running" in state or "terminated" in state or "terminated" in last
        waiting = (state.get("waiting") or {}).get("reason") or (pod.get("status") or {}).get("phase") or "Pending"
        states[name] = (started, "terminated" in last, int(status.get("restartCount") or 0), waiting)
    return states


def _name(pod: dict) -> str:
    return (pod.get("metadata") or {}).get("name") or ""


def _running_instance(pod: dict, container: str) -> tuple[bool, int]:
    """(whether the container's current instance can be streamed, its restart count)."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            state = status.get("state") or {}
            return ("running" in state or "terminated" in state), int(status.get("restartCount") or 0)
    return False, 0


# --- reading -------------------------------------------------------------------------------


def _gather(functions: list[Callable[[], object]], workers: int = MAX_READERS) -> list:
    """Run the functions in daemon threads (so that Ctrl-C never waits for a read);
    return their results in order; re-raise the first exception."""
    results: list = [None] * len(functions)
    errors: list[BaseException] = []
    jobs: queue.Queue = queue.Queue()
    for index in range(len(functions)):
        jobs.put(index)
    done = threading.Semaphore(0)

    def work() -> None:
        while True:
            try:
                index = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                results[index] = functions[index]()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                errors.append(exc)
            finally:
                done.release()

    for _ in range(min(workers, len(functions))):
        threading.Thread(target=work, daemon=True, name="webservice-log-reader").start()
    for _ in functions:
        done.acquire()
    if errors:
        raise errors[0]
    return results


class _Reader:
    """One ``webservice logs`` run against a cluster."""

    def __init__(self, cluster, request, sink, since_seconds: int | None):
        self.cluster = cluster
        self.request = request
        self.sink = sink
        self.since_seconds = since_seconds
        self.selector = _selector()
        self.notes: list[str] = []
        self.count = 0
        self.seen: dict[tuple[str, str], Seen] = {}
        self.optioned: set[tuple[str, str]] = set()  # followed with --last/--since

    def emit(self, line: LogLine) -> None:
        self.seen.setdefault((line.pod, line.container), Seen()).note(line)
        self.count += 1
        self.sink.line(line)

    def read_once(self, pods: list[dict]) -> tuple[list[str], dict[tuple[str, str], int]]:
        """Read and print the merged history; return the pods read and, per container
        read, the restart count of the instance read."""
        request = self.request
        targets: list[tuple[str, str, int]] = []
        not_started: list[str] = []
        for pod in pods:
            for container, (started, has_previous, restarts, waiting) in container_states(pod).items():
                if request.previous and not has_previous:
                    continue
                if not request.previous and not started:
                    not_started.append(f"{_name(pod)} ({waiting})")
                    continue
                targets.append((_name(pod), container, restarts))
        if not_started:
            self.notes.append("not started yet, no logs: " + ", ".join(not_started))
        if request.previous and not targets:
            self.notes.append("no pod of the webservice has a previous (restarted) container")

        def reader(pod: str, container: str) -> Callable[[], list[LogLine]]:
            def read() -> list[LogLine]:
                try:
                    text = self.cluster.pod_log(
                        pod, container=container, previous=request.previous, tail_lines=request.last,
                        since_seconds=self.since_seconds, timestamps=True,
                    )
                except NotFoundError:  # the pod went away meanwhile
                    return []
                return parse_log(text, pod, container)
            return read

        streams = _gather([reader(pod, container) for pod, container, _ in targets])
        for stream in streams:  # remember everything read, shown or trimmed by --last
            for line in stream:
                self.seen.setdefault((line.pod, line.container), Seen()).note(line)
        for line in merge(streams, request.last):
            self.count += 1
            self.sink.line(line)
        read = list(dict.fromkeys(pod for pod, _, _ in targets))
        return read, {(pod, container): restarts for pod, container, restarts in targets}

    # --- following -----------------------------------------------------------------

    def follow(self, pods: list[dict], version: str, instances: dict[tuple[str, str], int]) -> None:
        """Stream until Ctrl-C (KeyboardInterrupt, handled by the caller)."""
        events: queue.Queue = queue.Queue()
        stop = threading.Event()
        known: dict[str, dict] = {_name(pod): pod for pod in pods}
        active: set[tuple[str, str]] = set()
        followed: dict[tuple[str, str], int] = {}  # restart count of the instance followed
        retry_at: dict[tuple[str, str], float] = {}
        backoff: dict[tuple[str, str], float] = {}

        def start(key: tuple[str, str], mode: str) -> None:
            active.add(key)
            threading.Thread(target=self._stream, args=(key, mode, events, stop),
                             daemon=True, name=f"webservice-log-{key[0]}").start()

        # the pods read: continue each from its last line read (or with the user's options)
        for key, restarts in instances.items():
            followed[key] = restarts
            self.optioned.add(key)
            start(key, "resume")
        threading.Thread(target=self._watch, args=(version, events, stop), daemon=True,
                         name="webservice-log-watch").start()
        try:
            next_check = 0.0
            while True:
                try:
                    item = events.get(timeout=RECONCILE_SECONDS / 2)
                except queue.Empty:
                    item = None
                if item is not None:
                    kind = item[0]
                    if kind == "line":
                        _, key, line = item
                        seen = self.seen.setdefault(key, Seen())
                        if seen.is_new(line):
                            self.emit(line)
                        backoff.pop(key, None)
                        continue  # lines first; reconcile when it is quiet or due
                    if kind == "ended":
                        _, key, problem = item
                        active.discard(key)
                        wait = backoff.get(key, 0.5) * 2
                        backoff[key] = min(MAX_RESUME_BACKOFF, wait)
                        retry_at[key] = time.monotonic() + backoff[key]
                        if problem and key[0] in known:
                            self.sink.note(f"pod {key[0]}: {problem}")
                    elif kind == "pod":
                        _, event, pod = item
                        name = _name(pod)
                        if event == "DELETED":
                            if known.pop(name, None) is not None:
                                self.sink.note(f"pod {name} is gone")
                        else:
                            if name not in known:
                                self.sink.note(f"new pod {name}")
                            known[name] = pod
                    elif kind == "sync":
                        known = {_name(pod): pod for pod in item[1]}
                    elif kind == "fatal":
                        raise item[1]
                now = time.monotonic()
                if item is None or item[0] != "line" or now >= next_check:
                    next_check = now + RECONCILE_SECONDS
                    for name, pod in known.items():
                        for container in container_states(pod):
                            key = (name, container)
                            if key in active:
                                continue
                            can_stream, restarts = _running_instance(pod, container)
                            if not can_stream:
                                continue
                            if followed.get(key) != restarts:
                                followed[key] = restarts
                                backoff.pop(key, None)
                                self.optioned.discard(key)
                                start(key, "all")  # a new pod or instance: from its first line
                            elif now >= retry_at.get(key, 0.0):
                                start(key, "resume")  # dropped or ended: after the last line
        finally:
            stop.set()

    def _stream(self, key, mode: str, events: queue.Queue, stop: threading.Event) -> None:
        """Follow one container's log in a thread; put its lines on ``events``.

        ``all``: the current instance from its first line. ``resume``: after the last line
        seen (``sinceTime``; repeats are dropped by ``Seen``), or, if none was seen, with
        the user's ``--last``/``--since`` for the pods read at the start.
        """
        pod, container = key
        problem = None
        seen = self.seen.get(key)
        try:
            if mode == "resume" and seen is not None and seen.last_time:
                # the API server keeps whole seconds of sinceTime: Seen drops the repeats
                lines = self.cluster.pod_log(pod, container=container, since_time=seen.last_time[:19] + "Z",
                                             timestamps=True, follow=True)
            elif mode == "resume" and key in self.optioned:
                lines = self.cluster.pod_log(pod, container=container, tail_lines=self.request.last,
                                             since_seconds=self.since_seconds, timestamps=True, follow=True)
            else:
                lines = self.cluster.pod_log(pod, container=container, timestamps=True, follow=True)
            previous = None
            for raw in lines:
                if stop.is_set():
                    return
                previous = parse_line(raw, pod, container, previous)
                events.put(("line", key, previous))
        except NotFoundError:
            pass
        except ClusterError as exc:
            problem = f"log stream interrupted ({exc.message}); resuming"
        except Exception as exc:  # noqa: BLE001 - a reader thread must report, not die
            problem = f"log stream interrupted ({type(exc).__name__}); resuming"
        finally:
            events.put(("ended", key, problem))

    def _watch(self, version: str, events: queue.Queue, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                for event, obj in self.cluster.watch("Pod", label_selector=self.selector,
                                                     resource_version=version or None, timeout=300, tick=5):
                    if stop.is_set():
                        return
                    if event is None:
                        continue
                    if event == "SYNC":
                        events.put(("sync", obj.get("items") or []))
                        continue
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    events.put(("pod", event, obj))
            except ClusterError as exc:
                events.put(("fatal", exc))
                return
            except Exception as exc:  # noqa: BLE001
                events.put(("fatal", ClusterError(f"watching the pods failed ({type(exc).__name__}: {exc})")))
                return


def _selector() -> str:
    from webservice.builders.objects import selector

    return selector()


def _not_running(cluster, tool: str, selector: str, follow: bool) -> None:
    """No pods: raise NotRunningError (no Deployment of ours) or UnhealthyError (unless following).

    "Ours" is decided exactly as ``status`` decides it (our labels, then the tool's name), so
    that a Deployment named like the tool but made by someone else is "not running" for both."""
    from webservice.actions.status import pick_deployment

    deployments, _ = cluster.list("Deployment", label_selector=selector)
    if pick_deployment(deployments, tool) is None:
        raise NotRunningError(
            f"the webservice of {tool} is not running, so it has no logs",
            hint="start it with 'webservice TYPE start'",
        )
    if not follow:
        raise UnhealthyError(
            f"the webservice of {tool} has no pods (yet), so there are no logs",
            hint="see 'webservice status' for why; 'webservice logs -f' waits for them",
        )


def logs(request, sink=None) -> LogsResult:
    """Print the merged logs of the webservice's pods (and follow them with ``-f``)."""
    if request.previous and request.follow:
        raise UsageError("--previous cannot be combined with -f/--follow: that container has ended",
                         hint="use 'webservice logs --previous' alone")
    since_seconds = parse_since(request.since) if request.since is not None else None
    from webservice.kube.cluster import Cluster
    from webservice.model.context import Context

    if sink is None:
        from webservice.ui.output import log_printer

        sink = log_printer(request)
    ctx = Context.load(replace(request, extra_args=None))
    cluster = Cluster.connect(ctx.tool, debug=request.debug)
    reader = _Reader(cluster, request, sink, since_seconds)
    try:
        pods, version = cluster.list("Pod", label_selector=reader.selector)
        pods.sort(key=_name)
        if not pods:
            _not_running(cluster, ctx.tool.name, reader.selector, request.follow)
        if not request.follow:
            read, _ = reader.read_once(pods)
            return LogsResult(pods=read, lines=reader.count, notes=reader.notes, previous=request.previous)
        read: list[str] = []
        try:
            read, instances = reader.read_once(pods)
            for note in reader.notes:
                sink.note(note)
            reader.notes = []
            if not pods:
                sink.note("no pods yet; waiting for them (Ctrl-C ends)")
            elif not reader.count:
                sink.note("no log lines yet; waiting for new ones (Ctrl-C ends)")
            reader.follow(pods, version, instances)
        except KeyboardInterrupt:
            pass  # the way a follow ends: exit 0
        return LogsResult(pods=read, lines=reader.count, follow=True, interrupted=True)
    finally:
        cluster.close()
