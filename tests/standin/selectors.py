"""Label and field selectors with the syntax and error messages of kube-apiserver.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``,
``!a``, comma-separated.  Field selectors: ``path=value``, ``path==value``,
``path!=value`` over ``metadata.name``, ``metadata.namespace`` and, per kind, the
fields the real server supports (``status.phase``, ``spec.nodeName`` for pods,
``involvedObject.*``, ``reason``, ``type`` for events).
"""

from __future__ import annotations

import re


class SelectorError(ValueError):
    pass


_KEY = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str | None):
    """Return a predicate over a labels dict.  Raises SelectorError."""
    reqs = []
    for part in _split_top(text or ""):
        m = re.fullmatch(rf"({_KEY})\s+(in|notin)\s+\(([^)]*)\)", part)
        if m:
            values = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(1), m.group(2), values))
            continue
        m = re.fullmatch(rf"({_KEY})\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)", part)
        if m:
            op = {"==": "=", "=": "=", "!=": "!="}[m.group(2)]
            reqs.append((m.group(1), op, m.group(3)))
            continue
        m = re.fullmatch(rf"(!?)\s*({_KEY})", part)
        if m:
            reqs.append((m.group(2), "!exists" if m.group(1) else "exists", None))
            continue
        raise SelectorError(f"unable to parse requirement: found '{part}', expected: in, notin, =, ==, !=, gt, lt")

    def match(labels: dict | None) -> bool:
        labels = labels or {}
        for key, op, value in reqs:
            have = key in labels
            v = labels.get(key)
            if op == "=" and v != value:
                return False
            if op == "!=" and have and v == value:
                return False
            if op == "in" and v not in value:
                return False
            if op == "notin" and have and v in value:
                return False
            if op == "exists" and not have:
                return False
            if op == "!exists" and have:
                return False
        return True

    return match


FIELDS = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "status.phase", "status.podIP", "status.nominatedNodeName"),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
              "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    "ReplicaSet": ("status.replicas",),
    "Namespace": ("status.phase",),
}


def _dig(obj: dict, path: str):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    return str(cur)


def parse_field_selector(text: str | None, kind: str):
    reqs = []
    for part in [p.strip() for p in (text or "").split(",") if p.strip()]:
        m = re.fullmatch(r"([A-Za-z.]+)\s*(==|=|!=)\s*(.*)", part)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        path, op, value = m.groups()
        if path == "source" and kind == "Event":
            path = "source.component"
        allowed = ("metadata.name", "metadata.namespace") + FIELDS.get(kind, ())
        if m.group(1) not in allowed:
            raise SelectorError(f'field label not supported: {m.group(1)}')
        reqs.append((path, op != "!=", value))

    def match(obj: dict) -> bool:
        return all((_dig(obj, path) == value) == positive for path, positive, value in reqs)

    return match
