"""webservice.health.diagnose and the pure parts of webservice.actions.status: tables of pod, event and
replica set fixtures in the shapes a real API server (and the stand-in) returns."""

from __future__ import annotations

from decimal import Decimal

import pytest

from webservice.health import diagnose
from webservice.actions.status import Snapshot, classify, summarise

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def iso(offset: float = 0.0) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + offset))


STARTED = iso(-60)


def pod(name="mytool-abc-1", uid=None, *, state=None, last=None, restarts=0, ready=False, scheduled=True,
        unschedulable=None, started_at=STARTED, deleting=False, containers=True, image="img:latest"):
    status = {"phase": "Running" if state and "running" in state else "Pending", "conditions": []}
    status["conditions"].append({"type": "Ready", "status": "True" if ready else "False"})
    if unschedulable:
        status["conditions"].append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                     "message": unschedulable, "lastTransitionTime": iso(-1)})
    elif scheduled:
        status["conditions"].append({"type": "PodScheduled", "status": "True"})
    if containers and not unschedulable:
        status["containerStatuses"] = [{
            "name": "webservice", "image": image, "ready": ready, "restartCount": restarts,
            "state": state or {"waiting": {"reason": "ContainerCreating"}}, "lastState": last or {},
        }]
    meta = {"name": name, "uid": uid or f"uid-{name}", "creationTimestamp": iso(-30),
            "annotations": {"toolforge.org/started-at": started_at}}
    if deleting:
        meta["deletionTimestamp"] = iso()
    return {"kind": "Pod", "metadata": meta, "status": status, "spec": {"nodeName": "node-1"}}


def event(obj, reason, message, type_="Warning", offset=0.0, count=1):
    return {"kind": "Event", "metadata": {"name": f"ev-{reason}-{offset}", "uid": f"ev-{reason}-{offset}-{message[:5]}"},
            "involvedObject": {"kind": obj["kind"], "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"]},
            "reason": reason, "message": message, "type": type_, "count": count,
            "firstTimestamp": iso(offset), "lastTimestamp": iso(offset)}


def replicaset(name="mytool-abc", wanted=1, have=0, started_at=STARTED):
    return {"kind": "ReplicaSet", "metadata": {"name": name, "uid": f"uid-{name}"},
            "spec": {"replicas": wanted, "template": {"metadata": {"annotations": {"toolforge.org/started-at": started_at}}}},
            "status": {"replicas": have}}


def deployment(replicas=1, started_at=STARTED, memory="512Mi"):
    return {"kind": "Deployment", "metadata": {"name": "mytool", "uid": "uid-dep"},
            "spec": {"replicas": replicas, "template": {
                "metadata": {"annotations": {"toolforge.org/started-at": started_at}},
                "spec": {"containers": [{"name": "webservice", "image": "img:latest",
                                         "command": ["/usr/bin/webservice-runner", "--type", "uwsgi-python", "--port", "8000"],
                                         "resources": {"limits": {"cpu": "500m", "memory": memory},
                                                       "requests": {"cpu": "250m", "memory": "256Mi"}}}]}}}}


CRASHED = {"terminated": {"exitCode": 1, "reason": "Error"}}
OOM = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
RUNNING = {"running": {"startedAt": iso(-10)}}
BACKOFF = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container"}}


def codes(problems):
    return [(p.code, p.certain) for p in problems]


# --- table: one pod, its events -> the problem found -------------------------------------

P = pod  # short alias for the table


CASES = [
    ("healthy", P(state=RUNNING, ready=True), [], []),
    ("creating", P(), [], []),
    ("crash once, restarting", P(state=RUNNING, last=CRASHED, restarts=1), [], [("crashloop", False)]),
    ("crash loop back-off", P(state=BACKOFF, last=CRASHED, restarts=1), [], [("crashloop", True)]),
    ("crashed twice", P(state=RUNNING, last=CRASHED, restarts=2), [], [("crashloop", True)]),
    ("exit 0 loop", P(state=BACKOFF, last={"terminated": {"exitCode": 0, "reason": "Completed"}}, restarts=3), [],
     [("crashloop", True)]),
    ("oom", P(state=RUNNING, last=OOM, restarts=1), [], [("oom", True)]),
    ("oom in back-off", P(state=BACKOFF, last=OOM, restarts=2), [], [("oom", True)]),
    ("image pull back-off", P(state={"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling"}}), [],
     [("imagepull", True)]),
    ("image pull first try", P(state={"waiting": {"reason": "ErrImagePull", "message": "timeout"}}), [],
     [("imagepull", False)]),
    ("image not found", P(state={"waiting": {"reason": "ErrImagePull", "message": "x: not found"}}), [],
     [("imagepull", True)]),
    ("invalid image name", P(state={"waiting": {"reason": "InvalidImageName", "message": "bad"}}), [],
     [("imagepull", True)]),
    ("unschedulable just now", P(unschedulable="0/3 nodes are available: 3 Insufficient memory."), [],
     [("unschedulable", False)]),
    ("terminating pods are ignored", P(state=BACKOFF, last=CRASHED, restarts=5, deleting=True), [], []),
]


