"""The controller simulation: each scenario's pod states, Events and logs, rollouts,
FailedCreate from LimitRange and ResourceQuota, the time scale."""

from __future__ import annotations

import pytest

NS = "tool-mytool"
REG = "docker-registry.tools.wmflabs.org"
IMAGE = f"{REG}/toolforge-python311-sssd-web:latest"
LABELS = {"toolforge": "tool", "name": "mytool", "app.kubernetes.io/component": "web",
          "app.kubernetes.io/managed-by": "webservice"}


def deployment(image=IMAGE, replicas=1, cpu="500m", probes=False, **spec):
    c = {"name": "webservice", "image": image, "ports": [{"name": "http", "containerPort": 8000}],
         "resources": {"limits": {"cpu": cpu, "memory": "512Mi"}, "requests": {"cpu": "125m", "memory": "256Mi"}}}
    if probes:
        c["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8000}, "periodSeconds": 5}
    if probes is True:
        c["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": 8000}, "initialDelaySeconds": 10,
                              "periodSeconds": 10, "failureThreshold": 3}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mytool", "labels": LABELS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": LABELS},
                     "template": {"metadata": {"labels": LABELS}, "spec": {"containers": [c]}}, **spec}}


def only_pod(standin):
    pods = standin.wait_for(lambda: standin.pods(name="mytool"))
    return pods[0]


def cstatus(standin, name):
    p = standin.get("Pod", NS, name)
    return ((p or {}).get("status") or {}).get("containerStatuses", [{}])[0] if p else {}


def reasons(standin, name):
    return [e["reason"] for e in sorted(standin.events(name=name),
                                        key=lambda e: (e.get("firstTimestamp") or e.get("eventTime"),
                                                       e["metadata"]["resourceVersion"]))]


def test_healthy(standin):
    standin.create(deployment())
    pod = only_pod(standin)
    name = pod["metadata"]["name"]
    standin.wait_for(lambda: (standin.get("Deployment", NS, "mytool")["status"].get("availableReplicas") == 1))
    pod = standin.get("Pod", NS, name)
    st = pod["status"]
    assert st["phase"] == "Running" and pod["spec"]["nodeName"]
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds == {"PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
                     "ContainersReady": "True", "PodScheduled": "True"}
    cs = st["containerStatuses"][0]
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0 and "running" in cs["state"]
    assert cs["containerID"].startswith("containerd://")
    assert set(reasons(standin, name)) == {"Scheduled", "Pulling", "Pulled", "Created", "Started"}
    sched = standin.events(reason="Scheduled")[0]
    assert sched["eventTime"] and sched["lastTimestamp"] is None and sched["reportingComponent"] == "default-scheduler"
    assert sched["message"] == f"Successfully assigned {NS}/{name} to {pod['spec']['nodeName']}"
    started = standin.events(reason="Started")[0]
    assert started["source"] == {"component": "kubelet", "host": pod["spec"]["nodeName"]}
    assert started["involvedObject"]["fieldPath"] == "spec.containers{webservice}"
    assert started["count"] == 1 and started["firstTimestamp"] == started["lastTimestamp"]
    dep = standin.get("Deployment", NS, "mytool")
    conds = {c["type"]: (c["status"], c["reason"]) for c in dep["status"]["conditions"]}
    assert conds == {"Available": ("True", "MinimumReplicasAvailable"),
                     "Progressing": ("True", "NewReplicaSetAvailable")}
    rs_name = standin.objects("ReplicaSet", NS)[0]["metadata"]["name"]
    assert standin.events(reason="ScalingReplicaSet")[0]["message"] == f"Scaled up replica set {rs_name} from 0 to 1"
    assert standin.events(reason="SuccessfulCreate")[0]["message"] == f"Created pod: {name}"


def test_status_is_stable_once_settled(standin):
    standin.create(deployment())
    standin.wait_for(lambda: (standin.get("Deployment", NS, "mytool")["status"].get("availableReplicas") == 1))
    import time
    time.sleep(0.1)
    rv = standin.store.rv
    time.sleep(0.3)
    assert standin.store.rv == rv  # no MODIFIED events from a settled cluster


