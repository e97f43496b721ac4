"""The stand-in's object store: API resource table, objects, resource versions, history.

Every write gets a new cluster-wide ``resourceVersion`` (a decimal string, increasing) and
is appended to a bounded history that watches replay from.  A watch asking for a
resourceVersion older than the history answers ``410 Gone`` / ``Expired`` like etcd
compaction does on a real cluster (``Store.compact()`` forces that for a test).

Objects are stored as plain dicts; everything handed out is a deep copy.
"""

from __future__ import annotations

import collections
import copy
import datetime
import secrets
import threading
import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resource:
    kind: str
    plural: str
    group: str
    version: str
    namespaced: bool = True
    short_names: tuple = ()
    subresources: tuple = ()
    verbs: tuple = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_kind(self) -> str:
        """``Deployment.apps`` style, as used in error messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = [
    Resource("Namespace", "namespaces", "", "v1", namespaced=False, short_names=("ns",),
             subresources=("status",)),
    Resource("Pod", "pods", "", "v1", short_names=("po",),
             subresources=("log", "attach", "exec", "status", "portforward")),
    Resource("Service", "services", "", "v1", short_names=("svc",), subresources=("status",)),
    Resource("ConfigMap", "configmaps", "", "v1", short_names=("cm",)),
    Resource("Event", "events", "", "v1", short_names=("ev",)),
    Resource("ResourceQuota", "resourcequotas", "", "v1", short_names=("quota",),
             subresources=("status",)),
    Resource("LimitRange", "limitranges", "", "v1", short_names=("limits",)),
    Resource("Deployment", "deployments", "apps", "v1", short_names=("deploy",),
             subresources=("status", "scale")),
    Resource("ReplicaSet", "replicasets", "apps", "v1", short_names=("rs",),
             subresources=("status", "scale")),
    Resource("Ingress", "ingresses", "networking.k8s.io", "v1", short_names=("ing",),
             subresources=("status",)),
    Resource("HTTPRoute", "httproutes", "gateway.networking.k8s.io", "v1",
             subresources=("status",)),
    # served too (Gateway API CRDs serve both); objects are stored as v1, answered as asked
    Resource("HTTPRoute", "httproutes", "gateway.networking.k8s.io", "v1beta1",
             subresources=("status",)),
]
BY_KIND: dict = {}
for _r in RESOURCES:
    BY_KIND.setdefault(_r.kind, _r)  # the first version listed is the storage version
# (group, version, plural) -> Resource
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
GROUPS: dict[str, list[str]] = {}
for _r in RESOURCES:
    if _r.group:
        GROUPS.setdefault(_r.group, [])
        if _r.version not in GROUPS[_r.group]:
            GROUPS[_r.group].append(_r.version)


GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def random_suffix(n: int = 5) -> str:
    """The random part of a ``generateName`` name, from the API server's alphabet."""
    return "".join(secrets.choice(GENERATE_ALPHABET) for _ in range(n))


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Expired(Exception):
    """A resourceVersion older than the kept history."""

    def __init__(self, requested: int, oldest: int):
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass
class Change:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    kind: str
    obj: dict
    old: dict | None = field(default=None)


class Store:
    """Thread-safe object store with resource versions and a change history."""

    def __init__(self, history: int = 5000):
        self.cond = threading.Condition(threading.RLock())
        self.rv = 0
        self.compacted = 0  # changes with rv <= compacted are no longer replayable
        self._objects: dict[str, dict[tuple[str, str], dict]] = collections.defaultdict(dict)
        self.history: collections.deque[Change] = collections.deque()
        self._maxlen = history
        self.on_change: list = []  # callables(change), called with the lock held

    # -- writes -------------------------------------------------------------------
    def _record(self, change: Change):
        self.history.append(change)
        while len(self.history) > self._maxlen:
            self.compacted = self.history.popleft().rv
        for cb in list(self.on_change):
            cb(change)
        self.cond.notify_all()

    def _bump(self, obj: dict) -> int:
        self.rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        return self.rv

    def create(self, kind: str, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        res = BY_KIND[kind]
        meta = obj.setdefault("metadata", {})
        obj["apiVersion"] = res.api_version
        obj["kind"] = kind
        with self.cond:
            key = (meta.get("namespace", "") if res.namespaced else "", meta["name"])
            if key in self._objects[kind]:
                raise KeyError(key)
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_rfc3339())
            if kind not in ("Pod", "Event", "ConfigMap", "Namespace", "Service"):
                meta["generation"] = 1
            self._bump(obj)
            self._objects[kind][key] = obj
            self._record(Change(self.rv, "ADDED", kind, copy.deepcopy(obj)))
            return copy.deepcopy(obj)

    def update(self, kind: str, obj: dict, *, bump_generation: bool | None = None) -> dict:
        """Replace a stored object; the caller has checked it exists."""
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        res = BY_KIND[kind]
        with self.cond:
            key = (meta.get("namespace", "") if res.namespaced else "", meta["name"])
            old = self._objects[kind].get(key)
            if old is None:
                raise KeyError(key)
            if old == obj:
                return copy.deepcopy(old)
            if "generation" in old.get("metadata", {}):
                changed = bump_generation
                if changed is None:
                    strip = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}  # noqa: E731
                    changed = strip(old) != strip(obj)
                meta["generation"] = old["metadata"]["generation"] + (1 if changed else 0)
            self._bump(obj)
            self._objects[kind][key] = obj
            self._record(Change(self.rv, "MODIFIED", kind, copy.deepcopy(obj), copy.deepcopy(old)))
            return copy.deepcopy(obj)

    def delete(self, kind: str, namespace: str, name: str) -> dict | None:
        with self.cond:
            old = self._objects[kind].pop((namespace, name), None)
            if old is None:
                return None
            obj = copy.deepcopy(old)
            self._bump(obj)
            self._record(Change(self.rv, "DELETED", kind, copy.deepcopy(obj), old))
            return obj

    def clear(self):
        with self.cond:
            self._objects.clear()
            self.history.clear()
            self.compacted = self.rv
            self.cond.notify_all()

    def compact(self):
        """Forget the whole history: older resourceVersions now give 410 Gone."""
        with self.cond:
            self.history.clear()
            self.compacted = self.rv

    # -- reads --------------------------------------------------------------------
    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        with self.cond:
            obj = self._objects[kind].get((namespace or "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, kind: str, namespace: str | None = None) -> list[dict]:
        with self.cond:
            items = [o for (ns, _), o in self._objects[kind].items() if namespace in (None, ns)]
            items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            return copy.deepcopy(items)

    def changes_since(self, rv: int) -> list[Change]:
        with self.cond:
            if rv < self.compacted:
                raise Expired(rv, self.compacted + 1)
            return [c for c in self.history if c.rv > rv]
