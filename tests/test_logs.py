"""``webservice logs``: the pure helpers, then the real CLI against the stand-in.

End-to-end: two replicas merged in time order, ``--last``, ``--since``, ``--previous``
after a crash, ``--json``, not running; ``-f`` picking up an appended line and the pods
of a restart, then Ctrl-C ending it with exit 0.
"""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
from pathlib import Path

import pytest

from webservice.errors import InputError
from webservice.actions.logs import (
    LogLine,
    Seen,
    _gather,
    container_states,
    merge,
    parse_line,
    parse_log,
    parse_since,
    parse_stamp,
)
from webservice.ui.output import LogPrinter

# --- pure helpers -----------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), (" 10M ", 600), ("0h5s", 5),
])
def test_parse_since(text, seconds):
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5x", "m5", "-5m", "1.5h", "5 m", "0s", "h"])
def test_parse_since_refuses(text):
    with pytest.raises(InputError) as error:
        parse_since(text)
    assert "--since" in error.value.message and (error.value.hint or "zero" in error.value.message)


def test_parse_stamp_variants():
    ns, shown, end = parse_stamp("2026-11-26T10:00:00.123456789Z hello")
    assert shown == "2026-11-26T10:00:00.123456789Z" and end == 31
    assert ns == 1795687200 * 10**9 + 123456789
    # Go's RFC3339Nano drops trailing zeros; no fraction at all is fine too
    assert parse_stamp("2026-11-26T10:00:00.5Z x")[0] == 1795687200 * 10**9 + 500_000_000
    assert parse_stamp("2026-11-26T10:00:00Z x")[:2] == (1795687200 * 10**9, "2026-11-26T10:00:00Z")
    # an offset is turned into UTC
    assert parse_stamp("2026-11-26T11:30:00.25+01:30 x")[:2] == (1795687200 * 10**9 + 250_000_000,
                                                                   "2026-11-26T10:00:00.25Z")
    assert parse_stamp("no timestamp here") is None


def test_parse_line_keeps_the_message_exactly():
    line = parse_line("2026-11-26T10:00:00.1Z   indented  [x] \r", "p", "webservice")
    assert line.message == "  indented  [x] " and line.second == "2026-11-26T10:00:00"
    assert parse_line("2026-11-26T10:00:00.1Z ", "p", "c").message == ""


def test_parse_log_lines_without_timestamp_take_the_previous_time():
    text = "2026-11-26T10:00:01Z first\nkubelet note\n2026-11-26T10:00:02Z second\n"
    lines = parse_log(text, "p", "c")
    assert [line.message for line in lines] == ["first", "kubelet note", "second"]
    assert lines[1].ns == lines[0].ns
    assert parse_log("", "p", "c") == []


def _line(second: float, pod: str, message: str) -> LogLine:
    ns = int(1795687200 * 10**9 + second * 10**9)
    return LogLine(ns, f"t{second}", pod, "webservice", message)


def test_merge_orders_by_time_and_keeps_stream_order_on_ties():
    a = [_line(1, "a", "a1"), _line(3, "a", "a3"), _line(3, "a", "a3bis")]
    b = [_line(2, "b", "b2"), _line(3, "b", "b3"), _line(4, "b", "b4")]
    assert [x.message for x in merge([a, b])] == ["a1", "b2", "a3", "a3bis", "b3", "b4"]
    assert [x.message for x in merge([a, b], last=2)] == ["b3", "b4"]
    assert merge([a, b], last=0) == []
    assert merge([]) == []


def test_seen_drops_repeats_of_an_overlapping_stream():
    seen = Seen()
    first = [_line(1, "a", "x"), _line(2, "a", "y"), _line(2, "a", "z")]
    for line in first:
        assert seen.is_new(line)
        seen.note(line)
    # a stream resumed from the same second sends those again, then new ones
    again = [_line(1, "a", "x"), _line(2, "a", "y"), _line(2, "a", "z"), _line(2, "a", "new at same ns"),
             _line(3, "a", "later")]
    assert [line.message for line in again if seen.is_new(line) and (seen.note(line) or True)] == [
        "new at same ns", "later"]


