"""Simulated scheduler and kubelet: one ``PodSim`` per pod, driving its status, Events
and logs through the pod's scenario on the controller's simulated clock.

Messages follow kubelet 1.29 (``Pulling image "x"``, ``Successfully pulled image "x" in
1.5s (1.5s including waiting)``, ``Created container webservice``, ``Back-off restarting
failed container webservice in pod p_ns(uid)``, ``Readiness probe failed: ...``), and the
scheduler's ``Successfully assigned ns/p to node`` / ``FailedScheduling``.
"""

from __future__ import annotations

import random
import secrets

from . import events
from .scenarios import Scenario
from .store import now_rfc3339

NODE = "tools-k8s-worker-nfs-7"
HOST_IP = "172.16.3.77"


def _qos(pod):
    cs = (pod.get("spec") or {}).get("containers") or []
    res = [c.get("resources") or {} for c in cs]
    if not any(r.get("limits") or r.get("requests") for r in res):
        return "BestEffort"
    if all(r.get("limits") and r.get("limits") == r.get("requests") for r in res):
        return "Guaranteed"
    return "Burstable"


class ContainerSim:
    def __init__(self, spec: dict):
        self.spec = spec
        self.name = spec["name"]
        self.image = spec.get("image", "")
        self.restart_count = 0
        self.state = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state = {}
        self.ready = False
        self.started = False
        self.container_id = ""
        self.run_id = 0  # incremented per container instance
        self.backoff = 0.0
        self.pull_backoff = 0.0
        self.started_sim = None
        self.started_at = None
        self.startup_ok = "startupProbe" not in spec
        self.probe_failures = {"readinessProbe": 0, "livenessProbe": 0, "startupProbe": 0}

    def status(self) -> dict:
        out = {"name": self.name, "state": self.state, "lastState": self.last_state, "ready": self.ready,
               "restartCount": self.restart_count, "image": self.image,
               "imageID": f"{self.image.split(':')[0]}@sha256:{'ab' * 32}" if self.container_id else "",
               "started": self.started}
        if self.container_id:
            out["containerID"] = self.container_id
        return out


