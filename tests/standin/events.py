"""Recording core/v1 Events the way cluster components do.

Controllers and the kubelet write events with ``firstTimestamp``/``lastTimestamp``/
``count`` and aggregate repeats (same object, reason, message, type and source) by
bumping ``count``.  The scheduler uses the newer events API: ``eventTime`` (a MicroTime),
``reportingComponent``/``action`` and null first/last timestamps, as seen through
core/v1.
"""

from __future__ import annotations

import datetime
import secrets

from .store import now_rfc3339


def micro_time() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def involved(obj: dict, field_path: str | None = None) -> dict:
    meta = obj["metadata"]
    ref = {"kind": obj.get("kind"), "namespace": meta.get("namespace"), "name": meta["name"],
           "uid": meta.get("uid"), "apiVersion": obj.get("apiVersion"),
           "resourceVersion": meta.get("resourceVersion")}
    if field_path:
        ref["fieldPath"] = field_path
    return ref


def record(store, obj: dict, reason: str, message: str, type_: str = "Normal", *,
           component: str, host: str | None = None, field_path: str | None = None,
           new_style: bool = False) -> dict:
    """Create or aggregate an Event about ``obj``; returns the stored Event."""
    ns = obj["metadata"].get("namespace") or "default"
    ref = involved(obj, field_path)
    source = {"component": component}
    if host:
        source["host"] = host
    with store.cond:
        for ev in store.list("Event", ns):
            io = ev.get("involvedObject", {})
            if (io.get("uid") == ref["uid"] and io.get("fieldPath") == ref.get("fieldPath")
                    and ev.get("reason") == reason and ev.get("message") == message
                    and ev.get("type") == type_ and ev.get("source", {}).get("component") == component):
                if new_style:
                    series = ev.setdefault("series", {"count": 1})
                    series["count"] = series.get("count", 1) + 1
                    series["lastObservedTime"] = micro_time()
                else:
                    ev["count"] = ev.get("count", 1) + 1
                    ev["lastTimestamp"] = now_rfc3339()
                return store.update("Event", ev)
        now = now_rfc3339()
        event = {
            "metadata": {"name": f"{obj['metadata']['name']}.{secrets.token_hex(8)}", "namespace": ns},
            "involvedObject": ref, "reason": reason, "message": message, "type": type_,
            "source": source if not new_style else {},
            "reportingComponent": component if new_style else "",
            "reportingInstance": (f"{component}-{host}" if host else component) if new_style else "",
        }
        if new_style:
            event.update({"eventTime": micro_time(), "firstTimestamp": None, "lastTimestamp": None,
                          "action": "Scheduling" if component == "default-scheduler" else "Binding"})
        else:
            event.update({"firstTimestamp": now, "lastTimestamp": now, "count": 1, "eventTime": None})
        return store.create("Event", event)