def test_container_states():
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "webservice"}, {"name": "side"}, {"name": "new"}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "webservice", "state": {"running": {}}, "restartCount": 0},
            {"name": "side", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1}}, "restartCount": 4},
            {"name": "new", "state": {"waiting": {"reason": "ContainerCreating"}}},
        ]},
    }
    assert container_states(pod) == {
        "webservice": (True, False, 0, "Running"),
        "side": (True, True, 4, "CrashLoopBackOff"),
        "new": (False, False, 0, "ContainerCreating"),
    }


def test_gather_runs_concurrently_keeps_order_and_reraises():
    barrier = threading.Barrier(3, timeout=5)

    def job(value):
        def run():
            barrier.wait()  # only passes if all three run at the same time
            return value
        return run

    assert _gather([job(1), job(2), job(3)]) == [1, 2, 3]

    def boom():
        raise InputError("broken")

    with pytest.raises(InputError):
        _gather([lambda: 1, boom])


def test_printer_formats(capsys):
    line = LogLine(1, "2026-11-26T10:00:00.123Z", "mytool-abc", "webservice", "hello [world]")
    side = LogLine(1, "2026-11-26T10:00:00Z", "mytool-abc", "side", "x")
    LogPrinter(json_output=False, flush=True).line(line)
    LogPrinter(json_output=False, flush=False).line(side)
    LogPrinter(json_output=True, flush=False).line(line)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2026-11-26T10:00:00 [mytool-abc] hello [world]"
    assert out[1] == "2026-11-26T10:00:00 [mytool-abc/side] x"
    assert json.loads(out[2]) == {"time": "2026-11-26T10:00:00.123Z", "pod": "mytool-abc",
                                  "container": "webservice", "message": "hello [world]"}


# --- end to end: the real CLI against the stand-in ----------------------------------------


def _running(standin, count):
    def ready():
        pods = [p for p in standin.pods(**{"app.kubernetes.io/component": "web"})
                if "running" in (((p.get("status") or {}).get("containerStatuses") or [{}])[0].get("state") or {})
                and not p["metadata"].get("deletionTimestamp")]
        return sorted(p["metadata"]["name"] for p in pods) if len(pods) == count else None
    return standin.wait_for(ready, timeout=15, message=f"{count} running pods")


def _deploy(ws_env, replicas=1):
    """Create the webservice's Deployment as start would (its --dry-run objects)."""
    out = ws_env.run("--dry-run", "python3.11", "start", "--replicas", str(replicas), "--json")
    assert out.returncode == 0, out.stderr
    deployment = json.loads(out.stdout)["items"][0]
    ws_env.standin.create(deployment)
    return deployment


def _restarted(standin):
    def restarted():
        pods = standin.pods(**{"app.kubernetes.io/component": "web"})
        return pods and all(((p["status"].get("containerStatuses") or [{}])[0].get("restartCount") or 0) >= 1
                            for p in pods)

    standin.wait_for(restarted, timeout=15, message="a restarted pod")


def _json_lines(stdout):
    return [json.loads(line) for line in stdout.splitlines()]


def test_two_replicas_are_merged_in_time_order(ws_env, standin):
    _deploy(ws_env, replicas=2)
    a, b = _running(standin, 2)
    for i in range(4):
        standin.append_log(standin.namespace, a if i % 2 == 0 else b, f"request {i}")
    result = ws_env.run("logs")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    ours = [line for line in lines if "request" in line]
    assert [line.split(" ", 2)[1:] for line in ours] == [
        [f"[{a}]", "request 0"], [f"[{b}]", "request 1"], [f"[{a}]", "request 2"], [f"[{b}]", "request 3"]]
    assert {f"[{a}]", f"[{b}]"} <= {line.split(" ")[1] for line in lines if "Starting webservice" in line}
    assert all(len(line.split(" ")[0]) == 19 for line in lines)  # 2026-11-26T10:00:00
    # --json: one object a line, full timestamps in order
    result = ws_env.run("logs", "--json")
    assert result.returncode == 0, result.stderr
    objects = _json_lines(result.stdout)
    assert all(set(o) == {"time", "pod", "container", "message"} for o in objects)
    assert [o["message"] for o in objects if o["message"].startswith("request")] == [f"request {i}" for i in range(4)]
    times = [o["time"] for o in objects]
    assert times == sorted(times, key=lambda t: parse_stamp(t + " ")[0])
    # both pods were read concurrently, each once, with timestamps
    reads = standin.requests_for("GET", "/log")
    assert len(reads) == 4 and all(r.query.get("timestamps") == "true" for r in reads)