def test_slow_start_readiness_probe_fails_until_up(standin):
    standin.image_scenarios = {"python311": "slow"}
    standin.create(deployment(probes="readiness"))
    name = only_pod(standin)["metadata"]["name"]
    standin.wait_for(lambda: cstatus(standin, name).get("state", {}).get("running"), timeout=10)
    assert not cstatus(standin, name)["ready"]
    ev = standin.wait_for(lambda: standin.events(reason="Unhealthy"), timeout=10)[0]
    assert ev["type"] == "Warning"
    assert ev["message"].startswith('Readiness probe failed: Get "http://')
    assert ev["message"].endswith(":8000: connect: connection refused")
    standin.wait_for(lambda: cstatus(standin, name).get("ready"), timeout=15)


def test_crashloop(standin):
    standin.scenario = "crashloop"
    standin.create(deployment())
    name = only_pod(standin)["metadata"]["name"]
    cs = standin.wait_for(lambda: (cstatus(standin, name).get("restartCount", 0) >= 2
                                   and "waiting" in cstatus(standin, name)["state"] and cstatus(standin, name)),
                          timeout=15)
    waiting = cs["state"]["waiting"]
    assert waiting["reason"] == "CrashLoopBackOff"
    uid = standin.get("Pod", NS, name)["metadata"]["uid"]
    assert waiting["message"].startswith("back-off ") and \
        waiting["message"].endswith(f"s restarting failed container=webservice pod={name}_{NS}({uid})")
    term = cs["lastState"]["terminated"]
    assert term["exitCode"] == 1 and term["reason"] == "Error" and term["finishedAt"]
    assert standin.get("Pod", NS, name)["status"]["phase"] == "Running"
    backoff = standin.events(reason="BackOff")[0]
    assert backoff["type"] == "Warning"
    assert backoff["message"] == f"Back-off restarting failed container webservice in pod {name}_{NS}({uid})"
    code, _, text = standin.http("GET", f"/api/v1/namespaces/{NS}/pods/{name}/log?previous=true")
    assert code == 200 and b"ModuleNotFoundError: No module named 'flask'" in text
    # without a readiness probe the container counts as ready while it runs, so availability
    # flaps with each restart (as on a real cluster); it is unavailable during back-off
    dep = standin.wait_for(lambda: {c["type"]: c["reason"] for c in standin.get("Deployment", NS, "mytool")[
        "status"]["conditions"]}["Available"] == "MinimumReplicasUnavailable" and standin.get("Deployment", NS, "mytool"))
    assert dep["status"]["unavailableReplicas"] == 1


def test_image_pull_failure(standin):
    bad = f"{REG}/toolforge-nope-web:latest"
    standin.image_scenarios = {bad: "imagepull"}
    standin.create(deployment(image=bad))
    name = only_pod(standin)["metadata"]["name"]
    cs = standin.wait_for(lambda: cstatus(standin, name).get("state", {}).get("waiting", {}).get("reason")
                          == "ImagePullBackOff" and cstatus(standin, name), timeout=10)
    assert cs["state"]["waiting"]["message"] == f'Back-off pulling image "{bad}"'
    failed = [e["message"] for e in standin.events(reason="Failed")]
    assert "Error: ErrImagePull" in failed and "Error: ImagePullBackOff" in failed
    assert any(m.startswith(f'Failed to pull image "{bad}": rpc error: code = NotFound') for m in failed)
    assert standin.get("Pod", NS, name)["status"]["phase"] == "Pending"
    code, _, status = standin.http("GET", f"/api/v1/namespaces/{NS}/pods/{name}/log")
    assert code == 400 and status["message"] == (f'container "webservice" in pod "{name}" is waiting to start: '
                                                  "trying and failing to pull image")


def test_unschedulable(standin):
    standin.scenario = "unschedulable"
    standin.create(deployment())
    name = only_pod(standin)["metadata"]["name"]
    ev = standin.wait_for(lambda: standin.events(reason="FailedScheduling"))[0]
    assert ev["type"] == "Warning" and ev["message"].startswith("0/12 nodes are available: 12 Insufficient memory.")
    assert ev["eventTime"] and ev["firstTimestamp"] is None
    pod = standin.get("Pod", NS, name)
    assert pod["status"]["phase"] == "Pending" and "containerStatuses" not in pod["status"]
    sched = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (sched["status"], sched["reason"]) == ("False", "Unschedulable")
    code, _, status = standin.http("GET", f"/api/v1/namespaces/{NS}/pods/{name}/log")
    assert code == 400 and status["message"] == f"pod {name} does not have a host assigned"


