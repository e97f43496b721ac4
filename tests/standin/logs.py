"""Container logs: per container instance (current and previous), with kubelet's
options (``tailLines``, ``sinceSeconds``, ``sinceTime``, ``timestamps``, ``limitBytes``,
``follow``).

Each line is kept with the time it was written.  ``timestamps=true`` prefixes lines with
an RFC3339Nano timestamp in UTC, as the kubelet does (Go's ``time.RFC3339Nano``, which
drops trailing zeros of the fraction).  A follow stream ends when the container instance
ends, when the pod goes away or when the server stops.
"""

from __future__ import annotations

import datetime
import time


def rfc3339nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    frac_s = f"{frac:09d}".rstrip("0")
    return base + (("." + frac_s) if frac_s else "") + "Z"


def parse_time(text: str) -> float:
    return datetime.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class Instance:
    def __init__(self, container_id: str = ""):
        self.container_id = container_id
        self.lines: list[tuple[int, str]] = []  # (time in ns, line without newline)
        self.ended = False


class LogStore:
    def __init__(self, cond):
        self.cond = cond
        self._logs: dict[tuple[str, str, str], list[Instance]] = {}
        self.stopped = False

    def clear(self):
        with self.cond:
            self._logs.clear()
            self.cond.notify_all()

    def start_instance(self, ns, pod, container, container_id: str = ""):
        with self.cond:
            insts = self._logs.setdefault((ns, pod, container), [])
            if insts:
                insts[-1].ended = True
            insts.append(Instance(container_id))
            self.cond.notify_all()

    def by_id(self, ns, pod, container, container_id: str) -> Instance | None:
        with self.cond:
            return next((i for i in self._logs.get((ns, pod, container)) or [] if i.container_id == container_id),
                        None)

    def end_instance(self, ns, pod, container):
        with self.cond:
            insts = self._logs.get((ns, pod, container))
            if insts:
                insts[-1].ended = True
            self.cond.notify_all()

    def forget_pod(self, ns, pod):
        with self.cond:
            for key in [k for k in self._logs if k[:2] == (ns, pod)]:
                for inst in self._logs[key]:
                    inst.ended = True
                del self._logs[key]
            self.cond.notify_all()

    def append(self, ns, pod, container, text: str):
        with self.cond:
            insts = self._logs.setdefault((ns, pod, container), [])
            if not insts:
                insts.append(Instance())
            for line in text.split("\n") if text != "" else [""]:
                insts[-1].lines.append((time.time_ns(), line))
            self.cond.notify_all()

    def instance(self, ns, pod, container, previous=False) -> Instance | None:
        with self.cond:
            insts = self._logs.get((ns, pod, container)) or []
            idx = -2 if previous else -1
            return insts[idx] if len(insts) >= abs(idx) else None

    @staticmethod
    def render(lines, q) -> bytes:
        since = None
        if q.get("sinceSeconds"):
            since = time.time() - int(q["sinceSeconds"])
        elif q.get("sinceTime"):
            since = parse_time(q["sinceTime"])
        if since is not None:
            lines = [ln for ln in lines if ln[0] / 1e9 >= since]
        if q.get("tailLines") not in (None, ""):
            n = int(q["tailLines"])
            lines = lines[-n:] if n > 0 else []
        stamps = q.get("timestamps") in ("true", "1", "True")
        out = "".join((rfc3339nano(t) + " " if stamps else "") + text + "\n" for t, text in lines)
        data = out.encode()
        if q.get("limitBytes"):
            data = data[: int(q["limitBytes"])]
        return data

    def follow(self, inst: Instance, q, alive, stop):
        """Yield chunks for a follow request; ``alive()`` tells whether the pod still exists."""
        with self.cond:
            lines = list(inst.lines)
            pos = len(inst.lines)
        first = self.render(lines, q)
        if first:
            yield first
        q2 = {k: v for k, v in q.items() if k in ("timestamps",)}
        while True:
            with self.cond:
                while pos == len(inst.lines) and not inst.ended and not stop.is_set() and alive():
                    self.cond.wait(0.5)
                new = inst.lines[pos:]
                pos = len(inst.lines)
                done = inst.ended or stop.is_set() or not alive()
            if new:
                yield self.render(new, q2)
            elif not done:
                yield b""  # idle: lets the server notice a client that went away
            if done and pos == len(inst.lines):
                return
