"""The verbs of the REST API as a mixin of ``api.Api``: list and watch (with selectors,
pagination, resourceVersion semantics, ``timeoutSeconds``, 410 ``Expired``), create,
update, the four patch types, server-side apply with field ownership and conflicts,
delete (graceful for pods, ``propagationPolicy`` Background/Foreground/Orphan),
deletecollection and the ``scale`` subresource; and the write pipeline they share:
decode (schema) -> defaults -> validation -> admission -> managedFields -> store."""

from __future__ import annotations

import base64
import copy
import json
import time

from . import defaults, discovery, errors, patch, validation
from .errors import ApiError
from .store import Expired, now_rfc3339, random_suffix


def _json(code, obj, headers=None):
    from .api import Response
    return Response(code, json.dumps(obj).encode(), headers=headers)


def _status_success(res, obj):
    meta = obj["metadata"]
    details = {"name": meta["name"], "kind": res.plural, "uid": meta.get("uid")}
    if res.group:
        details["group"] = res.group
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _truthy(v):
    return v in ("true", "1", "True", "t")


class Verbs:
    def _write(self, req, res, ns, obj, old, manager, *, apply_owners=None):
        """Decode, default, validate, admit and store; returns (stored, warnings)."""
        fv = self._field_validation(req) if req is not None else "Strict"
        obj, warnings = validation.decode(res, obj, self.s.k8s_version, fv)
        meta = obj["metadata"]
        if old is None:
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + random_suffix()
            for k in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation",
                      "managedFields"):
                meta.pop(k, None)
        else:
            for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds"):
                if k in old["metadata"]:
                    meta[k] = old["metadata"][k]
                else:
                    meta.pop(k, None)
            rv = meta.get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(res, meta["name"])
        defaults.apply(res.kind, obj)
        validation.validate(res, obj, old)
        dry = "All" in (req.query_all.get("dryRun", []) if req is not None else [])
        with self.store.cond:
            if old is None:
                self._namespace_exists(ns)
                self.s.admit(res, ns, obj)
            elif res.kind in ("Ingress", "HTTPRoute"):
                self.s.admit_route(res, ns, obj, "UPDATE", old)
            key = (res.kind, ns or "", meta["name"])
            owners = self.s.owners.get(key, {}) if old is not None else {}
            owners = apply_owners if apply_owners is not None else patch.update_owners(old, obj, manager, owners)
            self._render_managed(res, obj, owners, self.s.owners.get(key, {}) if old is not None else {},
                                 old)
            if dry:
                return obj, warnings
            if old is None:
                if self.store.get(res.kind, ns or "", meta["name"]) is not None:
                    raise errors.already_exists(res, meta["name"])
                stored = self.store.create(res.kind, obj)
            else:
                stored = self.store.update(res.kind, obj)
            self.s.owners[key] = owners
        return stored, warnings

    def _render_managed(self, res, obj, owners, old_owners, old):
        prev = {(e["manager"], e["operation"]): e for e in ((old or {}).get("metadata") or {}).get("managedFields") or []}
        entries = []
        for (manager, op), paths in sorted(owners.items()):
            entry = prev.get((manager, op))
            if entry is None or old_owners.get((manager, op)) != paths:
                entry = {"manager": manager, "operation": op, "apiVersion": res.api_version,
                         "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": patch.fields_v1(paths)}
            entries.append(entry)
        obj["metadata"]["managedFields"] = entries

    # -- verbs -----------------------------------------------------------------------
    def _list(self, req, res, ns):
        match = self._selectors(req, res)
        with self.store.cond:
            items = [o for o in self.store.list(res.kind, ns) if match(o)]
            rv = str(self.store.rv)
        start = 0
        if req.query.get("continue"):
            try:
                start = int(base64.b64decode(req.query["continue"]).decode())
            except ValueError:
                raise errors.bad_request("continue key is not valid")
        cont = None
        if req.query.get("limit") and int(req.query["limit"]) > 0:
            limit = int(req.query["limit"])
            if start + limit < len(items):
                cont = base64.b64encode(str(start + limit).encode()).decode()
            items = items[start:start + limit]
        else:
            items = items[start:]
        if "as=Table" in req.headers.get("accept", ""):
            return _json(200, discovery.table(res.kind, items, rv, req.query.get("includeObject", "Metadata")))
        for o in items:
            o.pop("apiVersion", None)
            o.pop("kind", None)
        meta = {"resourceVersion": rv}
        if cont:
            meta["continue"] = cont
        return _json(200, {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta,
                           "items": items})

    def _watch(self, req, res, ns, name):
        match = self._selectors(req, res)
        if name:
            inner = match
            match = lambda o: inner(o) and o["metadata"]["name"] == name  # noqa: E731
        timeout = req.query.get("timeoutSeconds")
        deadline = time.monotonic() + float(timeout) if timeout else None
        rv_param = req.query.get("resourceVersion") or "0"
        store, stop = self.store, self.s.stop_event

        def line(type_, obj):
            return (json.dumps({"type": type_, "object": obj}) + "\n").encode()

        def gone(e):
            return line("ERROR", errors.expired(str(e)).status())

        bookmarks = _truthy(req.query.get("allowWatchBookmarks", ""))
        interval = self.s.bookmark_interval

        def bookmark(rv):
            return line("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version,
                                     "metadata": {"resourceVersion": str(rv)}})

        def gen():
            error = None
            last_bookmark = time.monotonic()
            with store.cond:
                if rv_param == "0":
                    initial = [o for o in store.list(res.kind, ns) if match(o)]
                    last = store.rv
                else:
                    initial = []
                    try:
                        last = int(rv_param)
                        store.changes_since(last)
                    except ValueError:
                        error = line("ERROR", errors.bad_request(f"invalid resource version: {rv_param}").status())
                    except Expired as e:
                        error = gone(e)
            if error:
                yield error
                return
            for o in initial:
                yield line("ADDED", o)
            while True:
                changes, error = None, None
                with store.cond:
                    left = None if deadline is None else deadline - time.monotonic()
                    if store.rv <= last and not stop.is_set() and (left is None or left > 0):
                        store.cond.wait(min(left, 0.5) if left is not None else 0.5)
                    if stop.is_set():
                        return
                    timed_out = deadline is not None and time.monotonic() >= deadline and store.rv <= last
                if timed_out:
                    if bookmarks:  # like kube-apiserver, a last bookmark before the timeout ends it
                        yield bookmark(last)
                    return
                with store.cond:
                    if store.rv > last:
                        try:
                            changes = store.changes_since(last)
                        except Expired as e:
                            error = gone(e)
                        last = store.rv
                if error:
                    yield error
                    return
                if changes is None:
                    if bookmarks and interval and time.monotonic() - last_bookmark >= interval:
                        last_bookmark = time.monotonic()
                        yield bookmark(last)
                    else:
                        yield b""  # idle: lets the server notice a client that went away
                    continue
                out = []
                for ch in changes:
                    if ch.kind != res.kind:
                        continue
                    if ns is not None and ch.obj["metadata"].get("namespace", "") != ns:
                        continue
                    new_ok = match(ch.obj)
                    old_ok = ch.old is not None and match(ch.old)
                    if ch.type == "ADDED" and new_ok:
                        out.append(line("ADDED", ch.obj))
                    elif ch.type == "MODIFIED":
                        if new_ok and old_ok:
                            out.append(line("MODIFIED", ch.obj))
                        elif new_ok:
                            out.append(line("ADDED", ch.obj))
                        elif old_ok:
                            out.append(line("DELETED", ch.obj))
                    elif ch.type == "DELETED" and (old_ok or new_ok):
                        out.append(line("DELETED", ch.obj))
                for chunk in out:
                    yield chunk
        from .api import Response
        return Response(200, stream=gen(), content_type="application/json")

    def _create(self, req, res, ns):
        obj = self._body(req, res)
        self._check_body_identity(req, res, ns, obj)
        meta = obj["metadata"]
        if not meta.get("name") and not meta.get("generateName"):
            raise errors.invalid(res, "", [("FieldValueRequired", "metadata.name",
                                            "Required value: name or generateName is required")])
        stored, warnings = self._write(req, res, ns, obj, None, self._manager(req))
        return self._out(req, res, stored, 201, warnings)

    def _update(self, req, res, ns, name, sub):
        obj = self._body(req, res)
        self._check_body_identity(req, res, ns, obj, name)
        with self.store.cond:
            old = self.store.get(res.kind, ns or "", name)
            if old is None:
                raise errors.not_found(res, name)
            if sub == "status":
                new = copy.deepcopy(old)
                new["status"] = obj.get("status")
                rv = obj["metadata"].get("resourceVersion")
                if rv:
                    new["metadata"]["resourceVersion"] = rv
                obj = new
            elif "status" in old:
                obj["status"] = old["status"]
            stored, warnings = self._write(req, res, ns, obj, old, self._manager(req))
        return self._out(req, res, stored, 200, warnings)

    def _patch(self, req, res, ns, name, sub):
        ct = req.content_type
        body = self._body(req, res)
        with self.store.cond:
            old = self.store.get(res.kind, ns or "", name)
            if ct == "application/apply-patch+yaml":
                return self._apply(req, res, ns, name, sub, body, old)
            if old is None:
                raise errors.not_found(res, name)
            try:
                if ct == "application/json-patch+json":
                    new = patch.json_patch(old, body)
                elif ct == "application/merge-patch+json":
                    new = patch.merge_patch(old, body)
                elif ct == "application/strategic-merge-patch+json":
                    new = patch.strategic_merge(old, body)
                else:
                    raise ApiError(415, "UnsupportedMediaType",
                                   "the body of the request was in an unknown format - accepted media types "
                                   "include: application/json-patch+json, application/merge-patch+json, "
                                   "application/apply-patch+yaml, application/strategic-merge-patch+json")
            except patch.PatchError as e:
                raise ApiError(422 if ct == "application/json-patch+json" else 400,
                               "Invalid" if ct == "application/json-patch+json" else "BadRequest", str(e))
            if not isinstance(new, dict):
                raise errors.bad_request("patched object is not an object")
            self._check_body_identity(req, res, ns, new, name)
            if sub == "status":
                kept = copy.deepcopy(old)
                kept["status"] = new.get("status")
                new = kept
            elif "status" in old:
                new["status"] = old["status"]
            if new.get("metadata", {}).get("resourceVersion") != old["metadata"]["resourceVersion"]:
                raise errors.conflict(res, name)
            stored, warnings = self._write(req, res, ns, new, old, self._manager(req))
        return self._out(req, res, stored, 200, warnings)

    def _apply(self, req, res, ns, name, sub, body, old):
        manager = req.query.get("fieldManager")
        if not manager:
            raise errors.bad_request("PATCH, application/apply-patch+yaml requires fieldManager "
                                     "parameter: fieldManager is required for apply requests")
        if not isinstance(body, dict):
            raise errors.bad_request("error decoding YAML: apply configuration must be an object")
        if not body.get("apiVersion") or not body.get("kind"):
            raise errors.bad_request("apiVersion and kind must be set in an apply configuration")
        self._check_body_identity(req, res, ns, body, name)
        force = _truthy(req.query.get("force", ""))
        key = (res.kind, ns or "", name)
        base = old if old is not None else {"apiVersion": res.api_version, "kind": res.kind,
                                             "metadata": {"name": name, **({"namespace": ns} if ns else {})}}
        owners = self.s.owners.get(key, {}) if old is not None else {}
        try:
            new, new_owners = patch.server_side_apply(base, body, manager, owners, force)
        except patch.ApplyConflict as e:
            n = len(e.conflicts)
            managers = sorted({m for m, _ in e.conflicts})
            if n == 1:
                m, p = e.conflicts[0]
                msg = f'Apply failed with 1 conflict: conflict with "{m}" using {res.api_version}: {patch.path_str(p)}'
            else:
                msg = f"Apply failed with {n} conflicts: " + "\n".join(
                    f'conflicts with "{m}" using {res.api_version}:\n' + "\n".join(
                        f"- {patch.path_str(p)}" for mm, p in e.conflicts if mm == m) for m in managers)
            causes = [{"reason": "FieldManagerConflict",
                       "message": f'conflict with "{m}" using {res.api_version}', "field": patch.path_str(p)}
                      for m, p in e.conflicts]
            raise ApiError(409, "Conflict", msg, {"causes": causes})
        if old is not None and "status" in old:
            new["status"] = old["status"]
        new["metadata"].pop("resourceVersion", None)
        if old is not None:
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        stored, warnings = self._write(req, res, ns, new, old, manager, apply_owners=new_owners)
        return self._out(req, res, stored, 201 if old is None else 200, warnings)

    def _delete_options(self, req):
        opts = {}
        if req.body:
            try:
                opts = json.loads(req.body) or {}
            except ValueError:
                raise errors.bad_request("invalid DeleteOptions")
        for k in ("propagationPolicy", "gracePeriodSeconds"):
            if k in req.query:
                opts[k] = req.query[k]
        if "dryRun" in req.query_all:
            opts["dryRun"] = req.query_all["dryRun"]
        return opts

    def _delete(self, req, res, ns, name):
        opts = self._delete_options(req)
        with self.store.cond:
            obj = self.store.get(res.kind, ns or "", name)
            if obj is None:
                raise errors.not_found(res, name)
            pre = opts.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
                raise errors.conflict(res, name, f"Precondition failed: UID in precondition: {pre['uid']}, "
                                                 f"UID in object meta: {obj['metadata']['uid']}")
            if "All" in (opts.get("dryRun") or []):
                return _json(200, obj if res.kind == "Pod" else _status_success(res, obj))
            result = self.s.delete_object(res, obj, opts)
        if result is not None:
            return _json(200, result)
        return _json(200, _status_success(res, obj))

    def _deletecollection(self, req, res, ns):
        match = self._selectors(req, res)
        opts = self._delete_options(req)
        out = []
        with self.store.cond:
            for obj in self.store.list(res.kind, ns):
                if match(obj):
                    self.s.delete_object(res, obj, opts)
                    out.append(obj)
            rv = str(self.store.rv)
        return _json(200, {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                           "metadata": {"resourceVersion": rv}, "items": out})

    def _scale(self, req, res, ns, name):
        with self.store.cond:
            obj = self.store.get(res.kind, ns, name)
            if obj is None:
                raise errors.not_found(res, name)

            def scale_of(o):
                sel = ",".join(f"{k}={v}" for k, v in ((o["spec"].get("selector") or {}).get("matchLabels") or {}).items())
                return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                        "metadata": {"name": name, "namespace": ns, "uid": o["metadata"]["uid"],
                                     "resourceVersion": o["metadata"]["resourceVersion"],
                                     "creationTimestamp": o["metadata"]["creationTimestamp"]},
                        "spec": {"replicas": o["spec"].get("replicas", 1)},
                        "status": {"replicas": (o.get("status") or {}).get("replicas", 0), "selector": sel}}
            if req.method == "GET":
                return _json(200, scale_of(obj))
            body = self._body(req, res)
            if req.method == "PATCH":
                body = patch.merge_patch(scale_of(obj), body) if req.content_type != "application/json-patch+json" \
                    else patch.json_patch(scale_of(obj), body)
            replicas = ((body or {}).get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid '
                               f"value: {replicas}: must be greater than or equal to 0")
            new = copy.deepcopy(obj)
            new["spec"]["replicas"] = replicas
            stored, _ = self._write(req, res, ns, new, obj, self._manager(req))
            return _json(200, scale_of(stored))