@pytest.mark.parametrize("name,the_pod,event_specs,expected", CASES, ids=[c[0] for c in CASES])
def test_pod_table(name, the_pod, event_specs, expected):
    events = [event(the_pod, *spec) for spec in event_specs]
    assert codes(diagnose.diagnose([the_pod], events, now=NOW)) == expected


def test_unschedulable_becomes_certain_after_grace_or_repeats():
    p = pod(unschedulable="0/3 nodes are available: 3 Insufficient memory.")
    assert codes(diagnose.diagnose([p], [], now=NOW + 10)) == [("unschedulable", True)]
    repeated = [event(p, "FailedScheduling", "0/3 nodes are available", count=2)]
    problems = diagnose.diagnose([p], repeated, now=NOW)
    assert codes(problems) == [("unschedulable", True)]
    assert "Insufficient memory" in problems[0].message


def test_crash_message_names_exit_code_and_asks_for_log():
    [problem] = diagnose.diagnose([pod(state=BACKOFF, last=CRASHED, restarts=3)], [], now=NOW)
    assert "exited with code 1" in problem.message and "restarted 3" in problem.message
    assert problem.wants_log and problem.pod == "mytool-abc-1" and problem.container == "webservice"
    assert problem.exit_code == 1


def test_exit_zero_explains_a_webservice_must_keep_running():
    [problem] = diagnose.diagnose([pod(state=BACKOFF, last={"terminated": {"exitCode": 0, "reason": "Completed"}},
                                       restarts=2)], [], now=NOW)
    assert "instead of serving" in problem.message and "keep running" in problem.hint


@pytest.mark.parametrize("limit,maximum,suggested", [
    (Decimal(512 * 2**20), None, "--mem 1Gi"),
    (Decimal(2**30), Decimal(4 * 2**30), "--mem 2Gi"),
    (Decimal(3 * 2**30), Decimal(4 * 2**30), "--mem 4Gi"),
])
def test_oom_suggests_more_memory_within_the_limit_range(limit, maximum, suggested):
    [problem] = diagnose.diagnose([pod(state=RUNNING, last=OOM, restarts=1)], [], now=NOW, mem_limit=limit,
                                  max_memory=maximum)
    assert suggested in problem.hint
    assert "out of memory" in problem.message and "137" in problem.message


def test_oom_at_the_maximum_says_use_less():
    [problem] = diagnose.diagnose([pod(state=RUNNING, last=OOM, restarts=1)], [], now=NOW,
                                  mem_limit=Decimal(4 * 2**30), max_memory=Decimal(4 * 2**30))
    assert "most memory" in problem.hint


