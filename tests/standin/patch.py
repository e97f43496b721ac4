"""Patch types of kube-apiserver: JSON patch, merge patch, strategic merge, server-side apply.

Strategic merge knows the list merge keys of the built-in types the stand-in serves
(containers/env/volumes/... by ``name``, volumeMounts by ``mountPath``, container ports by
``containerPort``, service ports by ``port``, conditions by ``type``, ownerReferences by
``uid``) and the ``$patch`` (``replace``/``delete``/``merge``), ``$retainKeys``,
``$setElementOrder/`` and ``$deleteFromPrimitiveList/`` directives.  Lists without a
merge key are replaced, as on a real server.

Server-side apply is implemented with field ownership: each manager owns a set of field
paths (``managedFields``, ``fieldsV1`` encoding).  Applying merges the configuration in
(associative lists merged by key), removes the fields the same manager applied before
and no longer applies (unless another manager owns them), and reports conflicts with
other managers' differing values as ``409 Conflict`` unless ``force=true``.
"""

from __future__ import annotations

import copy
import json

MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "imagePullSecrets": "name", "volumeMounts": "mountPath",
    "volumeDevices": "devicePath", "conditions": "type", "ownerReferences": "uid",
    "hostAliases": "ip", "topologySpreadConstraints": "topologyKey", "resourceClaims": "name",
    "gateways": "name",
}
SET_LISTS = {"finalizers"}  # primitive lists merged as sets


def merge_key(field: str, items: list) -> str | None:
    if field == "ports":
        for item in items:
            if isinstance(item, dict):
                return "containerPort" if "containerPort" in item else "port"
        return None
    return MERGE_KEYS.get(field)


class PatchError(ValueError):
    pass


# -- RFC 6902 -----------------------------------------------------------------------
def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc, parts):
    cur = doc
    for p in parts:
        if isinstance(cur, list):
            cur = cur[int(p)]
        elif isinstance(cur, dict):
            if p not in cur:
                raise PatchError(f"doc is missing path: {'/' + '/'.join(parts)}")
            cur = cur[p]
        else:
            raise PatchError("path traverses a scalar")
    return cur


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        try:
            if kind == "test":
                if _resolve(doc, parts) != op.get("value"):
                    raise PatchError(f"testing value {op.get('path')} failed: test failed")
                continue
            if kind in ("move", "copy"):
                value = copy.deepcopy(_resolve(doc, _pointer(op["from"])))
                if kind == "move":
                    doc = _remove(doc, _pointer(op["from"]))
                doc = _add(doc, parts, value)
            elif kind == "add":
                doc = _add(doc, parts, copy.deepcopy(op.get("value")))
            elif kind == "remove":
                doc = _remove(doc, parts)
            elif kind == "replace":
                _resolve(doc, parts)
                doc = _remove(doc, parts)
                doc = _add(doc, parts, copy.deepcopy(op.get("value")))
            else:
                raise PatchError(f"Unexpected kind: {kind}")
        except (KeyError, IndexError, ValueError, TypeError) as e:
            if isinstance(e, PatchError):
                raise
            raise PatchError(f"doc is missing path: {op.get('path')}: {e}")
    return doc


