"""webservice.actions.wait against a scripted watch: transient quota refusals during a restart,
a rollout superseded by another restart, a Deployment deleted before the watch began."""

from __future__ import annotations

import time

from webservice.actions import wait

OURS = "2026-11-26T23:00:02Z"
OLD = "2026-11-26T22:00:00Z"
NEWER = "2026-11-26T23:00:05Z"


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def deployment(started_at=OURS, generation=2):
    return {"kind": "Deployment", "metadata": {"name": "mytool", "uid": "dep", "generation": generation},
            "spec": {"replicas": 1, "template": {"metadata": {"annotations": {"toolforge.org/started-at": started_at}}}},
            "status": {}}


def replicaset(started_at=OURS, have=0):
    return {"kind": "ReplicaSet", "metadata": {"name": f"rs-{started_at[-3:-1]}", "uid": f"rs-{started_at}"},
            "spec": {"replicas": 1, "template": {"metadata": {"annotations": {"toolforge.org/started-at": started_at}}}},
            "status": {"replicas": have}}


def pod(name, started_at=OURS, ready=False, deleting=False):
    meta = {"name": name, "uid": f"uid-{name}", "creationTimestamp": iso(time.time()),
            "annotations": {"toolforge.org/started-at": started_at}}
    if deleting:
        meta["deletionTimestamp"] = iso(time.time())
    return {"kind": "Pod", "metadata": meta,
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [{"name": "webservice", "ready": ready, "restartCount": 0,
                                              "state": {"running": {}}}]}}


def quota_refusal(rs, at: float, name="ev1"):
    return {"kind": "Event", "metadata": {"name": name, "uid": name}, "type": "Warning", "reason": "FailedCreate",
            "involvedObject": {"kind": "ReplicaSet", "name": rs["metadata"]["name"], "uid": rs["metadata"]["uid"]},
            "message": 'Error creating: pods "x" is forbidden: exceeded quota: tool-mytool, requested: pods=1, '
                       "used: pods=1, limited: pods=1",
            "count": 1, "firstTimestamp": iso(at), "lastTimestamp": iso(at)}


class Scripted:
    """A cluster whose watch yields the steps given (a callable is called when its turn
    comes, and what it returns, if not None, is yielded)."""

    def __init__(self, steps, deployment_exists=True):
        self.steps = steps
        self.gets = 0
        self.deployment_exists = deployment_exists

    def watch(self, *kinds, **kwargs):
        def stream():
            for step in self.steps:
                if callable(step):
                    step = step()
                    if step is None:
                        continue
                yield step
        return stream()

    def get(self, kind, name, namespace=None):
        self.gets += 1
        return deployment() if self.deployment_exists else None


def test_a_quota_refusal_just_after_the_old_pod_went_is_transient():
    """Restart under a pods=1 quota: the old pod counts while it terminates, and the quota's
    usage is recounted a moment after it went, so the new ReplicaSet is refused once more
    right after; the wait goes on and the new pod comes."""
    rs = replicaset()
    old = pod("old", started_at=OLD, ready=True)
    steps = [
        ("ADDED", deployment()), ("ADDED", rs),
        ("MODIFIED", pod("old", started_at=OLD, deleting=True)),
        ("ADDED", quota_refusal(rs, time.time())),
        ("DELETED", pod("old", started_at=OLD, deleting=True)),
        lambda: time.sleep(1.1),
        lambda: ("MODIFIED", quota_refusal(rs, time.time())),  # the recount lags: refused again
        ("ADDED", pod("new")),
        ("MODIFIED", pod("new", ready=True)),
    ]
    outcome = wait.wait_ready(Scripted(steps), started_at=OURS, timeout=10, since=time.time() - 5,
                              pods_before=([old], "1"))
    assert outcome.ready, outcome.problems


def test_a_quota_refusal_that_persists_after_the_old_pods_went_is_final():
    rs = replicaset()
    gone = time.time()
    steps = [("ADDED", deployment()), ("ADDED", rs), ("DELETED", pod("old", started_at=OLD)),
             ("ADDED", quota_refusal(rs, gone + 4))]
    outcome = wait.wait_ready(Scripted(steps), started_at=OURS, timeout=5, since=gone - 5,
                              pods_before=([pod("old", started_at=OLD, ready=True)], "1"))
    assert not outcome.ready and not outcome.timed_out
    assert outcome.problems[0].code == "failedcreate" and outcome.problems[0].certain


def test_a_superseded_rollout_is_followed_to_the_newer_one():
    """Two restarts: the other one applied a newer template (generation 3 > our 2) before our
    pods came; ours will never come, the wait follows the newer rollout and ends ready."""
    steps = [
        ("ADDED", deployment(OURS, 2)), ("ADDED", replicaset(OURS)),
        ("MODIFIED", deployment(NEWER, 3)), ("ADDED", replicaset(NEWER)),
        ("ADDED", pod("newer", started_at=NEWER)),
        ("MODIFIED", pod("newer", started_at=NEWER, ready=True)),
    ]
    outcome = wait.wait_ready(Scripted(steps), started_at=OURS, timeout=3, generation=2)
    assert outcome.ready and outcome.superseded_by == NEWER and not outcome.timed_out


def test_an_older_template_seen_before_our_apply_is_not_followed():
    steps = [("ADDED", deployment(OLD, 1)), ("MODIFIED", deployment(OURS, 2)),
             ("ADDED", pod("new")), ("MODIFIED", pod("new", ready=True))]
    outcome = wait.wait_ready(Scripted(steps), started_at=OURS, timeout=3, generation=2)
    assert outcome.ready and outcome.superseded_by is None


def test_a_deployment_deleted_before_the_watch_began_ends_the_wait_as_stopped():
    cluster = Scripted([("ADDED", pod("new", deleting=True)), lambda: time.sleep(0.05), (None, None)],
                       deployment_exists=False)
    outcome = wait.wait_ready(cluster, started_at=OURS, timeout=5, name="mytool")
    assert outcome.stopped and not outcome.timed_out
    assert cluster.gets == 1


def test_a_quiet_second_with_the_deployment_still_there_goes_on_waiting():
    cluster = Scripted([(None, None), ("ADDED", deployment()), ("ADDED", pod("new", ready=True))])
    outcome = wait.wait_ready(cluster, started_at=OURS, timeout=3, name="mytool")
    assert outcome.ready and cluster.gets == 1
