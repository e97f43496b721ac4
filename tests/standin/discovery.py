"""Discovery documents: ``/version``, ``/api``, ``/api/v1``, ``/apis``, group versions,
and server-side Table rendering for ``kubectl get``."""

from __future__ import annotations

import datetime

from .store import GROUPS, RESOURCES


def version_info(k8s_version: str) -> dict:
    minor = k8s_version.split(".")[1]
    return {"major": "1", "minor": minor, "gitVersion": f"v{k8s_version}.9",
            "gitCommit": "0123456789abcdef0123456789abcdef01234567", "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.22.1", "compiler": "gc",
            "platform": "linux/amd64"}


def api_versions(host: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}


def _group(name: str) -> dict:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in GROUPS[name]]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": versions,
            "preferredVersion": versions[0]}


def api_group_list() -> dict:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in GROUPS]}


def api_group(name: str) -> dict | None:
    return _group(name) if name in GROUPS else None


def resource_list(group: str, version: str) -> dict | None:
    items = [r for r in RESOURCES if r.group == group and r.version == version]
    if not items:
        return None
    out = []
    for r in items:
        out.append({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                    "kind": r.kind, "verbs": list(r.verbs), "shortNames": list(r.short_names)
                    if r.short_names else None})
        for sub in r.subresources:
            verbs = {"log": ["get"], "attach": ["create", "get"], "exec": ["create", "get"],
                     "portforward": ["create", "get"], "scale": ["get", "patch", "update"]}.get(
                         sub, ["get", "patch", "update"])
            kind = "Scale" if sub == "scale" else ("PodAttachOptions" if sub == "attach" else r.kind)
            out.append({"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                        "kind": kind, "verbs": verbs})
    for o in out:
        if o.get("shortNames") is None:
            o.pop("shortNames", None)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": out}


def _age(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    then = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    secs = int((datetime.datetime.now(datetime.timezone.utc) - then).total_seconds())
    if secs < 120:
        return f"{max(secs, 0)}s"
    if secs < 3600 * 3:
        return f"{secs // 60}m"
    return f"{secs // 3600}h"


def _pod_row(o):
    st = o.get("status") or {}
    cs = st.get("containerStatuses") or []
    ready = sum(1 for c in cs if c.get("ready"))
    total = len((o.get("spec") or {}).get("containers") or [])
    reason = st.get("reason") or st.get("phase", "Pending")
    for c in cs:
        state = c.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state and state["terminated"].get("reason"):
            reason = state["terminated"]["reason"]
    if o["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restarts = sum(c.get("restartCount", 0) for c in cs)
    return [f"{ready}/{total}", reason, restarts, _age(o["metadata"].get("creationTimestamp"))]


COLUMNS = {
    "Pod": (["Ready", "Status", "Restarts", "Age"], _pod_row),
    "Deployment": (["Ready", "Up-to-date", "Available", "Age"], lambda o: [
        f"{(o.get('status') or {}).get('readyReplicas', 0)}/{(o.get('spec') or {}).get('replicas', 0)}",
        (o.get("status") or {}).get("updatedReplicas", 0), (o.get("status") or {}).get("availableReplicas", 0),
        _age(o["metadata"].get("creationTimestamp"))]),
    "Service": (["Type", "Cluster-IP", "External-IP", "Port(s)", "Age"], lambda o: [
        o["spec"].get("type", "ClusterIP"), o["spec"].get("clusterIP", ""), "<none>",
        ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in o["spec"].get("ports") or []),
        _age(o["metadata"].get("creationTimestamp"))]),
    "Ingress": (["Class", "Hosts", "Address", "Ports", "Age"], lambda o: [
        (o.get("spec") or {}).get("ingressClassName") or "<none>",
        ",".join(r.get("host") or "*" for r in (o.get("spec") or {}).get("rules") or []), "", "80",
        _age(o["metadata"].get("creationTimestamp"))]),
}


def table(kind: str, items: list[dict], rv: str, include: str = "Metadata") -> dict:
    names, row_fn = COLUMNS.get(kind, (["Age"], lambda o: [_age(o["metadata"].get("creationTimestamp"))]))
    cols = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    cols += [{"name": n, "type": "integer" if n == "Restarts" else "string", "format": "",
              "description": n, "priority": 0} for n in names]
    rows = []
    for o in items:
        row = {"cells": [o["metadata"]["name"]] + row_fn(o)}
        if include == "Object":
            row["object"] = o
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": o["metadata"]}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
            "columnDefinitions": cols, "rows": rows}
