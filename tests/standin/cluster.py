"""``StandIn``: the stand-in Kubernetes cluster as tests see it.

Owns the PKI, the HTTPS server, the object store, the logs, the controller simulation and
the local "container" processes; seeds the Toolforge objects (Namespaces ``tool-mytool``,
``tool-othertool`` and ``tf-public``, the ``tf-public/image-config`` ConfigMap, a
ResourceQuota and a LimitRange named ``tool-<tool>`` per tool namespace); and gives tests
direct access to what reached the "cluster".

For tests (``standin`` fixture):

* what reached the cluster: ``requests`` (``RecordedRequest``: method, path, query dict,
  content_type, user, status, time, body, user_agent), ``requests_for(method, path)``,
  ``clear_requests()``;
* state: ``objects(kind, namespace=None)``, ``get(kind, ns, name)``, ``pods(ns=None,
  **labels)``, ``events(ns=None, reason=, name=)``, ``create(obj)`` (as cluster admin,
  validation and admission applied), ``http(method, path, body, ...)`` (one raw request);
* behaviour: ``scenario`` (default ``"healthy"``), ``image_scenarios`` (image or image
  substring -> scenario), ``time_scale`` (real s per simulated s, default 0.01; 0: as fast
  as possible), ``pause()``/``resume()``, ``quota``/``limits`` (assign to replace) and
  ``set_quota(hard)``/``set_limits(max=, min=, default=, defaultRequest=)``,
  ``field_validation`` (``"Strict"``), ``ingress_domains``, ``gateway`` (the Gateway
  controller writing HTTPRoute status: ``gateway.mode`` ``"accept"``/``"none"``/``"gate"``
  with ``gateway.release()``, ``gateway.gateways``, ``gateway.allowed_namespaces``; see
  ``gateway.py``), ``webhook`` (None, or a ``webhook.WebhookClient`` reviewing
  Ingress/HTTPRoute writes instead), ``bookmark_interval`` (1 s;
  watches with ``allowWatchBookmarks`` get a BOOKMARK that often and before a timeout), ``append_log(ns, pod, line,
  container=None)``, ``compact()`` (older resourceVersions give 410), ``add_fault(...)``
  (see ``server.Fault``), ``wait_for(predicate, timeout=10)``;
* today's Toolforge (each off by default; ``configure(preset="toolforge")`` turns them
  on together, see ``toolforge.py``): ``rbac`` (``rbac.py``), ``pod_policy`` and
  ``tool_uids`` (``kyverno.py``), ``ingress_controller`` (``ingress.py``),
  ``publish_job(...)``; the Gateway controller above;
* credentials: ``url``, ``ca_file``, ``client_cert(cn, foreign=False)``,
  ``kubeconfig(path, user=, namespace=, foreign=, with_cert=, relative_to_toolskube=)``.
"""

from __future__ import annotations

import copy
import os
import tempfile
import threading
import time

import yaml

from . import admission, kyverno, toolforge, validation
from .api import Api
from .certs import PKI
from .controller import Controller
from .gateway import GatewayController
from .errors import ApiError
from .logs import LogStore
from .pods import PodProcesses, pod_log, pod_stream
from .server import Fault, Server
from .store import BY_KIND, Store, now_rfc3339

REGISTRY = "docker-registry.tools.wmflabs.org"


def _type(image, wstype, state="stable", resources="default", aliases=()):
    return {"state": state, "aliases": list(aliases),
            "variants": {"webservice": {"image": f"{REGISTRY}/{image}-web",
                                        "extra": {"wstype": wstype, "resources": resources}},
                         "jobs-framework": {"image": f"{REGISTRY}/{image}-base"}}}


IMAGE_CONFIG = {
    "php8.2": _type("toolforge-php82-sssd", "lighttpd", aliases=["tf-php82"]),
    "php7.4": _type("toolforge-php74-sssd", "lighttpd", state="deprecated", aliases=["tf-php74"]),
    "python3.11": _type("toolforge-python311-sssd", "python", aliases=["tf-python311"]),
    "python3.9": _type("toolforge-python39-sssd", "python", state="deprecated", aliases=["tf-python39"]),
    "node18": _type("toolforge-node18-sssd", "js", aliases=["tf-node18"]),
    "node16": _type("toolforge-node16-sssd", "js", state="deprecated", aliases=["tf-node16"]),
    "jdk17": _type("toolforge-jdk17-sssd", "generic", resources="jdk", aliases=["tf-jdk17"]),
    "golang1.21": _type("toolforge-golang121-sssd", "generic", aliases=["tf-golang121"]),
    "ruby3.1": _type("toolforge-ruby31-sssd", "generic", aliases=["tf-ruby31"]),
    "perl5.36": _type("toolforge-perl536-sssd", "generic", aliases=["tf-perl536"]),
    "tcl8.6": _type("toolforge-tcl86-sssd", "lighttpd-plain", aliases=["tf-tcl86"]),
    "bookworm": {"state": "stable", "aliases": ["tf-bookworm"],
                 "variants": {"jobs-framework": {"image": f"{REGISTRY}/toolforge-bookworm-sssd"}}},
}