class PodSim:
    def __init__(self, ctl, pod: dict, scenario: Scenario):
        self.ctl = ctl
        self.ns = pod["metadata"]["namespace"]
        self.name = pod["metadata"]["name"]
        self.uid = pod["metadata"]["uid"]
        self.scenario = scenario
        spec = pod.get("spec") or {}
        self.restart_policy = spec.get("restartPolicy", "Always")
        self.interactive = any(c.get("stdin") for c in spec.get("containers") or [])
        self.containers = [ContainerSim(c) for c in spec.get("containers") or []]
        self.conditions: dict[str, dict] = {}
        self.phase = "Pending"
        self.pod_ip = ""
        self.start_time = None
        self.scheduled = False
        self.deleting = False
        self.gone = False
        self.qos = _qos(pod)
        self.attached = False  # set when an attach session owns the container process

    # -- helpers ---------------------------------------------------------------------
    @property
    def store(self):
        return self.ctl.store

    def pod(self):
        p = self.store.get("Pod", self.ns, self.name)
        return p if p is not None and p["metadata"]["uid"] == self.uid else None

    def event(self, reason, message, type_="Normal", container=None, component="kubelet", new_style=False):
        pod = self.pod()
        if pod is None:
            return
        fp = None
        if container is not None:
            idx = [c.name for c in self.containers].index(container.name)
            fp = f"spec.containers{{{container.name}}}" if idx >= 0 else None
        events.record(self.store, pod, reason, message, type_, component=component,
                      host=NODE if component == "kubelet" else None, field_path=fp, new_style=new_style)

    def later(self, delay, fn):
        run_ids = {c.name: c.run_id for c in self.containers}

        def guarded():
            if self.gone:
                return
            fn()
        guarded.run_ids = run_ids
        self.ctl.schedule(delay, guarded)

    def cond(self, type_, status, reason=None, message=None):
        cur = self.conditions.get(type_)
        if cur and cur["status"] == status and cur.get("reason") == reason and cur.get("message") == message:
            return
        c = {"type": type_, "status": status, "lastProbeTime": None,
             "lastTransitionTime": cur["lastTransitionTime"] if cur and cur["status"] == status else now_rfc3339()}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        self.conditions[type_] = c

    # -- lifecycle -------------------------------------------------------------------
    def begin(self):
        if not self.scenario.schedulable:
            self.cond("PodScheduled", "False", "Unschedulable", self.scenario.unschedulable_message)
            self.unschedulable()
            return
        self.later(0.1, self.schedule_pod)

    def unschedulable(self):
        self.event("FailedScheduling", self.scenario.unschedulable_message, "Warning",
                   component="default-scheduler", new_style=True)
        self.later(60, self.unschedulable)

    def schedule_pod(self):
        pod = self.pod()
        if pod is None:
            return
        pod["spec"]["nodeName"] = NODE
        self.store.update("Pod", pod)
        self.scheduled = True
        self.start_time = now_rfc3339()
        self.pod_ip = f"192.168.{random.randint(0, 255)}.{random.randint(1, 254)}"
        self.cond("PodScheduled", "True")
        self.cond("PodReadyToStartContainers", "False")
        self.cond("Initialized", "True")
        self.not_ready()
        self.event("Scheduled", f"Successfully assigned {self.ns}/{self.name} to {NODE}",
                   component="default-scheduler", new_style=True)
        self.later(0.3, self.sandbox_ready)

    def sandbox_ready(self):
        self.cond("PodReadyToStartContainers", "True")
        for c in self.containers:
            self.pull(c)

    def not_ready(self):
        unready = [c.name for c in self.containers if not c.ready]
        if unready:
            msg = f"containers with unready status: [{' '.join(unready)}]"
            self.cond("Ready", "False", "ContainersNotReady", msg)
            self.cond("ContainersReady", "False", "ContainersNotReady", msg)
        else:
            self.cond("Ready", "True")
            self.cond("ContainersReady", "True")

    def pull(self, c: ContainerSim):
        if self.deleting:
            return
        self.event("Pulling", f'Pulling image "{c.image}"', container=c)
        self.later(self.scenario.pull_seconds, lambda: self.pulled(c))

    def pulled(self, c: ContainerSim):
        if self.deleting:
            return
        err = self.scenario.pull_error
        if err:
            ref = c.image.split("@")[0]
            msg = (f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": failed to '
                   f'resolve reference "{ref}": {ref}: not found')
            self.event("Failed", f'Failed to pull image "{c.image}": {msg}', "Warning", container=c)
            self.event("Failed", "Error: ErrImagePull", "Warning", container=c)
            c.state = {"waiting": {"reason": "ErrImagePull", "message": msg}}
            c.pull_backoff = min(300.0, (c.pull_backoff * 2) or 10.0)
            self.later(1.0, lambda: self.pull_backoff(c))
            return
        secs = self.scenario.pull_seconds
        self.event("Pulled", f'Successfully pulled image "{c.image}" in {secs}s ({secs}s including waiting)',
                   container=c)
        self.start_container(c)

    def pull_backoff(self, c):
        if self.deleting:
            return
        c.state = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{c.image}"'}}
        self.event("BackOff", f'Back-off pulling image "{c.image}"', container=c)
        self.event("Failed", "Error: ImagePullBackOff", "Warning", container=c)
        self.later(c.pull_backoff, lambda: self.pull(c))

    def start_container(self, c: ContainerSim):
        if self.deleting:
            return
        c.run_id += 1
        c.container_id = "containerd://" + secrets.token_hex(32)
        c.started_sim = self.ctl.sim_now
        c.started_at = now_rfc3339()
        c.state = {"running": {"startedAt": c.started_at}}
        c.startup_ok = "startupProbe" not in c.spec
        c.started = c.startup_ok
        c.probe_failures = {k: 0 for k in c.probe_failures}
        self.phase = "Running"
        self.event("Created", f"Created container {c.name}", container=c)
        self.event("Started", f"Started container {c.name}", container=c)
        self.ctl.logs.start_instance(self.ns, self.name, c.name, c.container_id)
        if not self.interactive:
            for line in self.scenario.logs:
                self.ctl.logs.append(self.ns, self.name, c.name, line)
        run = c.run_id
        if self.scenario.run_seconds is not None and not self.interactive:
            self.later(self.scenario.run_seconds,
                       lambda: c.run_id == run and self.container_exit(c, self.scenario.exit_code,
                                                                       self.scenario.exit_reason))
        self.schedule_probes(c, run)

    def schedule_probes(self, c, run):
        spec = c.spec
        if "startupProbe" in spec:
            self.later(spec["startupProbe"].get("initialDelaySeconds", 0) or 0.01,
                       lambda: self.probe(c, run, "startupProbe"))
        else:
            self.after_startup(c, run)

    def after_startup(self, c, run):
        spec = c.spec
        c.started = True
        if "readinessProbe" in spec:
            self.later(spec["readinessProbe"].get("initialDelaySeconds", 0) or 0.01,
                       lambda: self.probe(c, run, "readinessProbe"))
        else:
            c.ready = True
            self.not_ready()
        if "livenessProbe" in spec:
            self.later(spec["livenessProbe"].get("initialDelaySeconds", 0) or 0.01,
                       lambda: self.probe(c, run, "livenessProbe"))

    def probe_failure(self, c, probe) -> str | None:
        up = self.ctl.sim_now - (c.started_sim or 0) >= self.scenario.ready_after
        if up and not self.scenario.probes_fail:
            return None
        p = c.spec[probe]
        if "httpGet" in p:
            g = p["httpGet"]
            if not up:
                url = f"{g.get('scheme', 'HTTP').lower()}://{self.pod_ip}:{g.get('port')}{g.get('path', '/')}"
                return f'Get "{url}": dial tcp {self.pod_ip}:{g.get("port")}: connect: connection refused'
            return "HTTP probe failed with statuscode: 503"
        if "tcpSocket" in p:
            if up:
                return None  # the port is open; a TCP probe cannot see the 503s
            return f"dial tcp {self.pod_ip}:{p['tcpSocket'].get('port')}: connect: connection refused"
        return "command terminated with exit code 1"

    def probe(self, c, run, probe):
        if self.deleting or c.run_id != run or "running" not in c.state:
            return
        spec = c.spec[probe]
        period = spec.get("periodSeconds", 10)
        failure = self.probe_failure(c, probe)
        label = {"readinessProbe": "Readiness", "livenessProbe": "Liveness", "startupProbe": "Startup"}[probe]
        if failure is None:
            c.probe_failures[probe] = 0
            if probe == "startupProbe":
                self.after_startup(c, run)
                return
            if probe == "readinessProbe" and not c.ready:
                c.ready = True
                self.not_ready()
        else:
            c.probe_failures[probe] += 1
            self.event("Unhealthy", f"{label} probe failed: {failure}", "Warning", container=c)
            if probe == "readinessProbe" and c.ready:
                c.ready = False
                self.not_ready()
            if probe in ("livenessProbe", "startupProbe") and \
                    c.probe_failures[probe] >= spec.get("failureThreshold", 3):
                self.event("Killing", f"Container {c.name} failed {label.lower()} probe, will be restarted",
                           container=c)
                self.container_exit(c, 137, "Error")
                return
        self.later(period, lambda: self.probe(c, run, probe))

    def container_exit(self, c: ContainerSim, code: int, reason: str):
        if "running" not in c.state:
            return
        finished = now_rfc3339()
        term = {"exitCode": code, "reason": reason, "startedAt": c.started_at, "finishedAt": finished,
                "containerID": c.container_id}
        c.state = {"terminated": term}
        c.ready = False
        c.started = False
        self.ctl.logs.end_instance(self.ns, self.name, c.name)
        self.not_ready()
        if self.deleting:
            return
        if self.restart_policy == "Never" or (self.restart_policy == "OnFailure" and code == 0):
            if all("terminated" in x.state for x in self.containers):
                failed = any(x.state["terminated"]["exitCode"] != 0 for x in self.containers)
                self.phase = "Failed" if failed else "Succeeded"
                for x in self.containers:
                    x.ready = False
                self.cond("Ready", "False", "PodCompleted")
                self.cond("ContainersReady", "False", "PodCompleted")
                self.cond("PodReadyToStartContainers", "False")
            return
        # restart with kubelet's back-off: immediately the first time, then 10s doubling to 5m
        delay = c.backoff
        c.backoff = min(300.0, (c.backoff * 2) or 10.0)
        if delay == 0:
            self.later(0.2, lambda: self.restart(c))
        else:
            self.later(0.2, lambda: self.crashloop(c, term, delay))

    def crashloop(self, c, term, delay):
        if self.deleting:
            return
        c.last_state = {"terminated": term}
        c.state = {"waiting": {"reason": "CrashLoopBackOff",
                               "message": f"back-off {int(delay)}s restarting failed container={c.name} "
                                          f"pod={self.name}_{self.ns}({self.uid})"}}
        self.event("BackOff", f"Back-off restarting failed container {c.name} in pod "
                              f"{self.name}_{self.ns}({self.uid})", "Warning", container=c)
        self.later(delay, lambda: self.restart(c))

    def restart(self, c):
        if self.deleting:
            return
        if "terminated" in c.state:
            c.last_state = {"terminated": c.state["terminated"]}
        c.restart_count += 1
        c.state = {"waiting": {"reason": "ContainerCreating"}}
        if c.spec.get("imagePullPolicy") == "Always":
            self.event("Pulling", f'Pulling image "{c.image}"', container=c)
            self.event("Pulled", f'Successfully pulled image "{c.image}" in 0.1s (0.1s including waiting)',
                       container=c)
        else:
            self.event("Pulled", f'Container image "{c.image}" already present on machine', container=c)
        self.start_container(c)

    def delete(self, grace: float):
        """Graceful deletion: stop the containers, then remove the pod."""
        if self.deleting:
            return
        self.deleting = True
        for c in self.containers:
            if "running" in c.state:
                self.event("Killing", f"Stopping container {c.name}", container=c)
        self.ctl.kill_process(self.ns, self.name)
        self.later(min(grace, 1.0), self.finish_delete)

    def finish_delete(self):
        for c in self.containers:
            if "running" in c.state:
                self.container_exit(c, 0 if self.restart_policy == "Always" else 143, "Completed")
        self.ctl.remove_pod(self)

    # -- rendering ---------------------------------------------------------------------
    def status(self) -> dict:
        order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
        st = {"phase": self.phase, "conditions": [self.conditions[t] for t in order if t in self.conditions],
              "qosClass": self.qos}
        if self.scheduled:
            st["hostIP"] = HOST_IP
            st["hostIPs"] = [{"ip": HOST_IP}]
            st["podIP"] = self.pod_ip
            st["podIPs"] = [{"ip": self.pod_ip}]
            st["startTime"] = self.start_time
            st["containerStatuses"] = [c.status() for c in self.containers]
        return st