def test_last_is_the_newest_lines_of_all_pods(ws_env, standin):
    _deploy(ws_env, replicas=2)
    a, b = _running(standin, 2)
    for i in range(6):
        standin.append_log(standin.namespace, b if i % 3 else a, f"line {i}")
    result = ws_env.run("logs", "--last", "3", "--json")
    assert result.returncode == 0, result.stderr
    assert [o["message"] for o in _json_lines(result.stdout)] == ["line 3", "line 4", "line 5"]
    assert {r.query.get("tailLines") for r in standin.requests_for("GET", "/log")} == {"3"}
    assert ws_env.run("logs", "-l", "0").stdout == ""


def test_since_leaves_out_older_lines(ws_env, standin):
    _deploy(ws_env)
    (pod,) = _running(standin, 1)
    instance = standin.logs.instance(standin.namespace, pod, "webservice")
    with standin.lock:  # a line written two hours ago
        instance.lines.insert(0, (time.time_ns() - 2 * 3600 * 10**9, "two hours ago"))
    standin.append_log(standin.namespace, pod, "just now")
    recent = ws_env.run("logs", "--since", "30m")
    assert recent.returncode == 0, recent.stderr
    assert "just now" in recent.stdout and "two hours ago" not in recent.stdout
    assert standin.requests_for("GET", "/log")[-1].query.get("sinceSeconds") == "1800"
    everything = ws_env.run("logs", "--since", "1d")
    assert everything.stdout.splitlines()[0].endswith("two hours ago")
    bad = ws_env.run("logs", "--since", "ten")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "30s, 5m, 2h, 1d" in bad.stderr


def test_previous_shows_the_crashed_container(ws_env, standin):
    standin.scenario = "crashloop"
    _deploy(ws_env)
    _restarted(standin)
    result = ws_env.run("logs", "--previous")
    assert result.returncode == 0, result.stderr
    assert "ModuleNotFoundError: No module named 'flask'" in result.stdout
    assert all(r.query.get("previous") == "true" for r in standin.requests_for("GET", "/log"))
    both = ws_env.run("logs", "-f", "--previous")
    assert both.returncode == 2 and "--previous" in both.stderr


def test_previous_without_restarts_says_so(ws_env, standin):
    _deploy(ws_env)
    _running(standin, 1)
    result = ws_env.run("logs", "--previous")
    assert result.returncode == 0 and result.stdout == ""
    assert "no pod of the webservice has a previous (restarted) container" in result.stderr


def test_not_running(ws_env, standin):
    result = ws_env.run("logs")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "not running" in result.stderr and "Traceback" not in result.stderr
    assert ws_env.run("logs", "-f").returncode == 3  # nothing to wait for


def test_a_deployment_that_is_not_ours_is_not_running_for_logs_as_for_status(ws_env, standin):
    labels = {"app": "mytool"}  # named like the tool, made by hand: none of webservice's labels
    standin.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mytool", "labels": labels},
                    "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                             "template": {"metadata": {"labels": labels},
                                          "spec": {"containers": [{"name": "x", "image": "x"}]}}}},
                   namespace=standin.namespace)
    status = ws_env.run("status", "--json")
    logs = ws_env.run("logs")
    assert json.loads(status.stdout)["state"] == "stopped"
    assert logs.returncode == 3 and "not running" in logs.stderr, logs.stderr


def test_no_lines_is_said_on_stderr(ws_env, standin):
    _deploy(ws_env)
    (pod,) = _running(standin, 1)
    standin.logs.clear()
    result = ws_env.run("logs")
    assert result.returncode == 0 and result.stdout == ""
    assert f"no log lines from the pod {pod}" in result.stderr


