"""``Status`` error objects with the reasons, codes and message shapes of kube-apiserver."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "code": self.code}
        if self.reason:
            body["reason"] = self.reason
        if self.details:
            body["details"] = self.details
        return body


def _details(res, name):
    d = {"kind": res.plural}
    if name:
        d["name"] = name
    if res.group:
        d["group"] = res.group
    return d


def not_found(res, name):
    return ApiError(404, "NotFound", f'{res.group_resource} "{name}" not found', _details(res, name))


def already_exists(res, name):
    return ApiError(409, "AlreadyExists", f'{res.group_resource} "{name}" already exists',
                    _details(res, name))


def conflict(res, name, why="the object has been modified; please apply your changes to the "
                            "latest version and try again"):
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.group_resource} "{name}": {why}',
                    _details(res, name))


def forbidden(res, name, why):
    prefix = f'{res.group_resource} "{name}"' if name else res.group_resource
    return ApiError(403, "Forbidden", f"{prefix} is forbidden: {why}", _details(res, name))


def rbac_forbidden(res, name, user, verb, namespace):
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    why = f'User "{user}" cannot {verb} resource "{res.plural}" in API group "{res.group}" {where}'
    return forbidden(res, name, why)


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def bad_request(message, details=None):
    return ApiError(400, "BadRequest", message, details)


def method_not_allowed(message="the server does not allow this method on the requested resource"):
    return ApiError(405, "MethodNotAllowed", message, {})


def expired(message):
    return ApiError(410, "Expired", message)


def not_found_path():
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def invalid(res, name, causes):
    """``causes`` is a list of (reason, field, message-after-field)."""
    parts = [f"{field}: {msg}" for _, field, msg in causes]
    body = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details = _details(res, name)
    details["kind"] = res.kind
    details["causes"] = [{"reason": r, "message": m, "field": f} for r, f, m in causes]
    return ApiError(422, "Invalid", f'{res.group_kind} "{name}" is invalid: {body}', details)