def test_oomkilled(standin):
    standin.scenario = "oomkilled"
    standin.create(deployment())
    name = only_pod(standin)["metadata"]["name"]
    cs = standin.wait_for(lambda: cstatus(standin, name).get("lastState", {}).get("terminated")
                          and cstatus(standin, name), timeout=10)
    assert cs["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert cs["lastState"]["terminated"]["exitCode"] == 137
    assert cs["restartCount"] >= 1


def test_never_ready(standin):
    standin.scenario = "neverready"
    standin.create(deployment(probes=True))
    name = only_pod(standin)["metadata"]["name"]
    standin.wait_for(lambda: standin.events(reason="Killing"), timeout=10)
    msgs = {e["message"] for e in standin.events(reason="Unhealthy")}
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in msgs
    assert "Liveness probe failed: HTTP probe failed with statuscode: 503" in msgs
    kill = standin.events(reason="Killing")[0]
    assert kill["message"] == "Container webservice failed liveness probe, will be restarted"
    pod = standin.get("Pod", NS, name)
    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False", "ContainersNotReady", "containers with unready status: [webservice]")


def test_progress_deadline_exceeded(standin):
    standin.scenario = "neverready"
    standin.create(deployment(probes=True, progressDeadlineSeconds=30))
    cond = standin.wait_for(lambda: next((c for c in standin.get("Deployment", NS, "mytool")["status"].get(
        "conditions", []) if c["type"] == "Progressing" and c["status"] == "False"), None), timeout=10)
    assert cond["reason"] == "ProgressDeadlineExceeded"
    assert cond["message"].endswith("has timed out progressing.")


def test_failed_create_from_limitrange(standin):
    standin.create(deployment(cpu="2"))
    ev = standin.wait_for(lambda: standin.events(reason="FailedCreate"))[0]
    rs = standin.objects("ReplicaSet", NS)[0]
    assert ev["type"] == "Warning" and ev["involvedObject"]["kind"] == "ReplicaSet"
    assert ev["source"]["component"] == "replicaset-controller"
    assert ev["message"] == (f'Error creating: pods "{rs["metadata"]["name"]}-" is forbidden: maximum cpu usage '
                             "per Container is 1, but limit is 2")
    dep = standin.wait_for(lambda: any(c["type"] == "ReplicaFailure" for c in
                                       standin.get("Deployment", NS, "mytool")["status"].get("conditions", []))
                           and standin.get("Deployment", NS, "mytool"))
    failure = next(c for c in dep["status"]["conditions"] if c["type"] == "ReplicaFailure")
    assert failure["reason"] == "FailedCreate"
    assert failure["message"] == ev["message"][len("Error creating: "):]
    assert standin.pods() == []
    standin.wait_for(lambda: standin.events(reason="FailedCreate")[0]["count"] >= 2, timeout=10)


def test_failed_create_from_quota(standin):
    standin.create(deployment(replicas=5))
    ev = standin.wait_for(lambda: standin.events(reason="FailedCreate"))[0]
    rs = standin.objects("ReplicaSet", NS)[0]["metadata"]["name"]
    assert ev["message"] == (f'Error creating: pods "{rs}-" is forbidden: exceeded quota: tool-mytool, '
                             "requested: limits.cpu=500m,pods=1, used: limits.cpu=2,pods=4, "
                             "limited: limits.cpu=2,pods=4")
    assert len(standin.pods()) == 4


def test_rolling_update_keeps_old_pod_until_new_one_is_ready(standin):
    standin.create(deployment(probes="readiness"))
    old = standin.wait_for(lambda: [p for p in standin.pods() if p["status"].get("phase") == "Running"])[0]
    standin.wait_for(lambda: standin.get("Deployment", NS, "mytool")["status"].get("availableReplicas") == 1)
    broken = f"{REG}/toolforge-broken-web:latest"
    standin.image_scenarios = {broken: "crashloop"}
    dep = standin.get("Deployment", NS, "mytool")
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = broken
    code, _, _ = standin.http("PUT", f"/apis/apps/v1/namespaces/{NS}/deployments/mytool", dep)
    assert code == 200
    standin.wait_for(lambda: any(cstatus(standin, p["metadata"]["name"]).get("restartCount", 0) >= 1
                                 for p in standin.pods() if p["metadata"]["name"] != old["metadata"]["name"]),
                     timeout=10)
    assert standin.get("Pod", NS, old["metadata"]["name"])["metadata"].get("deletionTimestamp") is None
    assert len(standin.objects("ReplicaSet", NS)) == 2
    status = standin.get("Deployment", NS, "mytool")["status"]
    assert status["updatedReplicas"] == 1 and status["availableReplicas"] == 1 and status["replicas"] == 2
    # fix the image: the new ReplicaSet takes over, the old pods go
    dep = standin.get("Deployment", NS, "mytool")
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = IMAGE
    dep["spec"]["template"]["metadata"]["annotations"] = {"toolforge.org/started-at": "2026-01-01T00:00:00Z"}
    assert standin.http("PUT", f"/apis/apps/v1/namespaces/{NS}/deployments/mytool", dep)[0] == 200
    standin.wait_for(lambda: len(standin.pods()) == 1 and standin.pods()[0]["metadata"]["name"] !=
                     old["metadata"]["name"] and standin.get("Deployment", NS, "mytool")["status"].get(
                         "updatedReplicas") == 1 and standin.get("Deployment", NS, "mytool")["status"].get(
                         "availableReplicas") == 1, timeout=10)
    scaled = [rs["spec"]["replicas"] for rs in standin.objects("ReplicaSet", NS)]
    assert sorted(scaled) == [0, 0, 1]


def test_time_scale_zero_runs_as_fast_as_possible(standin):
    standin.time_scale = 0
    standin.scenario = "crashloop"
    standin.create(deployment())
    name = only_pod(standin)["metadata"]["name"]
    cs = standin.wait_for(lambda: cstatus(standin, name).get("restartCount", 0) >= 5 and cstatus(standin, name),
                          timeout=5)
    assert cs["lastState"]["terminated"]["exitCode"] == 1


@pytest.mark.parametrize("scale", [0.001, 0.005])
def test_time_scale_slows_simulation_down(standin, scale):
    standin.time_scale = scale
    standin.create(deployment())
    import time
    t = time.monotonic()
    standin.wait_for(lambda: standin.get("Deployment", NS, "mytool")["status"].get("availableReplicas") == 1)
    # scheduling + sandbox + 1.5 simulated seconds of image pull
    assert time.monotonic() - t >= 1.9 * scale


def test_exit0_pod_succeeds(standin):
    standin.scenario = "exit0"
    standin.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job"},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": IMAGE}]}})
    pod = standin.wait_for(lambda: standin.get("Pod", NS, "job")["status"].get("phase") == "Succeeded"
                           and standin.get("Pod", NS, "job"))
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"
    code, _, text = standin.http("GET", f"/api/v1/namespaces/{NS}/pods/job/log")
    assert code == 200 and text == b"done\n"