def test_image_pull_message_uses_the_failed_event_reason():
    p = pod(state={"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}})
    failed = event(p, "Failed", 'Failed to pull image "x": rpc error: code = NotFound desc = failed to pull and '
                                'unpack image "x": failed to resolve reference "x": x: not found')
    [problem] = diagnose.diagnose([p], [failed], now=NOW)
    assert problem.message.endswith("not found")
    assert "build" in problem.hint


def test_failed_create_quota_message_is_the_servers():
    rs = replicaset()
    message = ('pods "mytool-abc-x" is forbidden: exceeded quota: tool-mytool, requested: limits.memory=8Gi, '
               'used: limits.memory=4Gi, limited: limits.memory=8Gi')
    problems = diagnose.diagnose([], [event(rs, "FailedCreate", message)], [rs], now=NOW)
    assert codes(problems) == [("failedcreate", True)]
    assert message in problems[0].message
    assert "--mem" in problems[0].hint and "jobs" in problems[0].hint


def test_failed_create_while_old_pods_still_count_is_not_certain():
    rs = replicaset()
    quota = event(rs, "FailedCreate", "exceeded quota: tool-mytool, requested: pods=1, used: pods=1, limited: pods=1")
    assert codes(diagnose.diagnose([], [quota], [rs], now=NOW, rolling=True)) == [("failedcreate", False)]
    # the old pod went at NOW: an event from that very second may be from before it went
    assert codes(diagnose.diagnose([], [quota], [rs], now=NOW, failed_create_after=NOW)) == [("failedcreate", False)]
    # refused again just after the old pod went: the quota's usage was not recounted yet
    soon = event(rs, "FailedCreate", "exceeded quota: again", offset=1)
    assert codes(diagnose.diagnose([], [soon], [rs], now=NOW + 1, failed_create_after=NOW)) == [("failedcreate", False)]
    # still refused well after the last old pod went: it persists, it is final
    later = event(rs, "FailedCreate", "exceeded quota: again", offset=diagnose.FAILED_CREATE_GRACE)
    assert codes(diagnose.diagnose([], [later], [rs], now=NOW + 5, failed_create_after=NOW)) == [("failedcreate", True)]


def test_failed_create_is_certain_at_once_when_the_request_alone_is_over_the_quota():
    rs = replicaset()
    alone = ('pods "mytool-abc-x" is forbidden: exceeded quota: tool-mytool, requested: limits.memory=8Gi,pods=1, '
             'used: limits.memory=0,pods=0, limited: limits.memory=4Gi,pods=4')
    assert diagnose.request_alone_exceeds(alone)
    # even while an old pod terminates: its going cannot make room for this
    assert codes(diagnose.diagnose([], [event(rs, "FailedCreate", alone)], [rs], now=NOW, rolling=True)) == [
        ("failedcreate", True)]
    shared = "exceeded quota: tool-mytool, requested: pods=1, used: pods=1, limited: pods=1"
    assert not diagnose.request_alone_exceeds(shared)
    assert not diagnose.request_alone_exceeds("exceeded quota: garbled")


def test_failed_create_while_a_pod_of_the_same_template_terminates_is_not_certain():
    """The transient refusal of a restart under a tight quota: the old pod, terminating,
    still counts (status.problems_of passes rolling for terminating pods of any template)."""
    from webservice.actions.status import problems_of

    rs = replicaset()
    quota = event(rs, "FailedCreate", "exceeded quota: tool-mytool, requested: pods=1, used: pods=1, limited: pods=1")
    going = pod("going", state=RUNNING, deleting=True)  # same template, being deleted
    snap = Snapshot(deployment(), [going], [rs], [quota])
    assert codes(problems_of(snap, now=NOW)) == [("failedcreate", False)]
    snap.pods = []
    assert codes(problems_of(snap, now=NOW)) == [("failedcreate", True)]


def test_failed_create_limit_range_hint():
    rs = replicaset()
    message = 'pods "x" is forbidden: maximum memory usage per Container is 4Gi, but limit is 8Gi'
    [problem] = diagnose.diagnose([], [event(rs, "FailedCreate", message)], [rs], now=NOW)
    assert "per-container" in problem.hint


def test_failed_create_ignored_once_the_replicaset_caught_up_or_when_old():
    rs = replicaset(have=1)
    assert diagnose.diagnose([], [event(rs, "FailedCreate", "exceeded quota")], [rs], now=NOW) == []
    rs = replicaset()
    old = event(rs, "FailedCreate", "exceeded quota", offset=-600)
    assert diagnose.diagnose([], [old], [rs], now=NOW, since=NOW - 60) == []


def test_events_about_other_objects_are_ignored():
    mine = pod(state=RUNNING)
    other = pod(name="jobpod", state=RUNNING)
    evs = [event(other, "Unhealthy", "Readiness probe failed: 503"),
           event(other, "Killing", "Container webservice failed liveness probe, will be restarted")]
    assert diagnose.diagnose([mine], evs, now=NOW) == []


def test_probe_failing_is_reported_but_not_certain():
    p = pod(state=RUNNING)
    [problem] = diagnose.diagnose([p], [event(p, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503")],
                                  now=NOW)
    assert (problem.code, problem.certain) == ("neverready", False)
    assert "503" in problem.message


def test_killed_for_failing_probe_is_certain_never_ready():
    p = pod(state=BACKOFF, last={"terminated": {"exitCode": 137, "reason": "Error"}}, restarts=2)
    evs = [event(p, "Unhealthy", "Startup probe failed: HTTP probe failed with statuscode: 503", count=90),
           event(p, "Killing", "Container webservice failed startup probe, will be restarted")]
    [problem] = diagnose.diagnose([p], evs, now=NOW)
    assert (problem.code, problem.certain) == ("neverready", True)
    assert "health check" in problem.message and "statuscode: 503" in problem.message


def test_one_problem_per_code_counting_pods_certain_first():
    pods = [pod(name=f"p{i}", state=BACKOFF, last=CRASHED, restarts=2) for i in range(3)]
    pods.append(pod(name="q", unschedulable="no room"))
    problems = diagnose.diagnose(pods, [], now=NOW)
    assert codes(problems) == [("crashloop", True), ("unschedulable", False)]
    assert problems[0].count == 3


def test_event_times_old_and_new_styles():
    assert diagnose.event_time({"lastTimestamp": "2027-01-15T08:00:00Z"}) == NOW
    assert diagnose.event_time({"lastTimestamp": None, "eventTime": "2027-01-15T08:00:00.500000Z"}) == NOW + 0.5
    assert diagnose.event_time({"series": {"lastObservedTime": "2027-01-15T08:00:01.000000Z"},
                                "eventTime": "2027-01-15T08:00:00.000000Z"}) == NOW + 1
    assert diagnose.parse_time("garbage") is None  # the one parser (webservice.text), used here


def test_pod_info():
    info = diagnose.pod_info(pod(state=RUNNING, last=CRASHED, restarts=2, ready=True), NOW)
    assert (info.state, info.ready, info.restarts, info.last_termination) == ("running", True, 2, "Error (exit code 1)")
    assert int(info.age) == 30 and info.started_at == STARTED
    pending = diagnose.pod_info(pod(unschedulable="no"), NOW)
    assert pending.state == "pending: Unschedulable"


# --- status classification -----------------------------------------------------------------


@pytest.mark.parametrize("name,snapshot,state,ready", [
    ("no deployment", Snapshot(), "stopped", 0),
    ("ready", Snapshot(deployment(), [pod(state=RUNNING, ready=True)]), "running", 1),
    ("creating", Snapshot(deployment(), [pod()]), "starting", 0),
    ("no pods yet", Snapshot(deployment(), []), "starting", 0),
    ("crashing", Snapshot(deployment(), [pod(state=BACKOFF, last=CRASHED, restarts=2)]), "crashing", 0),
    ("one of two crashing", Snapshot(deployment(2), [pod("a", state=RUNNING, ready=True),
                                                    pod("b", state=BACKOFF, last=CRASHED, restarts=2)]), "degraded", 1),
    ("rolling out: old pod serves", Snapshot(deployment(), [pod("old", state=RUNNING, ready=True, started_at=iso(-999)),
                                                            pod("new")]), "starting", 1),
    ("new pod crashing, old still serves", Snapshot(deployment(), [
        pod("old", state=RUNNING, ready=True, started_at=iso(-999)),
        pod("new", state=BACKOFF, last=CRASHED, restarts=2)]), "degraded", 1),
    ("old pod terminating", Snapshot(deployment(), [pod("old", state=RUNNING, started_at=iso(-999), deleting=True),
                                                    pod("new", state=RUNNING, ready=True)]), "running", 1),
    ("scaled to zero", Snapshot(deployment(0), []), "degraded", 0),
    # the new pod serves but a pod of the old template still runs (not yet told to go): the
    # rollout is not over, so it is not "running" yet (a restart must not report success early)
    ("new pod ready, old pod still running", Snapshot(deployment(), [
        pod("old", state=RUNNING, ready=True, started_at=iso(-999)),
        pod("new", state=RUNNING, ready=True)]), "starting", 2),
    ("both pods of the new template ready, one old one left", Snapshot(deployment(2), [
        pod("a", state=RUNNING, ready=True), pod("b", state=RUNNING, ready=True),
        pod("old", state=RUNNING, started_at=iso(-999))]), "starting", 2),
])
def test_classify(name, snapshot, state, ready):
    result = summarise("mytool", "tool-mytool", snapshot, type_name="python3.11", now=NOW)
    assert result.state == state
    assert result.replicas["ready"] == ready
    assert result.exit_code == {"running": 0, "stopped": 3}.get(state, 4)
    assert result.healthy == (state == "running")


def test_summary_fields_and_json_shape():
    snap = Snapshot(deployment(), [pod(state=BACKOFF, last=CRASHED, restarts=2)],
                    routes=[{"kind": "Ingress", "spec": {"rules": [{"host": "mytool.toolforge.org",
                                                                    "http": {"paths": [{"path": "/"}]}}]}}])
    snap.events = [event(snap.pods[0], "BackOff", "Back-off restarting failed container", count=2),
                   event(snap.pods[0], "BackOff", "Back-off restarting failed container", offset=1, count=3)]
    result = summarise("mytool", "tool-mytool", snap, type_name="python3.11", now=NOW)
    data = result.as_dict()
    assert set(data) == {"schema", "tool", "namespace", "state", "healthy", "type", "image", "runner", "replicas",
                         "pods", "urls", "routes", "resources", "started_at", "problems", "events", "exit_code"}
    assert data["urls"] == ["https://mytool.toolforge.org/"]
    assert [(r["kind"], r["hostnames"], r["state"]) for r in data["routes"]] == [
        ("Ingress", ["mytool.toolforge.org"], "unchecked")]
    assert data["runner"] == "uwsgi-python"
    assert data["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    assert [p["code"] for p in data["problems"]] == ["crashloop"]
    assert len(data["events"]) == 1 and data["events"][0]["count"] == 5  # repeats merged
    assert data["pods"][0]["last_termination"] == "Error (exit code 1)"


def test_legacy_and_httproute_urls():
    routes = [{"kind": "Ingress", "spec": {"rules": [{"host": "tools.wmflabs.org",
                                                      "http": {"paths": [{"path": "/mytool(/|$)(.*)"}]}}]}},
              {"kind": "HTTPRoute", "spec": {"hostnames": ["mytool.toolforge.org"]}}]
    result = summarise("mytool", "ns", Snapshot(deployment(), [], routes=routes), type_name=None, now=NOW)
    assert result.urls == ["https://tools.wmflabs.org/mytool/", "https://mytool.toolforge.org/"]


def test_quota_refusal_during_a_rollover_is_starting_not_crashing():
    rs = replicaset()
    snap = Snapshot(deployment(), [pod("old", state=RUNNING, started_at=iso(-999), deleting=True)], [rs],
                    [event(rs, "FailedCreate", "exceeded quota: pods=1")])
    assert summarise("mytool", "ns", snap, type_name=None, now=NOW).state == "starting"


def test_a_pod_not_ready_for_minutes_is_no_longer_starting():
    p = pod(state=RUNNING)
    p["metadata"]["creationTimestamp"] = iso(-600)
    probe = event(p, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503")
    result = summarise("mytool", "ns", Snapshot(deployment(), [p], events=[probe]), type_name=None, now=NOW)
    assert result.state == "crashing" and result.problems[0].code == "neverready"
    young = pod(state=RUNNING)
    result = summarise("mytool", "ns", Snapshot(deployment(), [young], events=[event(young, "Unhealthy", "x")]),
                       type_name=None, now=NOW)
    assert result.state == "starting"


def test_classify_is_pure():
    snap = Snapshot(deployment(), [pod(state=RUNNING, ready=True)])
    assert classify(snap, []) == ("running", {"desired": 1, "ready": 1, "updated": 1})


def test_status_constants_agree_with_the_object_builders():
    """status repeats three values of webservice.builders.objects so that reading a status does not
    import the builders (and quantity, decimal): they must stay the same."""
    from webservice.builders import objects
    from webservice.actions import status

    assert status.CONTAINER == objects.CONTAINER
    assert status.STARTED_AT == objects.STARTED_AT
    assert status.selector() == objects.selector()


def test_reading_a_status_imports_no_builders_rich_or_kubernetes():
    import subprocess
    import sys

    code = ("import sys, webservice.actions.lifecycle, webservice.kube.cluster, webservice.ui.output; "
            "print(sorted(m for m in ('webservice.builders.objects', 'webservice.model.quantity', 'webservice.actions.preflight', "
            "'decimal', 'rich', 'kubernetes', 'webservice.actions.wait') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
