"""Scenarios: how a pod's containers behave in the simulated cluster.

Chosen per pod when it is created: ``StandIn.image_scenarios`` (a mapping from an image,
or a substring of it, to a scenario name) first, then ``StandIn.scenario`` (default
``"healthy"``).  Times are simulated seconds (see ``StandIn.time_scale``).

========================  =================================================================
``healthy``               pulls, starts, passes its probes, stays up
``slow``                  long image pull and an app that answers only after 45 s:
                          ``Readiness probe failed: ... connection refused`` meanwhile
``crashloop``             exits 1 (``Error``) after 2 s, logs a traceback; restarts with
                          back-off (``CrashLoopBackOff``), previous logs kept
``imagepull``             ``ErrImagePull`` then ``ImagePullBackOff``
``unschedulable``         ``FailedScheduling`` (Insufficient memory), stays Pending
``oomkilled``             killed after 3 s, before it answers: ``OOMKilled``, exit code 137, then back-off
``neverready``            runs but its readiness (and liveness) probe always fails:
                          ``Unhealthy`` ``Readiness probe failed: HTTP probe failed with
                          statuscode: 503``
``exit0``                 the command finishes with exit code 0 after 1 s
========================  =================================================================

Tests may add their own: ``SCENARIOS["mine"] = Scenario("mine", ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Scenario:
    name: str
    schedulable: bool = True
    pull_seconds: float = 1.5
    pull_error: str | None = None
    run_seconds: float | None = None  # None: runs until stopped
    exit_code: int = 0
    exit_reason: str = "Completed"
    ready_after: float = 0.0  # the app answers probes this long after it starts
    probes_fail: bool = False  # the app answers 503 to every probe
    logs: list = field(default_factory=list)
    unschedulable_message: str = (
        "0/12 nodes are available: 12 Insufficient memory. preemption: 0/12 nodes are available: "
        "12 No preemption victims found for incoming pod.")


HEALTHY_LOGS = ["Starting webservice on port 8000", "Listening at: http://0.0.0.0:8000"]
TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/data/project/mytool/www/python/src/app.py", line 3, in <module>',
    "    import flask",
    "ModuleNotFoundError: No module named 'flask'",
]

SCENARIOS: dict[str, Scenario] = {
    "healthy": Scenario("healthy", logs=HEALTHY_LOGS),
    "slow": Scenario("slow", pull_seconds=25.0, ready_after=45.0,
                     logs=["Starting webservice on port 8000", "Loading application (this takes a while)"]),
    "crashloop": Scenario("crashloop", run_seconds=2.0, exit_code=1, exit_reason="Error", logs=TRACEBACK,
                          ready_after=1e9),  # dies while starting: never answers a probe
    "imagepull": Scenario("imagepull", pull_error="not found"),
    "unschedulable": Scenario("unschedulable", schedulable=False),
    # killed while loading its data, before it answers on its port (so never Ready)
    "oomkilled": Scenario("oomkilled", run_seconds=3.0, ready_after=1e9, exit_code=137, exit_reason="OOMKilled",
                          logs=["Starting webservice on port 8000", "Loading data into memory..."]),
    "neverready": Scenario("neverready", probes_fail=True,
                           logs=["Starting webservice on port 8000",
                                 "ERROR: database connection failed; answering 503"]),
    "exit0": Scenario("exit0", run_seconds=1.0, exit_code=0, exit_reason="Completed", logs=["done"]),
}


def pick(image: str, default: str, by_image: dict) -> Scenario:
    if image in by_image:
        return SCENARIOS[by_image[image]]
    for key, name in by_image.items():
        if key in image:
            return SCENARIOS[name]
    return SCENARIOS[default]
