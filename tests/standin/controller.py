"""Controller simulation: Deployment -> ReplicaSet -> Pods, garbage collection, quota
status, HTTPRoute status (``gateway.GatewayController``), and the simulated kubelet
(``kubelet.PodSim``), on a simulated clock.

Runs in a background thread.  ``time_scale`` is real seconds per simulated second (0.01:
a simulated minute takes 0.6 s); 0 means "as fast as possible": every tick jumps the
clock to the next scheduled action.  Timestamps written into objects are wall-clock
times, so that a client comparing them with its own clock sees nothing in the future.

Deployment rollouts follow the RollingUpdate rules (maxSurge rounded up, maxUnavailable
rounded down, 25% each by default): the new ReplicaSet scales up first and old pods go
only as new ones become available, so a broken new template leaves the old pods serving.
ReplicaSets create pods through the same LimitRange/ResourceQuota admission as the API;
a refusal becomes a ``FailedCreate`` Warning Event on the ReplicaSet (``Error creating:
pods "<rs>-" is forbidden: ...``), a ``ReplicaFailure`` condition on the ReplicaSet and
the Deployment, and a retry with back-off.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import itertools
import json
import math
import threading
import time

from . import events, scenarios
from .errors import ApiError
from .kubelet import PodSim
from .store import BY_KIND, now_rfc3339

ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:10])


def _int_or_percent(value, total, round_up):
    if isinstance(value, str) and value.endswith("%"):
        x = int(value[:-1]) * total / 100
        return math.ceil(x) if round_up else math.floor(x)
    return int(value or 0)


def _owned_by(obj, owner) -> bool:
    return any(r.get("uid") == owner["metadata"]["uid"] for r in obj["metadata"].get("ownerReferences") or [])


def _owner_ref(owner) -> dict:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _pod_ready(pod) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or [])


class Controller:
    def __init__(self, standin):
        self.s = standin
        self.store = standin.store
        self.logs = standin.logs
        self.sim_now = 0.0
        self._last_real = time.monotonic()
        self._heap: list = []
        self._seq = itertools.count()
        self.pods: dict[str, PodSim] = {}
        self._rs_retry: dict[str, tuple[float, float]] = {}  # rs uid -> (next try, back-off)
        self._dep_progress: dict[str, float] = {}  # deployment uid -> sim time of last progress
        self._thread = None
        self._stop = threading.Event()
        self.paused = False

    # -- thread ------------------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._run, name="standin-controller", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def reset(self):
        with self.store.cond:
            self._heap.clear()
            self.pods.clear()
            self._rs_retry.clear()
            self._dep_progress.clear()
            self.sim_now = 0.0

    def _run(self):
        while not self._stop.is_set():
            scale = self.s.time_scale
            self._stop.wait(0.002 if scale == 0 else 0.01)
            if self.paused:
                self._last_real = time.monotonic()
                continue
            try:
                with self.store.cond:
                    self.step()
            except Exception as e:  # keep the simulation alive; tests see the error
                self.s.controller_errors.append(repr(e))
                import traceback
                traceback.print_exc()

    def schedule(self, delay: float, fn):
        heapq.heappush(self._heap, (self.sim_now + max(delay, 0.0), next(self._seq), fn))

    def advance(self):
        now = time.monotonic()
        real_dt, self._last_real = now - self._last_real, now
        scale = self.s.time_scale
        if scale and scale > 0:
            self.sim_now += real_dt / scale
        elif self._heap and self._heap[0][0] > self.sim_now:
            self.sim_now = self._heap[0][0]

    def step(self):
        self.advance()
        self.reconcile_deployments()
        self.reconcile_replicasets()
        self.sync_pods()
        for _ in range(1000):
            if not self._heap or self._heap[0][0] > self.sim_now:
                break
            _, _, fn = heapq.heappop(self._heap)
            fn()
        self.render_pods()
        self.garbage_collect()
        self.quota_status()
        self.s.gateway.reconcile()  # HTTPRoute status.parents (tests/standin/gateway.py)

    # -- pods ----------------------------------------------------------------------------
    def sync_pods(self):
        live = set()
        for pod in self.store.list("Pod"):
            uid = pod["metadata"]["uid"]
            live.add(uid)
            sim = self.pods.get(uid)
            if sim is None:
                image = ((pod["spec"].get("containers") or [{}])[0]).get("image", "")
                sim = self.pods[uid] = PodSim(self, pod, scenarios.pick(image, self.s.scenario,
                                                                        self.s.image_scenarios))
                if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    sim.phase = pod["status"]["phase"]
                else:
                    sim.begin()
            if pod["metadata"].get("deletionTimestamp") and not sim.deleting:
                grace = pod["metadata"].get("deletionGracePeriodSeconds", 30)
                sim.delete(float(grace))
        for uid in [u for u in self.pods if u not in live]:
            self.pods.pop(uid).gone = True

    def render_pods(self):
        for sim in list(self.pods.values()):
            pod = sim.pod()
            if pod is None or sim.gone:
                continue
            status = sim.status()
            if pod.get("status") != status:
                pod["status"] = status
                self.store.update("Pod", pod)

    def remove_pod(self, sim: PodSim):
        pod = sim.pod()
        sim.gone = True
        self.pods.pop(sim.uid, None)
        if pod is not None:
            pod["status"] = sim.status()
            self.store.update("Pod", pod)
            self.store.delete("Pod", sim.ns, sim.name)
        self.logs.forget_pod(sim.ns, sim.name)

    def kill_process(self, ns, name):
        self.s.kill_pod_process(ns, name)

    def process_exited(self, ns, name, container, code):
        with self.store.cond:
            for sim in self.pods.values():
                if sim.ns == ns and sim.name == name:
                    for c in sim.containers:
                        if c.name == container:
                            sim.container_exit(c, code, "Completed" if code == 0 else "Error")
                    self.render_pods()

    def sim_for(self, ns, name) -> PodSim | None:
        for sim in self.pods.values():
            if sim.ns == ns and sim.name == name:
                return sim
        return None

    # -- deployments -----------------------------------------------------------------------
    def reconcile_deployments(self):
        for dep in self.store.list("Deployment"):
            if dep["metadata"].get("deletionTimestamp"):
                continue
            self.reconcile_deployment(dep)

    def reconcile_deployment(self, dep):
        ns = dep["metadata"]["namespace"]
        spec = dep["spec"]
        desired = spec.get("replicas", 1)
        tmpl = spec.get("template") or {}
        h = template_hash(tmpl)
        owned = [rs for rs in self.store.list("ReplicaSet", ns) if _owned_by(rs, dep)]
        new = next((rs for rs in owned if rs["metadata"].get("labels", {}).get("pod-template-hash") == h), None)
        olds = [rs for rs in owned if rs is not new]
        revision = max([int(rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", 0))
                        for rs in owned] + [0])
        if new is None:
            rs_tmpl = copy.deepcopy(tmpl)
            rs_tmpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
            sel = copy.deepcopy(spec.get("selector") or {})
            sel.setdefault("matchLabels", {})["pod-template-hash"] = h
            rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                  "metadata": {"name": f"{dep['metadata']['name']}-{h}", "namespace": ns,
                               "labels": dict(rs_tmpl["metadata"]["labels"]),
                               "annotations": {"deployment.kubernetes.io/desired-replicas": str(desired),
                                               "deployment.kubernetes.io/max-replicas": str(desired + 1),
                                               "deployment.kubernetes.io/revision": str(revision + 1)},
                               "ownerReferences": [_owner_ref(dep)]},
                  "spec": {"replicas": 0, "minReadySeconds": spec.get("minReadySeconds", 0),
                           "selector": sel, "template": rs_tmpl},
                  "status": {"replicas": 0}}
            new = self.store.create("ReplicaSet", rs)
            self._dep_progress[dep["metadata"]["uid"]] = self.sim_now
            self._set_dep_condition(dep, "Progressing", "True", "NewReplicaSetCreated",
                                    f'Created new replica set "{new["metadata"]["name"]}"')
        strategy = (spec.get("strategy") or {})
        if strategy.get("type") == "Recreate":
            for rs in olds:
                self._scale_rs(dep, rs, 0)
            old_pods = [p for p in self.store.list("Pod", ns) if any(_owned_by(p, rs) for rs in olds)]
            if not old_pods:
                self._scale_rs(dep, new, desired)
        else:
            ru = strategy.get("rollingUpdate") or {}
            surge = _int_or_percent(ru.get("maxSurge", "25%"), desired, True)
            unavail = _int_or_percent(ru.get("maxUnavailable", "25%"), desired, False)
            if surge == 0 and unavail == 0:
                unavail = 1
            total = sum(rs["spec"].get("replicas", 0) for rs in owned)
            new_n = new["spec"].get("replicas", 0)
            if new_n < desired:
                allowed = desired + surge - total
                if allowed > 0:
                    self._scale_rs(dep, new, min(desired, new_n + allowed))
            elif new_n > desired:
                self._scale_rs(dep, new, desired)
            new = self.store.get("ReplicaSet", ns, new["metadata"]["name"]) or new
            new_ready = (new.get("status") or {}).get("availableReplicas", 0)
            # old pods that are not ready can go at once; ready ones as the new ones become available
            min_available = desired - unavail
            all_available = sum((rs.get("status") or {}).get("availableReplicas", 0) for rs in owned if rs is not new) \
                + new_ready
            new_unavailable = new["spec"].get("replicas", 0) - new_ready
            can_remove = all_available - min_available - new_unavailable
            for rs in sorted(olds, key=lambda r: r["metadata"]["creationTimestamp"]):
                n = rs["spec"].get("replicas", 0)
                if n == 0:
                    continue
                unhealthy = n - (rs.get("status") or {}).get("availableReplicas", 0)
                drop = min(n, max(0, unhealthy) + max(0, can_remove))
                if drop > 0:
                    can_remove -= max(0, drop - max(0, unhealthy))
                    self._scale_rs(dep, rs, n - drop)
        self._deployment_status(dep, h)

    def _scale_rs(self, dep, rs, n):
        old_n = rs["spec"].get("replicas", 0)
        if old_n == n:
            return
        rs = self.store.get("ReplicaSet", rs["metadata"]["namespace"], rs["metadata"]["name"])
        if rs is None:
            return
        rs["spec"]["replicas"] = n
        rs["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/desired-replicas"] = \
            str(dep["spec"].get("replicas", 1))
        self.store.update("ReplicaSet", rs)
        direction = "up" if n > old_n else "down"
        events.record(self.store, dep, "ScalingReplicaSet",
                      f"Scaled {direction} replica set {rs['metadata']['name']} from {old_n} to {n}",
                      component="deployment-controller")
        self._dep_progress[dep["metadata"]["uid"]] = self.sim_now

    def _set_dep_condition(self, dep, type_, status, reason, message, store=True):
        dep = self.store.get("Deployment", dep["metadata"]["namespace"], dep["metadata"]["name"])
        if dep is None:
            return
        conds = dep.setdefault("status", {}).setdefault("conditions", [])
        now = now_rfc3339()
        cur = next((c for c in conds if c["type"] == type_), None)
        if cur and (cur["status"], cur.get("reason"), cur.get("message")) == (status, reason, message):
            return
        new = {"type": type_, "status": status, "lastUpdateTime": now,
               "lastTransitionTime": cur["lastTransitionTime"] if cur and cur["status"] == status else now,
               "reason": reason, "message": message}
        if cur:
            conds[conds.index(cur)] = new
        else:
            conds.append(new)
        self.store.update("Deployment", dep)

    def _deployment_status(self, dep, h):
        ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        dep = self.store.get("Deployment", ns, name)
        if dep is None:
            return
        owned = [rs for rs in self.store.list("ReplicaSet", ns) if _owned_by(rs, dep)]
        new = next((rs for rs in owned if rs["metadata"].get("labels", {}).get("pod-template-hash") == h), None)
        desired = dep["spec"].get("replicas", 1)
        st = lambda rs, k: (rs.get("status") or {}).get(k, 0)  # noqa: E731
        replicas = sum(st(rs, "replicas") for rs in owned)
        ready = sum(st(rs, "readyReplicas") for rs in owned)
        available = sum(st(rs, "availableReplicas") for rs in owned)
        updated = st(new, "replicas") if new else 0
        status = dict(dep.get("status") or {})
        status.update({"observedGeneration": dep["metadata"].get("generation", 1), "replicas": replicas,
                       "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": available})
        unavailable = max(0, replicas - available) if replicas >= desired else max(0, desired - available)
        status["unavailableReplicas"] = unavailable
        for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
            if status[k] == 0:
                status.pop(k)
        ru = (dep["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        max_unavail = _int_or_percent(ru.get("maxUnavailable", "25%"), desired, False)
        conds = {c["type"]: c for c in status.get("conditions") or []}
        now = now_rfc3339()

        def setc(type_, s, reason, message):
            cur = conds.get(type_)
            if cur and (cur["status"], cur.get("reason"), cur.get("message")) == (s, reason, message):
                return
            conds[type_] = {"type": type_, "status": s, "lastUpdateTime": now,
                            "lastTransitionTime": cur["lastTransitionTime"] if cur and cur["status"] == s else now,
                            "reason": reason, "message": message}
        if available >= desired - max_unavail:
            setc("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            setc("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        if new is not None:
            rs_name = new["metadata"]["name"]
            complete = updated == desired and st(new, "availableReplicas") >= desired and replicas == desired
            uid = dep["metadata"]["uid"]
            if complete:
                setc("Progressing", "True", "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.')
            elif self.sim_now - self._dep_progress.get(uid, self.sim_now) > dep["spec"].get("progressDeadlineSeconds", 600):
                setc("Progressing", "False", "ProgressDeadlineExceeded", f'ReplicaSet "{rs_name}" has timed out progressing.')
            elif conds.get("Progressing", {}).get("reason") != "NewReplicaSetCreated" or \
                    conds["Progressing"].get("message") != f'Created new replica set "{rs_name}"':
                setc("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
            failure = next((c for c in (new.get("status") or {}).get("conditions") or []
                            if c["type"] == "ReplicaFailure"), None)
            if failure:
                setc("ReplicaFailure", "True", failure["reason"], failure["message"])
            else:
                conds.pop("ReplicaFailure", None)
        order = ["Available", "Progressing", "ReplicaFailure"]
        status["conditions"] = [conds[t] for t in order if t in conds]
        if dep.get("status") != status:
            if status.get("readyReplicas", 0) > (dep.get("status") or {}).get("readyReplicas", 0):
                self._dep_progress[dep["metadata"]["uid"]] = self.sim_now
            dep["status"] = status
            self.store.update("Deployment", dep)

    # -- replicasets ---------------------------------------------------------------------
    def reconcile_replicasets(self):
        for rs in self.store.list("ReplicaSet"):
            if rs["metadata"].get("deletionTimestamp"):
                continue
            self.reconcile_replicaset(rs)

    def reconcile_replicaset(self, rs):
        ns = rs["metadata"]["namespace"]
        uid = rs["metadata"]["uid"]
        pods = [p for p in self.store.list("Pod", ns) if _owned_by(p, rs)]
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")
                  and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        want = rs["spec"].get("replicas", 1)
        failure = None
        if len(active) < want:
            next_try, backoff = self._rs_retry.get(uid, (0.0, 0.0))
            if self.sim_now >= next_try:
                for _ in range(want - len(active)):
                    try:
                        pod = self._create_pod(rs)
                    except ApiError as e:
                        failure = e.message  # the condition has the bare error, the Event a prefix
                        events.record(self.store, rs, "FailedCreate", f"Error creating: {failure}", "Warning",
                                      component="replicaset-controller")
                        # the workqueue rate limiter: quick retries at first, then exponential back-off
                        backoff = min(60.0, (backoff * 2) or 0.05)
                        self._rs_retry[uid] = (self.sim_now + backoff, backoff)
                        self.schedule(backoff, lambda: None)
                        break
                    active.append(pod)
                    events.record(self.store, rs, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                                  component="replicaset-controller")
                else:
                    self._rs_retry.pop(uid, None)
            else:
                failure = next((c["message"] for c in (rs.get("status") or {}).get("conditions") or []
                                if c["type"] == "ReplicaFailure"), None)
        elif len(active) > want:
            def rank(p):
                return (_pod_ready(p), p["metadata"]["creationTimestamp"])
            for p in sorted(active, key=rank)[: len(active) - want]:
                self.s.delete_object(BY_KIND["Pod"], p, {})
                events.record(self.store, rs, "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}",
                              component="replicaset-controller")
                active.remove(p)
        rs = self.store.get("ReplicaSet", ns, rs["metadata"]["name"])
        if rs is None:
            return
        ready = sum(1 for p in active if _pod_ready(p))
        status = {"replicas": len(active), "fullyLabeledReplicas": len(active), "readyReplicas": ready,
                  "availableReplicas": ready, "observedGeneration": rs["metadata"].get("generation", 1)}
        for k in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
            if status[k] == 0:
                status.pop(k)
        old_conds = (rs.get("status") or {}).get("conditions") or []
        if failure:
            cur = next((c for c in old_conds if c["type"] == "ReplicaFailure"), None)
            if cur and cur.get("message") == failure:
                status["conditions"] = [cur]
            else:
                status["conditions"] = [{"type": "ReplicaFailure", "status": "True", "lastTransitionTime": now_rfc3339(),
                                         "reason": "FailedCreate", "message": failure}]
        if rs.get("status") != status:
            rs["status"] = status
            self.store.update("ReplicaSet", rs)

    def _create_pod(self, rs) -> dict:
        tmpl = copy.deepcopy(rs["spec"]["template"])
        ns = rs["metadata"]["namespace"]
        prefix = rs["metadata"]["name"] + "-"
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {**(tmpl.get("metadata") or {}), "generateName": prefix, "namespace": ns,
                            "ownerReferences": [_owner_ref(rs)]},
               "spec": tmpl.get("spec") or {}}
        from . import defaults
        from .store import random_suffix
        defaults.apply("Pod", pod)
        self.s.admit(BY_KIND["Pod"], ns, pod, display_name=prefix)
        pod["metadata"]["name"] = prefix + random_suffix()
        return self.store.create("Pod", pod)

    # -- garbage collection and quota ------------------------------------------------------
    def garbage_collect(self):
        uids = {}
        for kind in ("Deployment", "ReplicaSet", "Pod", "Service", "ConfigMap", "Ingress", "HTTPRoute"):
            for o in self.store.list(kind):
                uids[o["metadata"]["uid"]] = (kind, o)
        foreground = {uid for uid, (_, o) in uids.items() if o["metadata"].get("deletionTimestamp")
                      and "foregroundDeletion" in (o["metadata"].get("finalizers") or [])}
        for uid, (kind, obj) in uids.items():
            refs = obj["metadata"].get("ownerReferences") or []
            if refs and any(r.get("uid") in foreground for r in refs) and not obj["metadata"].get("deletionTimestamp"):
                self.s.delete_object(BY_KIND[kind], obj, {"propagationPolicy": "Foreground"})
                continue
            if refs and not any(r.get("uid") in uids for r in refs):
                if kind == "Pod" and obj["metadata"].get("deletionTimestamp"):
                    continue
                self.s.delete_object(BY_KIND[kind], obj, {"propagationPolicy": "Background"})
            meta = obj["metadata"]
            if meta.get("deletionTimestamp") and "foregroundDeletion" in (meta.get("finalizers") or []):
                if not any(_owned_by(o, obj) for _, o in uids.values()):
                    meta["finalizers"] = [f for f in meta["finalizers"] if f != "foregroundDeletion"]
                    if not meta["finalizers"]:
                        self.store.delete(kind, meta.get("namespace", ""), meta["name"])
                    else:
                        self.store.update(kind, obj)

    def quota_status(self):
        from .admission import quota_status
        for q in self.store.list("ResourceQuota"):
            ns = q["metadata"]["namespace"]
            st = quota_status(q, self.store.list("Pod", ns), self.store.list("Service", ns))
            if q.get("status") != st:
                q["status"] = st
                self.store.update("ResourceQuota", q)
