"""OpenAPI v3 documents (``/openapi/v3`` and ``/openapi/v3/<gv>``), enough for kubectl.

kubectl (``apply``, ``create``, ``replace``) checks through OpenAPI v3 whether the server
supports server-side field validation (a ``fieldValidation`` query parameter on the PATCH
operation of the kind's path); when it does, it sends ``fieldValidation=Strict`` instead
of validating on the client.  ``kubectl apply`` also reads the schemas' patch merge keys.
The schemas come from the same ``kubernetes-validate`` definitions as the validation,
turned into OpenAPI 3 (single ``type``, refs under ``#/components/schemas/``).  OpenAPI v2
is protobuf-only in kubectl and is not served (404); kubectl copes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading

from .store import RESOURCES
from .validation import schema_dir, schemas_available

_cache: dict = {}
_lock = threading.Lock()


def _normalize(node):
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out[k] = v.replace("/api/_definitions.json#/$defs/", "#/components/schemas/").replace(
                    "#/$defs/", "#/components/schemas/")
            elif k == "type" and isinstance(v, list):
                types = [t for t in v if t != "null"]
                if len(types) == 1:
                    out[k] = types[0]
            else:
                out[k] = _normalize(v)
        return out
    if isinstance(node, list):
        return [_normalize(x) for x in node]
    return node


def _schemas(version: str) -> dict:
    if not schemas_available():
        return {}
    with _lock:
        if version not in _cache:
            with open(os.path.join(schema_dir(version).replace("-local-strict", "-local"), "_definitions.json")) as f:
                defs = json.load(f)["$defs"]
            _cache[version] = _normalize(defs)
        return _cache[version]


def _gv_key(r) -> str:
    return f"apis/{r.group}/{r.version}" if r.group else f"api/{r.version}"


PARAMS = [{"name": n, "in": "query", "schema": {"type": t, "uniqueItems": True}}
          for n, t in (("dryRun", "string"), ("fieldManager", "string"), ("fieldValidation", "string"),
                       ("force", "boolean"), ("pretty", "string"))]


def root(version: str) -> dict:
    paths = {}
    for r in RESOURCES:
        key = _gv_key(r)
        digest = hashlib.sha256(f"{version}/{key}".encode()).hexdigest()[:32].upper()
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}


def document(version: str, k8s_full_version: str, gv_path: str) -> dict | None:
    resources = [r for r in RESOURCES if _gv_key(r) == gv_path]
    if not resources:
        return None
    paths = {}
    for r in resources:
        base = "/" + gv_path + ("/namespaces/{namespace}" if r.namespaced else "")
        gvk = {"group": r.group, "kind": r.kind, "version": r.version}
        ref = {"$ref": f"#/components/schemas/{_schema_name(r)}"}
        body = {"content": {"application/json": {"schema": ref}}}
        ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
        op = lambda action, extra=None: {  # noqa: E731
            "operationId": f"{action}{r.kind}", "parameters": PARAMS, "responses": ok,
            "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk, **(extra or {})}
        paths[f"{base}/{r.plural}"] = {"post": op("post", {"requestBody": body}), "get": op("list")}
        paths[f"{base}/{r.plural}/{{name}}"] = {"get": op("get"), "put": op("put", {"requestBody": body}),
                                                "patch": op("patch"), "delete": op("delete")}
    schemas = _schemas(version)
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": k8s_full_version},
            "paths": paths, "components": {"schemas": schemas}}


def _schema_name(r) -> str:
    group = {"": "core", "networking.k8s.io": "networking", "gateway.networking.k8s.io": "gateway"}.get(r.group, r.group)
    return f"io.k8s.api.{group}.{r.version}.{r.kind}"
