"""Interruption: SIGINT (Ctrl-C) and SIGTERM at each phase of start, restart and stop.

Each phase is held open by the stand-in (a ``delay`` fault on the phase's request, or the
``slow`` scenario while waiting); the signal is sent once the stand-in has seen that
request. Afterwards the cluster and the manifest must agree (all of the webservice's
objects and a manifest naming its type, or none of them and no manifest entry), the
process must exit 130/143 without a traceback, and its last words must say what state
things are in.
"""

from __future__ import annotations

import re
import signal
import time

import pytest

from tests.hardening.conftest import TRACEBACK, manifest_state, run_in, web_objects
from tests.standin.fixtures import deliver

# (request the phase waits on, hold it with a delay?)
PHASES = {
    "start": {
        "reading (before any change)": ("GET", "/limitranges", True),
        "applying the objects": ("PATCH", "/services/", True),
        "waiting for the pods": ("GET", "/pods", False),
    },
    "restart": {
        "reading (before any change)": ("GET", "/limitranges", True),
        "applying the objects": ("PATCH", "/services/", True),
        "waiting for the pods": ("GET", "/pods", False),
    },
    "stop": {
        "reading (before any change)": ("GET", "/services", True),
        "deleting the objects": ("DELETE", "/services/", True),
        "waiting for the pods to go": ("GET", "/pods", True),  # the pod watch, held
    },
}
STATE_WORDS = re.compile(r"nothing (was )?(changed|started|stopped)|unchanged|still (running|there)|"
                         r"keeps coming up|are deleted|were deleted|going away|status", re.I)


def _started_at(standin):
    deployment = standin.get("Deployment", standin.namespace, "mytool")
    if deployment is None:
        return None
    return deployment["spec"]["template"]["metadata"]["annotations"].get("toolforge.org/started-at")


def _cases():
    for command, phases in PHASES.items():
        for phase in phases:
            for sig in ("SIGINT", "SIGTERM"):
                yield pytest.param(command, phase, sig, id=f"{command}-{phase.split()[0]}-{sig}")


@pytest.mark.parametrize("command,phase,sig", list(_cases()))
def test_interrupted(row, tool_env, command, phase, sig):
    row.describe("interruption", f"{sig} while {command} is {phase}")
    standin = tool_env.standin
    if command != "start":
        ready = run_in(tool_env, "python3.11", "start")
        assert ready.code == 0, ready.err
    manifest_before = manifest_state(tool_env.home)
    started_before = _started_at(standin)
    method, path, hold = PHASES[command][phase]
    watch_only = "waiting" in phase
    held = None
    if hold:  # the request waits for the test: the signal lands while it is in flight
        held = standin.add_fault(action="hold", method=method, path=path, times=1,
                                 match=(lambda r: "watch" in r.query) if watch_only else None)
    if watch_only:
        standin.time_scale = 0.2  # slow pods: the wait lasts
        if command != "stop":
            standin.scenario = "slow"
    standin.clear_requests()
    args = ["python3.11", "start"] if command == "start" else [command]
    process = tool_env.popen(*args)
    try:
        def seen():
            return [r for r in standin.requests_for(method, path) if not watch_only or "watch" in r.query]
        standin.wait_for(seen, timeout=60, message=f"{method} {path} not seen")
        if held is not None:
            assert held.arrived.wait(60), f"{method} {path} was not held"
        deliver(process, getattr(signal, sig))
        if held is not None:
            held.release()
        out, err = process.communicate(timeout=60)
    finally:
        if held is not None:
            held.release()
        if process.poll() is None:
            process.kill()
            process.communicate()
    row.case()
    assert not TRACEBACK.search(err), err
    assert process.returncode == (130 if sig == "SIGINT" else 143), (process.returncode, err)
    last = [line for line in err.splitlines() if line.strip()][-1:]
    assert last and STATE_WORDS.search(last[0]), err
    time.sleep(0.3)
    objects, manifest = web_objects(standin), manifest_state(tool_env.home)
    everything = {"Deployment": ["mytool"], "Service": ["mytool"], "Ingress": [], "HTTPRoute": ["mytool"]}
    nothing = {"Deployment": [], "Service": [], "Ingress": [], "HTTPRoute": []}
    # consistent: all of it and a manifest naming it, or none of it and no manifest
    if objects == everything:
        assert manifest and manifest.get("web") == "python3.11", manifest
    else:
        assert objects == nothing, objects
        assert manifest is None, manifest
    if "before any change" in phase:
        assert manifest == manifest_before
        assert objects == (nothing if command == "start" else everything)
        if command == "restart":
            assert _started_at(standin) == started_before  # no rollout began
    # and the next command sees a state it can work from
    standin.time_scale, standin.scenario = 0.01, "healthy"
    follow = run_in(tool_env, "status")
    assert follow.code in (0, 3, 4), follow.err