DEFAULT_QUOTA = {"requests.cpu": "2", "requests.memory": "6Gi", "limits.cpu": "2", "limits.memory": "8Gi",
                 "pods": "4", "services": "1"}
DEFAULT_LIMITS = {"max": {"cpu": "1", "memory": "4Gi"}, "min": {"cpu": "50m", "memory": "100Mi"},
                  "default": {"cpu": "500m", "memory": "512Mi"},
                  "defaultRequest": {"cpu": "150m", "memory": "256Mi"}}


class StandIn:
    """A stand-in Kubernetes API server with a simulated Toolforge cluster behind it."""

    def __init__(self, tool: str = "mytool", *, k8s_version: str = validation.DEFAULT_VERSION,
                 other_tools=("othertool",), directory: str | None = None):
        self.tool = tool
        self.namespace = f"tool-{tool}"
        self.tools = (tool,) + tuple(other_tools)
        self.k8s_version = k8s_version
        self.strict_schemas = validation.schemas_available()
        if self.strict_schemas:
            validation.schema_dir(k8s_version)  # fail early on an unshipped version
        self._own_dir = directory is None
        self.directory = directory or tempfile.mkdtemp(prefix="standin-")
        self.pki = PKI(os.path.join(self.directory, "pki"))
        self.store = Store()
        self.lock = self.store.cond  # one lock for the API, the controller and the logs
        self.logs = LogStore(self.store.cond)
        self.api = Api(self)
        self.controller = Controller(self)
        self.gateway = GatewayController(self)
        self.processes = PodProcesses(self)
        self.stop_event = threading.Event()
        self.requests: list = []
        self.faults: list[Fault] = []
        self.owners: dict = {}
        self.controller_errors: list[str] = []  # stand-in bugs: make the ``standin`` fixture fail
        self.handler_errors: list[str] = []  # connection-level oddities, for the curious
        self._defaults()
        self.server = None

    def _defaults(self):
        self.gateway.reset()
        self.scenario = "healthy"
        self.image_scenarios: dict[str, str] = {}
        self.time_scale = 0.01
        self.field_validation = "Strict"
        self.bookmark_interval = 1.0  # real seconds between BOOKMARKs to watches asking for them
        self.ingress_domains = ["toolforge.org"]
        self.webhook = None  # a webhook.WebhookClient: Ingress/HTTPRoute writes are reviewed by it
        # today's Toolforge, each off by default (see ``toolforge.py`` for the preset)
        self.rbac = None  # rbac.py: None, "tools-user", "tools-user-no-httproute"
        self.tool_uids = {t: 52500 + i for i, t in enumerate(self.tools)}  # uid = gid per tool (kyverno "strict")
        self.ingress_controller = None  # ingress.py: None, "nginx", "istio"
        self.quota = dict(DEFAULT_QUOTA)
        self.limits = copy.deepcopy(DEFAULT_LIMITS)
        self.image_config = copy.deepcopy(IMAGE_CONFIG)
        self.pod_policy = False  # True: Toolforge's Kyverno pod rule (tests/standin/kyverno.py)

    @property
    def quota(self) -> dict:
        """``spec.hard`` of every tool namespace's ResourceQuota; assigning replaces it at once."""
        return self._quota

    @quota.setter
    def quota(self, hard: dict):
        self._quota = dict(hard)
        with self.lock:
            for t in self.tools:
                q = self.store.get("ResourceQuota", f"tool-{t}", f"tool-{t}")
                if q is not None:
                    q["spec"]["hard"] = dict(hard)
                    self.store.update("ResourceQuota", q)

    @property
    def limits(self) -> dict:
        """The ``Container`` item (``max``/``min``/``default``/``defaultRequest``) of every tool
        namespace's LimitRange; assigning replaces it at once."""
        return self._limits

    @limits.setter
    def limits(self, item: dict):
        self._limits = copy.deepcopy(item)
        with self.lock:
            for t in self.tools:
                lr = self.store.get("LimitRange", f"tool-{t}", f"tool-{t}")
                if lr is not None:
                    lr["spec"]["limits"] = [{"type": "Container", **copy.deepcopy(item)}]
                    self.store.update("LimitRange", lr)

    def configure(self, preset: str | None = None, published_job=None, **settings) -> "StandIn":
        """Apply a preset (``"toolforge"``: today's Toolforge) and settings; see ``toolforge.py``."""
        return toolforge.configure(self, preset, published_job, **settings)

    def publish_job(self, name: str = "myjob", port: int = 8080, **kw) -> dict:
        """A continuous job published on the tool's host, as jobs-api makes it; see ``toolforge.py``."""
        return toolforge.publish_job(self, name, port, **kw)

    def pause(self):
        """Freeze the simulation (simulated time stops) until ``resume()``."""
        self.controller.paused = True

    def resume(self):
        self.controller.paused = False

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "StandIn":
        self.server = Server(self)
        self.server.start()
        self.seed()
        self.controller.start()
        return self

    def stop(self):
        self.stop_event.set()
        for fault in self.faults:
            fault.release()
        with self.store.cond:
            self.store.cond.notify_all()
        self.controller.stop()
        self.processes.kill_all()
        if self.server:
            self.server.shutdown()
            self.server.server_close()
        if self._own_dir:
            import shutil
            shutil.rmtree(self.directory, ignore_errors=True)

    def reset(self):
        """Back to a freshly seeded cluster: objects, events, logs, requests, settings, faults."""
        with self.store.cond:
            self.controller.paused = True
            self.processes.kill_all()
            self.store.clear()
            self.logs.clear()
            self.controller.reset()
            self.owners.clear()
            self.requests.clear()
            for fault in self.faults:
                fault.release()  # a request still held by a test that ended
            self.faults.clear()
            self.controller_errors.clear()
            self.handler_errors.clear()
            self._defaults()
            self.seed()
            self.controller.paused = False

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    @property
    def ca_file(self) -> str:
        return self.pki.ca_file

    def seed(self):
        for ns in [f"tool-{t}" for t in self.tools] + ["tf-public"]:
            self._seed_create("Namespace", {"metadata": {"name": ns}})
        self._seed_create("ConfigMap", {"metadata": {"name": "image-config", "namespace": "tf-public"},
                                        "data": {"images-v1.yaml": yaml.safe_dump(self.image_config)}})
        for t in self.tools:
            ns = f"tool-{t}"
            self._seed_create("ResourceQuota", {"metadata": {"name": ns, "namespace": ns},
                                                "spec": {"hard": dict(self._quota)}})
            self._seed_create("LimitRange", {"metadata": {"name": ns, "namespace": ns},
                                             "spec": {"limits": [{"type": "Container",
                                                                  **copy.deepcopy(self._limits)}]}})

    def _seed_create(self, kind, obj):
        from . import defaults
        res = BY_KIND[kind]
        obj = copy.deepcopy(obj)
        obj["apiVersion"], obj["kind"] = res.api_version, kind
        defaults.apply(kind, obj)
        return self.store.create(kind, obj)

    # -- helpers for the API and the controller --------------------------------------------
    def admit(self, res, ns, obj, display_name=None):
        tool = ns[len("tool-"):] if ns and ns.startswith("tool-") else None
        if res.kind == "Pod":
            def policy(pod):
                kyverno.check_pod(pod, ns or "", display_name or (pod.get("metadata") or {}).get("name") or "",
                                  self.pod_policy, self.tool_uids.get(tool))
            admission.admit_pod(obj, self.store.list("LimitRange", ns), self.store.list("ResourceQuota", ns),
                                self.store.list("Pod", ns), self.store.list("Service", ns), display_name,
                                policy=policy, deployments=self.store.list("Deployment", ns))
        elif res.kind == "Service":
            admission.admit_service(obj, self.store.list("ResourceQuota", ns), self.store.list("Pod", ns),
                                    self.store.list("Service", ns), self.store.list("Deployment", ns))
        elif res.kind == "Deployment":
            admission.admit_deployment(obj, self.store.list("ResourceQuota", ns), self.store.list("Pod", ns),
                                       self.store.list("Service", ns), self.store.list("Deployment", ns))
        elif res.kind in ("Ingress", "HTTPRoute"):
            self.admit_route(res, ns, obj, "CREATE")

    def admit_route(self, res, ns, obj, operation, old=None):
        if self.webhook is not None:
            self.webhook.review(res, ns, obj, operation, old)
        else:
            validation.ingress_admission(res, obj, ns, self.ingress_domains)

    def delete_object(self, res, obj, opts) -> dict | None:
        """Delete with the API's semantics; returns the object to answer with, if any."""
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        policy = opts.get("propagationPolicy") or "Background"
        with self.store.cond:
            cur = self.store.get(res.kind, ns, meta["name"])
            if cur is None:
                return None
            if res.kind == "Pod":
                grace = opts.get("gracePeriodSeconds")
                grace = int(grace) if grace not in (None, "") else cur["spec"].get("terminationGracePeriodSeconds", 30)
                phase = (cur.get("status") or {}).get("phase")
                if grace == 0 or not cur["spec"].get("nodeName") or phase in ("Succeeded", "Failed"):
                    self.processes.kill(ns, meta["name"])
                    self.logs.forget_pod(ns, meta["name"])
                    return self.store.delete("Pod", ns, meta["name"])
                if not cur["metadata"].get("deletionTimestamp"):
                    cur["metadata"]["deletionTimestamp"] = now_rfc3339()
                    cur["metadata"]["deletionGracePeriodSeconds"] = grace
                    cur = self.store.update("Pod", cur)
                return cur
            if policy == "Orphan":
                for kind in ("ReplicaSet", "Pod"):
                    for dep in self.store.list(kind, ns):
                        refs = dep["metadata"].get("ownerReferences") or []
                        if any(r.get("uid") == meta["uid"] for r in refs):
                            dep["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != meta["uid"]]
                            self.store.update(kind, dep)
            if policy == "Foreground":
                cur["metadata"]["deletionTimestamp"] = now_rfc3339()
                cur["metadata"]["deletionGracePeriodSeconds"] = 0
                fins = cur["metadata"].setdefault("finalizers", [])
                if "foregroundDeletion" not in fins:
                    fins.append("foregroundDeletion")
                return self.store.update(res.kind, cur)
            self.owners.pop((res.kind, ns, meta["name"]), None)
            self.store.delete(res.kind, ns, meta["name"])
            return None

    def pod_log(self, ns, name, q):
        return pod_log(self, ns, name, q)

    def pod_stream(self, req, ns, name, sub):
        return pod_stream(self, req, ns, name, sub)

    def kill_pod_process(self, ns, name):
        self.processes.kill(ns, name)

    # -- for tests ---------------------------------------------------------------------------
    def clear_requests(self):
        """Forget the requests recorded so far, after the stragglers of a client that has
        just exited have arrived (see ``Server.settle``)."""
        if self.server is not None:
            self.server.settle()
        with self.lock:
            self.requests.clear()

    def requests_for(self, method: str | None = None, path: str | None = None) -> list:
        with self.lock:
            return [r for r in self.requests if (method is None or r.method == method.upper())
                    and (path is None or path in r.path)]

    def objects(self, kind: str, namespace: str | None = None) -> list[dict]:
        return self.store.list(kind, namespace)

    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        return self.store.get(kind, namespace or "", name)

    def events(self, namespace: str | None = None, *, reason: str | None = None, name: str | None = None) -> list[dict]:
        ns = namespace or self.namespace
        evs = self.store.list("Event", ns)
        if reason:
            evs = [e for e in evs if e.get("reason") == reason]
        if name:
            evs = [e for e in evs if e["involvedObject"]["name"] == name]
        return evs

    def pods(self, namespace: str | None = None, **labels) -> list[dict]:
        pods = self.store.list("Pod", namespace or self.namespace)
        return [p for p in pods if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())]

    def append_log(self, namespace: str, pod: str, line: str, container: str | None = None):
        """Append a line to a pod container's current log (a following client sees it)."""
        if container is None:
            p = self.get("Pod", namespace, pod)
            if p is None:
                raise KeyError(f"no pod {namespace}/{pod}")
            container = p["spec"]["containers"][0]["name"]
        self.logs.append(namespace, pod, container, line)

    def create(self, obj: dict, namespace: str | None = None) -> dict:
        """Create an object as the cluster admin would (validation and admission apply)."""
        from .api import Request
        import json
        res = BY_KIND[obj["kind"]]
        ns = (obj.get("metadata") or {}).get("namespace") or namespace or (self.namespace if res.namespaced else None)
        path = "/api/v1" if not res.group else f"/apis/{res.group}/{res.version}"
        path += f"/namespaces/{ns}/{res.plural}" if res.namespaced else f"/{res.plural}"
        req = Request("POST", path, {}, {"content-type": "application/json", "user-agent": "standin-test"},
                      json.dumps(obj).encode(), "kubernetes-admin")
        resp = self.api.handle(req)
        data = json.loads(resp.body)
        if resp.code >= 400:
            raise ApiError(resp.code, data.get("reason", ""), data.get("message", ""), data.get("details"))
        return data

    def set_quota(self, hard: dict, namespace: str | None = None):
        """Change the tool namespace's ResourceQuota ``spec.hard`` (merged into the current one)."""
        ns = namespace or self.namespace
        with self.lock:
            q = self.store.get("ResourceQuota", ns, ns)
            q["spec"]["hard"].update(hard)
            self.store.update("ResourceQuota", q)

    def set_limits(self, namespace: str | None = None, **limits):
        """Change the LimitRange's container limits: ``max=``, ``min=``, ``default=``, ``defaultRequest=``."""
        ns = namespace or self.namespace
        with self.lock:
            lr = self.store.get("LimitRange", ns, ns)
            item = lr["spec"]["limits"][0]
            for k, v in limits.items():
                if v is None:
                    item.pop(k, None)
                else:
                    item[k] = v
            self.store.update("LimitRange", lr)

    def add_fault(self, **kw) -> Fault:
        """Register a fault (see ``server.Fault``), e.g. ``add_fault(status=503, method="GET",
        path="/deployments", nth=1, times=2)``."""
        f = Fault(**kw)
        with self.lock:
            self.faults.append(f)
        return f

    def compact(self):
        """Forget the change history: watches from older resourceVersions get 410 Expired."""
        self.store.compact()

    def wait_for(self, predicate, timeout: float = 10.0, interval: float = 0.01, message: str = ""):
        """Poll ``predicate()`` until it returns something truthy; return that, or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(message or f"condition not met within {timeout}s: {predicate}")
            time.sleep(interval)

    def http(self, method: str, path: str, body=None, *, content_type: str = "application/json",
             user: str | None = None, foreign: bool = False, with_cert: bool = True, headers: dict | None = None):
        """One raw HTTPS request as ``user`` (default: the tool); returns (status, headers, body).

        The body is parsed when the answer is one JSON document (bytes otherwise, e.g. a
        watch stream).  For tests of exact wire behaviour.
        """
        import http.client
        import json
        import ssl as _ssl
        ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.ca_file)
        if with_cert:
            ctx.load_cert_chain(*self.client_cert(user, foreign=foreign))
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.server_address[1], context=ctx, timeout=30)
        try:
            data = body
            if body is not None and not isinstance(body, (bytes, str)):
                data = json.dumps(body)
            hdrs = {"Content-Type": content_type, "Accept": "application/json", **(headers or {})}
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            out = raw
            if resp.getheader("Content-Type", "").startswith("application/json") and raw:
                try:
                    out = json.loads(raw)
                except ValueError:  # a watch stream: one JSON document per line
                    out = raw
            return resp.status, dict(resp.getheaders()), out
        finally:
            conn.close()

    # -- credentials -----------------------------------------------------------------------
    def client_cert(self, cn: str | None = None, *, foreign: bool = False, expired: bool = False) -> tuple[str, str]:
        """Paths of (certificate, key) for ``CN=cn`` (default: the tool); ``foreign``: from
        another CA; ``expired``: one that expired yesterday."""
        return self.pki.client_files(cn or self.tool, foreign=foreign, expired=expired)

    def kubeconfig(self, path: str, *, user: str | None = None, namespace: str | None = None,
                   foreign: bool = False, with_cert: bool = True, relative_to_toolskube: bool = False) -> str:
        """Write a kubeconfig for ``user`` (default: the tool) and return its path.

        ``relative_to_toolskube``: store the certificate and key in ``<dir>/../.toolskube/``
        and refer to them with relative paths, as Toolforge does for ``~/.kube/config``.
        """
        user = user or self.tool
        namespace = namespace or f"tool-{user}"
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        entry: dict = {}
        if with_cert:
            cert_pem, key_pem = self.pki.client_pem(user, foreign=foreign)
            if relative_to_toolskube:
                d = os.path.join(os.path.dirname(os.path.abspath(path)), "..", ".toolskube")
                os.makedirs(d, exist_ok=True)
                for name, data in (("client.crt", cert_pem), ("client.key", key_pem)):
                    with open(os.path.join(d, name), "wb") as f:
                        f.write(data)
                    os.chmod(os.path.join(d, name), 0o600)
                entry = {"client-certificate": "../.toolskube/client.crt", "client-key": "../.toolskube/client.key"}
            else:
                cert, key = self.pki.client_files(user, foreign=foreign)
                entry = {"client-certificate": cert, "client-key": key}
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "toolforge", "cluster": {"server": self.url,
                                                           "certificate-authority": self.ca_file}}],
            "users": [{"name": f"tf-{user}", "user": entry}],
            "contexts": [{"name": "toolforge", "context": {"cluster": "toolforge", "user": f"tf-{user}",
                                                           "namespace": namespace}}],
            "current-context": "toolforge",
        }
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        return path
