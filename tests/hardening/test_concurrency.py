"""Concurrency: several ``webservice`` processes acting on the same tool at once.

The end state (the cluster's objects and the manifest) must be one that some serial
order of the same commands would give, and the manifest must parse at every moment.
Real processes; where an interleaving matters, the stand-in holds one request of one
process (a ``delay`` fault) while the other runs.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.hardening.conftest import TRACEBACK, manifest_state, run_in, web_objects

RUNNING = {"Deployment": ["mytool"], "Service": ["mytool"], "Ingress": [], "HTTPRoute": ["mytool"]}
STOPPED = {"Deployment": [], "Service": [], "Ingress": [], "HTTPRoute": []}


def _memory(standin) -> str | None:
    deployment = standin.get("Deployment", standin.namespace, "mytool")
    if deployment is None:
        return None
    return deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]


class ManifestWatcher:
    """Reads the manifest in a loop while processes run: every read must parse."""

    def __init__(self, home):
        self.path = Path(home) / "service.manifest"
        self.reads = 0
        self.problems: list = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                continue
            self.reads += 1
            try:
                data = yaml.safe_load(text)
                assert isinstance(data, dict) and data.get("version") == 4
                assert text.startswith("# This file is used by Toolforge")
            except Exception as exc:  # noqa: BLE001 - recorded, asserted by the test
                self.problems.append((repr(exc), text[:200]))
            time.sleep(0.001)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)


def _finish(processes) -> list[tuple[int, str, str]]:
    results = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert not TRACEBACK.search(err) and "internal error" not in err, err
        results.append((process.returncode, out, err))
    return results


def _no_temp_files(home) -> None:
    assert not list(Path(home).glob(".service.manifest.*.tmp"))


def _consistent(tool_env) -> str:
    """The end state is 'running' (all objects, manifest naming the type) or 'stopped'."""
    objects, manifest = web_objects(tool_env.standin), manifest_state(tool_env.home)
    if objects == RUNNING:
        assert manifest and manifest.get("web") == "python3.11", manifest
        return "running"
    assert objects == STOPPED, objects
    assert manifest is None, manifest
    return "stopped"


def test_start_start_start(row, tool_env):
    row.describe("concurrency", "three 'start' at once: one webservice, exit 0 or 'already running' (6)")
    with ManifestWatcher(tool_env.home) as watcher:
        # --no-wait: the end state is the matter here; the wait of a superseded rollout is
        # test_superseded_restart_stops_waiting's
        processes = [tool_env.popen("python3.11", "start", "--no-wait") for _ in range(3)]
        results = _finish(processes)
    row.case(3)
    codes = sorted(code for code, _, _ in results)
    assert set(codes) <= {0, 6} and 0 in codes, results
    assert _consistent(tool_env) == "running"
    assert watcher.problems == []
    _no_temp_files(tool_env.home)


@pytest.mark.parametrize("offset", [0.0, 0.3, 0.6])
def test_start_and_stop_at_once(row, tool_env, offset):
    row.describe("concurrency", f"'start' and 'stop' at once (stop started {offset:g} s later): running or "
                                "stopped, never half")
    with ManifestWatcher(tool_env.home) as watcher:
        # (--timeout: see test_start_waiting_notices_a_stop_before_its_watch for why)
        start = tool_env.popen("python3.11", "start", "--timeout", "8")
        time.sleep(offset)
        stop = tool_env.popen("stop")
        (start_code, _, start_err), (stop_code, _, stop_err) = _finish([start, stop])
    row.case(2)
    assert start_code in (0, 5), start_err  # 5: stopped under it while it waited, and says so
    assert stop_code == 0, stop_err
    time.sleep(0.2)
    _consistent(tool_env)
    assert watcher.problems == []
    _no_temp_files(tool_env.home)


def test_stop_listing_while_start_applies(row, tool_env):
    row.describe("concurrency", "'stop' held between its lists while 'start' applies everything: end state is "
                                "running or stopped")
    standin = tool_env.standin
    standin.add_fault(action="delay", delay=2.0, method="GET", path="/services", times=1)
    stop = tool_env.popen("stop")
    standin.wait_for(lambda: standin.requests_for("GET", "/services"), timeout=20)
    start = tool_env.popen("python3.11", "start")
    results = _finish([start, stop])
    row.case(2)
    assert [code for code, _, _ in results] in ([0, 0], [5, 0]), results
    time.sleep(0.2)
    _consistent(tool_env)


def test_restart_restart(row, tool_env):
    row.describe("concurrency", "two 'restart' at once: both succeed, one rollout wins, manifest intact")
    assert run_in(tool_env, "python3.11", "start").code == 0
    with ManifestWatcher(tool_env.home) as watcher:
        # --no-wait: the wait of a superseded restart is test_superseded_restart_stops_waiting's matter
        results = _finish([tool_env.popen("restart", "--no-wait") for _ in range(2)])
    row.case(2)
    assert [code for code, _, _ in results] == [0, 0], results
    assert _consistent(tool_env) == "running"
    assert watcher.problems == []
    _no_temp_files(tool_env.home)


def test_restarts_with_different_options_never_corrupt_the_manifest(row, tool_env):
    """Four restarts with four --mem values at once: the manifest parses at every read and
    ends with one of the four. (That it also agrees with the Deployment is shown,
    deterministically, by test_restart_held_between_apply_and_manifest.)"""
    row.describe("concurrency", "four 'restart --mem X' at once: the manifest parses at every read and ends "
                                "with one of them")
    assert run_in(tool_env, "python3.11", "start").code == 0
    with ManifestWatcher(tool_env.home) as watcher:
        results = _finish([tool_env.popen("restart", "--mem", mem, "--no-wait")
                           for mem in ("1Gi", "2Gi", "768Mi", "1536Mi")])
    row.case(4)
    assert [code for code, _, _ in results] == [0, 0, 0, 0], results
    assert manifest_state(tool_env.home)["memory"] in ("1Gi", "2Gi", "768Mi", "1536Mi")
    assert _memory(tool_env.standin) in ("1Gi", "2Gi", "768Mi", "1536Mi")
    assert watcher.problems == [] and watcher.reads > 0
    _no_temp_files(tool_env.home)


def test_restart_held_between_apply_and_manifest(row, tool_env):
    row.describe("concurrency", "'restart --mem 1Gi' held between its Deployment and its Service while "
                                "'restart --mem 2Gi' runs: the manifest and the Deployment agree")
    assert run_in(tool_env, "python3.11", "start").code == 0
    standin = tool_env.standin
    standin.clear_requests()
    standin.add_fault(action="delay", delay=2.0, method="PATCH", path="/services/", times=1)
    first = tool_env.popen("restart", "--mem", "1Gi", "--no-wait")
    standin.wait_for(lambda: standin.requests_for("PATCH", "/services/"), timeout=20)
    second = tool_env.popen("restart", "--mem", "2Gi", "--no-wait")
    results = _finish([first, second])
    row.case(2)
    assert [code for code, _, _ in results] == [0, 0], results
    assert manifest_state(tool_env.home)["memory"] == _memory(standin)


def test_start_waiting_notices_a_stop_before_its_watch(row, tool_env):
    row.describe("concurrency", "'stop' completes between start's applies and start's watch: start says at once "
                                "that it was stopped")
    standin = tool_env.standin
    held = standin.add_fault(action="hold", method="GET", path="/deployments",
                             match=lambda r: "watch" in r.query, times=1)
    start = tool_env.popen("python3.11", "start", "--timeout", "60")
    try:
        assert held.arrived.wait(60), "the start never watched"
        assert run_in(tool_env, "stop").code == 0  # the whole stop, while start's watch is held
    finally:
        held.release()
    (code, out, err), = _finish([start])
    row.case(2)
    assert code == 5, (code, err)
    assert "stopped" in err and "within" not in err, err  # said at once, not after its timeout
    _consistent(tool_env)


def test_superseded_restart_stops_waiting(row, tool_env):
    row.describe("concurrency", "a 'restart' superseded by another one while it waits: it does not wait for "
                                "the whole timeout")
    assert run_in(tool_env, "python3.11", "start").code == 0
    standin = tool_env.standin
    standin.clear_requests()
    held = standin.add_fault(action="hold", method="GET", path="/deployments",
                             match=lambda r: "watch" in r.query, times=1)
    first = tool_env.popen("restart", "--timeout", "60")
    try:
        assert held.arrived.wait(60), "the first restart never watched"
        time.sleep(1.1)  # a different second: a different template
        second = run_in(tool_env, "restart")
        assert second.code == 0, second.err
    finally:
        held.release()
    (code, out, err), = _finish([first])
    row.case(2)
    assert code == 0, (code, err)
    assert "another restart replaced" in out + err, (out, err)  # followed the newer rollout, no timeout


# --- the tool's lock on NFS (issue 16, defect 1) ---------------------------------------------------


def test_start_and_stop_on_nfs_lock_semantics(row, tool_env, monkeypatch):
    """With flock behaving as on NFS (conflicting with POSIX locks on the same file), start
    and stop must neither wait for their own lock nor fail after their changes were made:
    one mechanism (lockf), taken once and passed down."""
    import fcntl

    from tests.hardening.conftest import nfs_flock

    row.describe("concurrency", "start, restart and stop under NFS lock semantics: no self-deadlock")
    calls: list = []
    monkeypatch.setattr(fcntl, "flock", nfs_flock(calls))
    for args in (("python3.11", "start"), ("restart", "--mem", "1Gi"), ("stop",)):
        result = run_in(tool_env, *args)
        row.case()
        assert result.code == 0, (args, result.err)
        assert "gave up" not in result.err
    assert calls == []  # flock is never used
    assert web_objects(tool_env.standin) == STOPPED
    assert manifest_state(tool_env.home) is None
