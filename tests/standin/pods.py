"""Pod subresources: ``log`` (with the real server's error messages) and ``attach``/
``exec`` over WebSocket (see ``websocket.py``)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading

from . import errors, websocket
from .api import Response
from .errors import ApiError
from .store import BY_KIND

POD = BY_KIND["Pod"]


def _pod(s, ns, name):
    pod = s.store.get("Pod", ns, name)
    if pod is None:
        raise errors.not_found(POD, name)
    return pod


def _container(pod, container):
    names = [c["name"] for c in pod["spec"].get("containers") or []]
    name = pod["metadata"]["name"]
    if not container:
        if len(names) != 1:
            raise errors.bad_request(f"a container name must be specified for pod {name}, choose one of: "
                                     f"[{' '.join(names)}]")
        return names[0]
    if container not in names + [c["name"] for c in pod["spec"].get("initContainers") or []]:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    return container


def _log_container_id(status: dict, container: str, pod: str, previous: bool) -> str:
    """Which container instance's log to serve: the kubelet's ``validateContainerLogStatus``."""
    state, last = status.get("state") or {}, (status.get("lastState") or {}).get("terminated")
    if previous:
        if not last or not last.get("containerID"):
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{pod}" not found')
        return last["containerID"]
    if "running" in state:
        return status.get("containerID", "")
    if "terminated" in state:
        cid = state["terminated"].get("containerID") or (last or {}).get("containerID")
        if not cid:
            raise errors.bad_request(f'container "{container}" in pod "{pod}" is terminated')
        return cid
    if last and last.get("containerID"):
        return last["containerID"]
    reason = (state.get("waiting") or {}).get("reason", "ContainerCreating")
    reason = {"ErrImagePull": "image can't be pulled",
              "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
    raise errors.bad_request(f'container "{container}" in pod "{pod}" is waiting to start: {reason}')


def pod_log(s, ns, name, q) -> Response:
    pod = _pod(s, ns, name)
    container = _container(pod, q.get("container"))
    previous = q.get("previous") in ("true", "1", "True")
    if not pod["spec"].get("nodeName"):
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    status = next((c for c in (pod.get("status") or {}).get("containerStatuses") or []
                   if c["name"] == container), None) or {}
    inst = s.logs.by_id(ns, name, container, _log_container_id(status, container, name, previous))
    if inst is None:
        raise errors.bad_request(f'container "{container}" in pod "{name}" is terminated')
    if q.get("follow") in ("true", "1", "True"):
        uid = pod["metadata"]["uid"]

        def alive():
            p = s.store.get("Pod", ns, name)
            return p is not None and p["metadata"]["uid"] == uid
        return Response(200, stream=s.logs.follow(inst, q, alive, s.stop_event), content_type="text/plain")
    with s.store.cond:
        lines = list(inst.lines)
    return Response(200, s.logs.render(lines, q), content_type="text/plain")


class PodProcesses:
    """The local processes standing in for containers, and their temporary homes."""

    def __init__(self, standin):
        self.s = standin
        self.lock = threading.Lock()
        self.procs: dict[tuple[str, str], list] = {}
        self.dirs: dict[tuple[str, str], str] = {}
        self.attached: dict[tuple[str, str, str], websocket.Process] = {}

    def workdir(self, ns, name) -> str:
        with self.lock:
            if (ns, name) not in self.dirs:
                self.dirs[(ns, name)] = tempfile.mkdtemp(prefix=f"standin-{name}-")
            return self.dirs[(ns, name)]

    def spawn(self, ns, name, container_spec, argv, tty) -> websocket.Process:
        home = self.workdir(ns, name)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "HOSTNAME": name,
               "LANG": "C.UTF-8"}
        if tty:
            env["TERM"] = "xterm"
        for e in container_spec.get("env") or []:
            if "value" in e:
                env[e["name"]] = str(e["value"])
        proc = websocket.Process(argv, env, home, tty)
        with self.lock:
            self.procs.setdefault((ns, name), []).append(proc)
        return proc

    def kill(self, ns, name):
        with self.lock:
            procs = self.procs.pop((ns, name), [])
            d = self.dirs.pop((ns, name), None)
        for p in procs:
            p.kill()
        if d:
            shutil.rmtree(d, ignore_errors=True)

    def kill_all(self):
        for key in list(self.procs):
            self.kill(*key)
        for key in list(self.dirs):
            shutil.rmtree(self.dirs.pop(key), ignore_errors=True)


def pod_stream(s, req, ns, name, sub) -> Response:
    """attach/exec: validate, then hand the connection to the WebSocket pump."""
    pod = _pod(s, ns, name)
    q = req.query
    container = _container(pod, q.get("container"))
    truthy = lambda k: q.get(k) in ("true", "1", "True")  # noqa: E731
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise errors.bad_request(f"cannot {sub} a container in a completed pod; current phase is {phase}")
    cstatus = next((c for c in (pod.get("status") or {}).get("containerStatuses") or []
                    if c["name"] == container), None)
    if not cstatus or "running" not in (cstatus.get("state") or {}):
        raise errors.bad_request(f"container {container} is not running" if sub == "exec" else
                                 f"pod {name} does not have a host assigned" if not pod["spec"].get("nodeName")
                                 else f'container "{container}" in pod "{name}" is waiting to start: '
                                      f"ContainerCreating")
    if req.headers.get("upgrade", "").lower() != "websocket":
        raise ApiError(400, "BadRequest", "Upgrade request required")
    protocol = websocket.choose_protocol(req.headers.get("sec-websocket-protocol", ""))
    if protocol is None:
        raise errors.bad_request("unable to upgrade connection: no supported subprotocol offered "
                                 f"(supported: {', '.join(websocket.PROTOCOLS)})")
    cspec = next(c for c in pod["spec"]["containers"] if c["name"] == container)
    tty = truthy("tty")
    if sub == "exec":
        argv = req.query_all.get("command") or []
        if not argv:
            raise errors.bad_request("you must specify at least 1 command")
    else:
        argv = (cspec.get("command") or []) + (cspec.get("args") or [])
        if not argv:
            argv = ["/bin/sh"]
        tty = bool(cspec.get("tty")) and tty

    def run(sock):
        key = (ns, name, container)
        if sub == "attach":
            with s.processes.lock:
                proc = s.processes.attached.get(key)
            if proc is None or proc.proc.poll() is not None:
                proc = s.processes.spawn(ns, name, cspec, argv, tty)
                with s.processes.lock:
                    s.processes.attached[key] = proc
            on_output = (lambda data: s.logs.append(ns, name, container,
                                                    data.decode(errors="replace").rstrip("\n")))
            code = websocket.serve(sock, proc, protocol, stdin=truthy("stdin"),
                                   stdin_once=bool(cspec.get("stdinOnce")), report_status=False,
                                   on_output=on_output, stop=s.stop_event)
            with s.processes.lock:
                s.processes.attached.pop(key, None)
            s.controller.process_exited(ns, name, container, code)
        else:
            proc = s.processes.spawn(ns, name, cspec, argv, tty)
            websocket.serve(sock, proc, protocol, stdin=truthy("stdin"), stdin_once=True, report_status=True,
                            stop=s.stop_event)

    headers = {"Upgrade": "websocket", "Connection": "Upgrade",
               "Sec-WebSocket-Accept": websocket.accept_key(req.headers.get("sec-websocket-key", "")),
               "Sec-WebSocket-Protocol": protocol}
    return Response(101, headers=headers, upgrade=run)