class Lines:
    """The output of a running process, line by line, from background readers."""

    def __init__(self, process):
        self.queue: queue.Queue = queue.Queue()
        self.seen: list[tuple[str, str]] = []
        for name, stream in (("out", process.stdout), ("err", process.stderr)):
            threading.Thread(target=self._pump, args=(name, stream), daemon=True).start()

    def _pump(self, name, stream):
        for line in stream:
            self.queue.put((name, line.rstrip("\n")))

    def wait_for(self, text, stream="out", timeout=15.0, count=1) -> str:
        """Wait until ``count`` lines of ``stream`` contain ``text`` (seen before included)."""
        def matches():
            return [line for name, line in self.seen if name == stream and text in line]

        deadline = time.monotonic() + timeout
        while len(matches()) < count and time.monotonic() < deadline:
            try:
                self.seen.append(self.queue.get(timeout=0.1))
            except queue.Empty:
                continue
        if len(matches()) < count:
            raise AssertionError(f"{text!r} not seen {count} time(s) on std{stream} within {timeout}s; "
                                 f"seen: {self.seen}")
        return matches()[-1]

    def rest(self):
        while True:
            try:
                self.seen.append(self.queue.get(timeout=0.3))
            except queue.Empty:
                return self.seen


def test_follow_picks_up_lines_and_the_pods_of_a_restart_and_ends_on_ctrl_c(ws_env, standin):
    from webservice.kube.cluster import Cluster
    from webservice.model.tool import Tool

    deployment = _deploy(ws_env, replicas=2)
    old = _running(standin, 2)
    process = ws_env.popen("logs", "-f")
    try:
        output = Lines(process)
        for pod in old:
            output.wait_for(f"[{pod}] Listening at")
        standin.append_log(standin.namespace, old[1], "appended while following")
        output.wait_for(f"[{old[1]}] appended while following")
        # a restart: a new template makes new pods (the rollout replaces both old ones)
        cluster = Cluster.connect(Tool(standin.tool, "tools", Path(ws_env.home), "override"),
                                  kubeconfig=[Path(ws_env.kubeconfig)])
        deployment["spec"]["template"]["metadata"]["annotations"]["toolforge.org/started-at"] = "2026-11-26T23:00:00Z"
        cluster.apply(deployment)
        new = standin.wait_for(lambda: [n for n in _running(standin, 2) if n not in old] or None, timeout=15)
        output.wait_for(f"[{new[0]}] Listening at")
        standin.append_log(standin.namespace, new[0], "hello from the new pod")
        output.wait_for(f"[{new[0]}] hello from the new pod")
        output.wait_for(f"new pod {new[0]}", stream="err")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        seen = output.rest()
    finally:
        if process.poll() is None:
            process.kill()
    out = [line for name, line in seen if name == "out"]
    err = [line for name, line in seen if name == "err"]
    assert not any("Traceback" in line or "interrupted" in line for line in err), err
    assert len([line for line in out if "appended while following" in line]) == 1  # no repeats
    assert len([line for line in out if f"[{old[0]}] Listening at" in line]) == 1


def test_follow_shows_a_crash_looping_pod_once_per_instance(ws_env, standin):
    from tests.standin.scenarios import TRACEBACK

    standin.scenario = "crashloop"
    _deploy(ws_env)
    _restarted(standin)
    process = ws_env.popen("logs", "-f", "--last", "1")
    try:
        output = Lines(process)
        # the last line, then each new container instance from its first line
        output.wait_for("ModuleNotFoundError", count=3)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        seen = output.rest()
    finally:
        if process.poll() is None:
            process.kill()
    body = [line.split("] ", 1)[1] for name, line in seen if name == "out"]
    assert body[0] == TRACEBACK[-1]  # --last 1
    rest = body[1:]
    whole = len(rest) - len(rest) % len(TRACEBACK)
    assert whole >= 2 * len(TRACEBACK)
    # every instance whole and once, in order (the last one may be cut by the Ctrl-C)
    assert rest == (TRACEBACK * (whole // len(TRACEBACK) + 1))[: len(rest)]