def _add(doc, parts, value):
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        idx = len(parent) if last == "-" else int(last)
        if idx > len(parent):
            raise PatchError("add operation index out of bounds")
        parent.insert(idx, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise PatchError("cannot add to a scalar")
    return doc


def _remove(doc, parts):
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        parent.pop(int(last))
    else:
        if last not in parent:
            raise PatchError(f"Unable to remove nonexistent key: {last}: missing value")
        del parent[last]
    return doc


# -- RFC 7386 -----------------------------------------------------------------------
def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# -- strategic merge ----------------------------------------------------------------
def strategic_merge(target, patch, field: str = ""):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys") or k.startswith("$setElementOrder/"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            name = k.split("/", 1)[1]
            if isinstance(result.get(name), list):
                result[name] = [x for x in result[name] if x not in v]
            continue
        if v is None:
            result.pop(k, None)
        elif isinstance(v, list):
            result[k] = _merge_list(result.get(k), v, k)
        elif isinstance(v, dict):
            merged = strategic_merge(result.get(k), v, k)
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        else:
            result[k] = copy.deepcopy(v)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(current, patch: list, field: str):
    current = current if isinstance(current, list) else []
    if field in SET_LISTS:
        out = list(current)
        out += [x for x in patch if x not in out]
        return out
    key = merge_key(field, patch + current)
    if key is None:
        if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
            return [x for x in patch if not (isinstance(x, dict) and "$patch" in x)]
        return copy.deepcopy(patch)
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    out = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict):
            out.append(copy.deepcopy(item))
            continue
        idx = next((i for i, c in enumerate(out) if isinstance(c, dict) and c.get(key) == item.get(key)),
                   None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(strategic_merge({}, item, field))
        else:
            out[idx] = strategic_merge(out[idx], item, field)
    return out


# -- server-side apply ----------------------------------------------------------------
def field_paths(obj, prefix=(), field: str = "") -> set:
    """Leaf field paths of ``obj``; associative list items are addressed by key."""
    paths = set()
    if isinstance(obj, dict):
        if not obj and prefix:
            paths.add(prefix)
        for k, v in obj.items():
            paths |= field_paths(v, prefix + ("f:" + k,), k)
    elif isinstance(obj, list):
        key = merge_key(field, obj)
        if key and all(isinstance(x, dict) and key in x for x in obj) and obj:
            for item in obj:
                ip = prefix + ("k:" + json.dumps({key: item[key]}, separators=(",", ":")),)
                paths.add(ip + ("f:" + key,))
                paths |= field_paths({k: v for k, v in item.items() if k != key}, ip, field) - {ip}
        else:
            paths.add(prefix)
    else:
        paths.add(prefix)
    return paths


def _get(obj, path):
    cur = obj
    for p in path:
        if p.startswith("f:"):
            if not isinstance(cur, dict) or p[2:] not in cur:
                return _MISSING
            cur = cur[p[2:]]
        else:
            ((k, v),) = json.loads(p[2:]).items()
            if not isinstance(cur, list):
                return _MISSING
            cur = next((x for x in cur if isinstance(x, dict) and x.get(k) == v), _MISSING)
            if cur is _MISSING:
                return _MISSING
    return cur


_MISSING = object()


def _remove_path(obj, path):
    parent = _get(obj, path[:-1]) if len(path) > 1 else obj
    last = path[-1]
    if parent is _MISSING:
        return
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        ((k, v),) = json.loads(last[2:]).items()
        parent[:] = [x for x in parent if not (isinstance(x, dict) and x.get(k) == v)]


def apply_merge(target, config, field: str = ""):
    """Merge an apply configuration: maps merged, associative lists by key, others atomic."""
    if isinstance(config, dict):
        result = copy.deepcopy(target) if isinstance(target, dict) else {}
        for k, v in config.items():
            if v is None:
                result.pop(k, None)
            else:
                result[k] = apply_merge(result.get(k), v, k)
        return result
    if isinstance(config, list):
        key = merge_key(field, config)
        if key and isinstance(target, list) and all(isinstance(x, dict) and key in x for x in config):
            out = copy.deepcopy(target)
            for item in config:
                idx = next((i for i, c in enumerate(out) if isinstance(c, dict) and c.get(key) == item[key]),
                           None)
                if idx is None:
                    out.append(copy.deepcopy(item))
                else:
                    out[idx] = apply_merge(out[idx], item, field)
            return out
        return copy.deepcopy(config)
    return copy.deepcopy(config)


class ApplyConflict(Exception):
    def __init__(self, conflicts):
        super().__init__(conflicts)
        self.conflicts = conflicts  # [(manager, path)]


def path_str(path) -> str:
    out = ""
    for p in path:
        out += "." + p[2:] if p.startswith("f:") else "[" + ",".join(
            f"{k}={json.dumps(v)}" for k, v in json.loads(p[2:]).items()) + "]"
    return out


def server_side_apply(existing: dict, config: dict, manager: str, owners: dict, force: bool):
    """Return (new object, new owners).

    ``owners`` maps (manager, operation) -> set of field paths.
    """
    cfg = copy.deepcopy(config)
    cfg.pop("status", None)
    applied = {p for p in field_paths(cfg) if not _system(p)}
    owners = {k: set(v) for k, v in owners.items()}
    me = (manager, "Apply")
    conflicts = []
    for other, paths in owners.items():
        if other == me:
            continue
        for p in paths & applied:
            if _get(existing, p) != _get(cfg, p):
                conflicts.append((other[0], p))
    if conflicts and not force:
        raise ApplyConflict(sorted(conflicts, key=lambda c: (c[0], path_str(c[1]))))
    for other, paths in owners.items():
        if other != me:
            paths -= {p for _, p in conflicts}
    previously = owners.get(me, set())
    result = apply_merge(existing, cfg)
    others = set().union(*[paths for m, paths in owners.items() if m != me]) if owners else set()
    applied_prefixes = {p[:i] for p in applied for i in range(1, len(p) + 1)}
    other_prefixes = {p[:i] for p in others for i in range(1, len(p) + 1)}
    for p in sorted(previously - applied, key=len, reverse=True):
        q = next((p[:i] for i in range(1, len(p) + 1) if p[:i] not in applied_prefixes), None)
        if q is None:
            continue  # still applied, with a different shape
        if q not in other_prefixes:
            _remove_path(result, q)
        elif p not in others:
            _remove_path(result, p)
    owners[me] = applied
    return result, {m: v for m, v in owners.items() if v}


_SKIP = (("f:status",), ("f:metadata", "f:managedFields"), ("f:metadata", "f:resourceVersion"),
         ("f:metadata", "f:uid"), ("f:metadata", "f:creationTimestamp"), ("f:metadata", "f:generation"),
         ("f:metadata", "f:deletionTimestamp"), ("f:metadata", "f:deletionGracePeriodSeconds"),
         ("f:metadata", "f:name"), ("f:metadata", "f:namespace"), ("f:apiVersion",), ("f:kind",))


def _system(p) -> bool:
    return any(p[:len(s)] == s for s in _SKIP)


def update_owners(old: dict | None, new: dict, manager: str, owners: dict) -> dict:
    """Ownership after a non-apply write: ``(manager, "Update")`` takes the fields it changed."""
    owners = {k: set(v) for k, v in owners.items()}
    new_paths = {p for p in field_paths(new) if not _system(p)}
    changed = {p for p in new_paths if old is None or _get(old, p) != _get(new, p)}
    me = (manager, "Update")
    for m, paths in owners.items():
        paths &= new_paths  # fields removed from the object are owned by nobody
        if m != me:
            paths -= changed
    if changed:
        owners[me] = owners.get(me, set()) | changed
    return {m: v for m, v in owners.items() if v}


def fields_v1(paths: set) -> dict:
    """The ``fieldsV1`` tree of a set of paths (list items carry a ``"."`` entry)."""
    tree: dict = {}
    for p in paths:
        cur = tree
        for part in p:
            cur = cur.setdefault(part, {})
            if part.startswith("k:"):
                cur.setdefault(".", {})
    return tree
