"""REST semantics of kube-apiserver for the stand-in's resources.

Routing (``/api/v1/...``, ``/apis/<group>/<version>/...``), client-certificate users and
the Toolforge authorisation rule (a tool may only touch ``tool-<tool>``, and read
``tf-public/image-config``), the verbs (create, get, list, watch, update, patch in its four
flavours, delete with propagation, deletecollection), subresources (``status``,
``scale``, pod ``log``, ``attach``/``exec``) and server-side Table output for kubectl.
"""

from __future__ import annotations

import json

import yaml

from . import discovery, errors, rbac
from .errors import ApiError
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .store import BY_KIND, BY_PATH, GROUPS
from .verbs import Verbs, _json, _truthy, as_version

ADMINS = rbac.ADMINS


class Request:
    def __init__(self, method, path, query_all, headers, body, user):
        self.method = method
        self.path = path
        self.query_all = query_all
        self.query = {k: v[-1] for k, v in query_all.items()}
        self.headers = headers  # lower-cased keys
        self.body = body
        self.user = user

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()


class Response:
    def __init__(self, code=200, body=None, content_type="application/json", headers=None, stream=None,
                 upgrade=None):
        self.code = code
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}
        self.stream = stream
        self.upgrade = upgrade








class Api(Verbs):
    def __init__(self, standin):
        self.s = standin
        self.store = standin.store

    # -- entry -------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        try:
            if req.user is None:
                raise errors.unauthorized()
            return self._route(req)
        except ApiError as e:
            return _json(e.code, e.status())
        except Exception as e:  # a stand-in bug, or input its checks did not foresee
            import traceback
            traceback.print_exc()
            self.s.controller_errors.append(f"API {req.method} {req.path}: {e!r}")
            return _json(500, ApiError(500, "InternalError", f"Internal error occurred: {e!r}").status())

    def _route(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        host = req.headers.get("host", "127.0.0.1")
        if req.method == "GET":
            if parts in (["version"],):
                return _json(200, discovery.version_info(self.s.k8s_version))
            if parts == ["api"]:
                return _json(200, discovery.api_versions(host))
            if parts == ["apis"]:
                return _json(200, discovery.api_group_list())
            if len(parts) == 2 and parts[0] == "apis" and discovery.api_group(parts[1]):
                return _json(200, discovery.api_group(parts[1]))
            if parts[:2] == ["openapi", "v3"]:
                from . import openapi
                if len(parts) == 2:
                    return _json(200, openapi.root(self.s.k8s_version))
                doc = openapi.document(self.s.k8s_version, discovery.version_info(self.s.k8s_version)["gitVersion"],
                                       "/".join(parts[2:]))
                if doc is not None:
                    return _json(200, doc)
            if parts in (["healthz"], ["livez"], ["readyz"]):
                return Response(200, b"ok", "text/plain")
        if not parts or parts[0] not in ("api", "apis"):
            raise errors.not_found_path()
        if parts[0] == "api":
            group, rest = "", parts[1:]
        else:
            if len(parts) < 3:
                raise errors.not_found_path()
            group, rest = parts[1], parts[2:]
        if not rest:
            raise errors.not_found_path()
        version, rest = rest[0], rest[1:]
        if group and version not in GROUPS.get(group, []):
            raise errors.not_found_path()
        if not group and version != "v1":
            raise errors.not_found_path()
        if not rest:
            if req.method != "GET":
                raise errors.method_not_allowed()
            return _json(200, discovery.resource_list(group, version))
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not group:
            ns, rest = rest[1], rest[2:]
        elif rest[0] == "namespaces" and len(rest) >= 3 and group:
            ns, rest = rest[1], rest[2:]
        res = BY_PATH.get((group, version, rest[0]))
        if res is None:
            raise errors.not_found_path()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3 or (sub and sub not in res.subresources):
            raise errors.not_found_path()
        if res.kind == "Namespace":
            ns = None
        return self._dispatch(req, res, ns, name, sub)

    def _verb(self, req, name):
        m = req.method
        if m == "GET":
            if name:
                return "get"
            return "watch" if _truthy(req.query.get("watch", "")) else "list"
        return {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}.get(m, "unknown")

    def authorize(self, user, verb, res, ns, name, sub, creates=False):
        rbac.authorize(self.s, user, verb, res, ns, name, sub, creates=creates)

    def _dispatch(self, req, res, ns, name, sub) -> Response:
        if sub == "attach" or sub == "exec":
            verb = "create" if req.method in ("POST", "GET") else "unknown"
        else:
            verb = self._verb(req, name)
        creates = (verb == "patch" and req.content_type == "application/apply-patch+yaml" and not sub
                   and name is not None and self.store.get(res.kind, ns or "", name) is None)
        self.authorize(req.user, verb, res, ns, name, sub, creates)
        if res.namespaced and ns is None and verb not in ("list", "watch"):
            raise errors.not_found_path()
        if sub == "log":
            return self.s.pod_log(ns, name, req.query)
        if sub in ("attach", "exec"):
            return self.s.pod_stream(req, ns, name, sub)
        if sub == "scale":
            return self._scale(req, res, ns, name)
        if verb == "get":
            obj = self.store.get(res.kind, ns or "", name)
            if obj is None:
                raise errors.not_found(res, name)
            return self._out(req, res, obj)
        if verb == "list":
            return self._list(req, res, ns)
        if verb == "watch":
            return self._watch(req, res, ns, name)
        if verb == "create":
            return self._create(req, res, ns)
        if verb == "update":
            return self._update(req, res, ns, name, sub)
        if verb == "patch":
            return self._patch(req, res, ns, name, sub)
        if verb == "delete":
            return self._delete(req, res, ns, name)
        if verb == "deletecollection":
            return self._deletecollection(req, res, ns)
        raise errors.method_not_allowed()

    # -- helpers ---------------------------------------------------------------------
    def _out(self, req, res, obj, code=200, warnings=()):
        headers = {"Warning": ['299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in warnings]} \
            if warnings else None
        if "as=Table" in req.headers.get("accept", ""):
            return _json(code, discovery.table(res.kind, [obj], obj["metadata"].get("resourceVersion", ""),
                                               req.query.get("includeObject", "Metadata")), headers)
        return _json(code, as_version(res, obj), headers)

    def _body(self, req, res=None):
        ct = req.content_type
        if "protobuf" in ct:
            raise ApiError(415, "UnsupportedMediaType",
                           'the body of the request was in an unknown format - accepted media types include: '
                           'application/json, application/yaml')
        try:
            text = req.body.decode() if req.body else ""
            if ct in ("application/yaml", "application/apply-patch+yaml"):
                data = yaml.safe_load(text)
            else:
                data = json.loads(text) if text else None
        except (ValueError, yaml.YAMLError) as e:
            raise errors.bad_request(f"error decoding request body: {e}")
        return data

    def _selectors(self, req, res):
        try:
            lab = parse_label_selector(req.query.get("labelSelector"))
            fld = parse_field_selector(req.query.get("fieldSelector"), res.kind)
        except SelectorError as e:
            raise errors.bad_request(str(e))
        return lambda o: lab((o.get("metadata") or {}).get("labels")) and fld(o)

    def _field_validation(self, req):
        fv = req.query.get("fieldValidation") or self.s.field_validation
        if fv not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(f'fieldValidation parameter unsupported: {fv}. Must be one of '
                                     f'"Ignore", "Warn", or "Strict"')
        return fv

    def _manager(self, req, default=None):
        m = req.query.get("fieldManager")
        if m:
            return m
        return default or req.headers.get("user-agent", "unknown").split("/")[0] or "unknown"

    def _check_body_identity(self, req, res, ns, obj, name=None):
        if not isinstance(obj, dict):
            raise errors.bad_request(f"{res.kind} in version \"{res.version}\" cannot be handled as a "
                                     f"{res.kind}: json: cannot unmarshal into Go value of type {res.kind}")
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if av and av != res.api_version:
            raise errors.bad_request(f"the API version in the data ({av}) does not match the expected "
                                     f"API version ({res.api_version})")
        if kind and kind != res.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind "
                                     f"({res.kind})")
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        meta = obj.setdefault("metadata", {}) or {}
        obj["metadata"] = meta
        if res.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise errors.bad_request("the namespace of the provided object does not match the namespace "
                                         "sent on the request")
            meta["namespace"] = ns
        if name is not None and meta.get("name") and meta["name"] != name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on "
                                     f"the URL ({name})")
        if name is not None:
            meta["name"] = name

    def _namespace_exists(self, ns):
        if ns and self.store.get("Namespace", "", ns) is None:
            raise errors.not_found(BY_KIND["Namespace"], ns)