def test_slow_start_with_aggressive_liveness_probe_is_killed(standin):
    standin.scenario = "slow"
    standin.create(deployment(probes=True))
    name = only_pod(standin)["metadata"]["name"]
    standin.wait_for(lambda: cstatus(standin, name).get("restartCount", 0) >= 1, timeout=10)
    assert any(e["message"].startswith("Liveness probe failed: Get ") for e in standin.events(reason="Unhealthy"))


def test_quota_failed_create_is_transient_while_the_old_pod_terminates(standin):
    """maxSurge 0 under a one-pod quota: the old pod still counts while it terminates, so the
    new ReplicaSet's first attempts fail (as on a real cluster), then succeed."""
    standin.set_quota({"pods": "1"})
    standin.create(deployment())
    standin.wait_for(lambda: standin.get("Deployment", NS, "mytool")["status"].get("availableReplicas") == 1)
    dep = standin.get("Deployment", NS, "mytool")
    dep["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    dep["spec"]["template"]["metadata"]["annotations"] = {"toolforge.org/started-at": "2026-01-01T00:00:00Z"}
    assert standin.http("PUT", f"/apis/apps/v1/namespaces/{NS}/deployments/mytool", dep)[0] == 200

    def rolled_out():
        d = standin.get("Deployment", NS, "mytool")
        st = d["status"]
        return (st.get("observedGeneration") == d["metadata"]["generation"] and st.get("updatedReplicas") == 1
                and st.get("availableReplicas") == 1 and len(standin.pods()) == 1)
    standin.wait_for(rolled_out)
    failed = standin.events(reason="FailedCreate")
    assert len(failed) == 1 and "exceeded quota: tool-mytool, requested: pods=1, used: pods=1" in failed[0]["message"]
    new_rs = max(standin.objects("ReplicaSet", NS), key=lambda r: r["spec"]["replicas"])
    assert failed[0]["involvedObject"]["name"] == new_rs["metadata"]["name"]
    assert any(e["involvedObject"]["name"] == new_rs["metadata"]["name"] for e in standin.events(reason="SuccessfulCreate"))
