"""One AdmissionReview in, one AdmissionReview response out: pure, no I/O.

``review(body, policy, exempt)`` takes the decoded JSON body kube-apiserver POSTs and
returns ``(response_dict, decision)``; ``decision.reason`` is None when allowed, else the
stable reason code (``webservice.builders.admission.REASONS``, plus ``unparseable-object``).
A body that is not an AdmissionReview (no ``request``, no ``uid``, a foreign ``kind`` or
``apiVersion``) raises ``InvalidReview``: the server answers HTTP 400.

Scope, as the ValidatingWebhookConfiguration sends it: Ingress (``networking.k8s.io``,
also the old ``extensions`` group) and HTTPRoute (``gateway.networking.k8s.io``, any
version), operations CREATE and UPDATE, in ``tool-<tool>`` namespaces not exempted.
Everything else (other kinds, DELETE/CONNECT, ``status`` subresource writes, other
namespaces) is allowed. The response always echoes ``request.uid`` and uses the
request's own ``apiVersion``; a denial carries ``status.code`` 403 and a message saying
what to change.
"""

from __future__ import annotations

from dataclasses import dataclass

from webservice.builders.admission import Policy
from webservice.errors import AdmissionError

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
ROUTING = {("networking.k8s.io", "Ingress"), ("extensions", "Ingress"),
           ("gateway.networking.k8s.io", "HTTPRoute")}
CHECKED_OPERATIONS = ("CREATE", "UPDATE")
TOOL_PREFIX = "tool-"


class InvalidReview(ValueError):
    """The body is not an AdmissionReview request (HTTP 400)."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str | None = None
    message: str = ""
    scope: str = "checked"  # or why it was not checked: out-of-scope, exempt, kind, operation, subresource


def _group_kind(request: dict, obj: object) -> tuple[str, str]:
    kind = request.get("kind")
    if isinstance(kind, dict) and isinstance(kind.get("kind"), str):
        group = kind.get("group") or ""
        return (group if isinstance(group, str) else ""), kind["kind"]
    if isinstance(obj, dict):
        api_version = obj.get("apiVersion") if isinstance(obj.get("apiVersion"), str) else ""
        group = api_version.rpartition("/")[0]
        return group, obj.get("kind") if isinstance(obj.get("kind"), str) else ""
    return "", ""


def review(body: object, policy: Policy, exempt: frozenset = frozenset()) -> tuple[dict, Decision]:
    if not isinstance(body, dict):
        raise InvalidReview("the body is not a JSON object")
    api_version = body.get("apiVersion", "admission.k8s.io/v1")
    if api_version not in API_VERSIONS:
        raise InvalidReview(f"apiVersion {str(api_version)[:60]!r} is not one of {', '.join(API_VERSIONS)}")
    if body.get("kind", "AdmissionReview") != "AdmissionReview":
        raise InvalidReview(f"kind {str(body.get('kind'))[:60]!r} is not AdmissionReview")
    request = body.get("request")
    if not isinstance(request, dict):
        raise InvalidReview("the AdmissionReview has no request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise InvalidReview("the AdmissionReview request has no uid")
    decision = decide(request, policy, exempt)
    response = {"uid": uid, "allowed": decision.allowed}
    if not decision.allowed:
        response["status"] = {"status": "Failure", "code": 403, "reason": "Forbidden", "message": decision.message}
        response["auditAnnotations"] = {"denial-reason": decision.reason}
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}, decision


def decide(request: dict, policy: Policy, exempt: frozenset = frozenset()) -> Decision:
    operation = request.get("operation")
    if operation is not None and operation not in CHECKED_OPERATIONS:
        return Decision(True, scope="operation")
    if request.get("subResource"):
        return Decision(True, scope="subresource")
    obj = request.get("object")
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    namespace = request.get("namespace")
    if not namespace and isinstance(metadata, dict):
        namespace = metadata.get("namespace")
    if not isinstance(namespace, str) or not namespace.startswith(TOOL_PREFIX) or len(namespace) == len(TOOL_PREFIX):
        return Decision(True, scope="out-of-scope")
    if namespace in exempt:
        return Decision(True, scope="exempt")
    group, kind = _group_kind(request, obj)
    if (group, kind) not in ROUTING:
        return Decision(True, scope="kind")
    if not isinstance(obj, dict):
        what = "no object" if obj is None else f"a {type(obj).__name__}, not an object"
        return Decision(False, "unparseable-object",
                        f"{kind} {request.get('name') or '?'}: the request carries {what}; "
                        "send a complete object")
    if obj.get("kind") != kind:
        obj = {**obj, "kind": kind}  # the request's kind is authoritative
    tool = namespace[len(TOOL_PREFIX):]
    try:
        policy.check(obj, tool, namespace)
    except AdmissionError as error:
        return Decision(False, error.reason, str(error))
    except Exception as error:  # noqa: BLE001 - a shape the checker did not foresee: deny, never crash
        return Decision(False, "unparseable-object",
                        f"{kind} {request.get('name') or '?'}: the object cannot be checked "
                        f"({type(error).__name__}); fix its shape")
    return Decision(True)
