"""Who owns an object in the tool's namespace, as far as its labels tell.

* :func:`ours`: the object carries the webservice's labels (``app.kubernetes.io/component:
  web`` and ``app.kubernetes.io/managed-by: webservice``, the selector of REFERENCE 2) in
  the tool's namespace: the only objects start, restart and stop may change or delete.
* :func:`owner_of`: an :class:`Owner` naming whoever else made it, in words for one-line
  messages ("the job 'foo'"), and the command that frees it (``toolforge jobs delete foo``,
  ``kubectl delete service foo``). Toolforge's jobs-api labels what it makes with
  ``app.kubernetes.io/managed-by: toolforge-jobs-framework`` and the job's name in
  ``app.kubernetes.io/name`` (REFERENCE 8); another ``managed-by`` value is quoted as it
  is (``managed by 'Helm'``); an object without one was made by hand or by another tool.

Pure: labels only, no cluster access, no printing.
"""

from __future__ import annotations

from dataclasses import dataclass

from webservice.conventions import COMPONENT, MANAGED_BY, MANAGER, WEB_COMPONENT

APP_NAME = "app.kubernetes.io/name"
JOBS_MANAGER = "toolforge-jobs-framework"


def _meta(obj: dict) -> dict:
    return (obj or {}).get("metadata") or {}


def _labels(obj: dict) -> dict:
    return _meta(obj).get("labels") or {}


def ours(obj: dict, namespace: str) -> bool:
    """Whether an object carries the webservice's labels in the tool's namespace."""
    labels = _labels(obj)
    return (labels.get(COMPONENT) == WEB_COMPONENT and labels.get(MANAGED_BY) == MANAGER
            and _meta(obj).get("namespace", namespace) == namespace)


def name_of(obj: dict) -> str:
    return str(_meta(obj).get("name") or "?")


@dataclass(frozen=True)
class Owner:
    """``kind`` is ``"job"``, ``"managed"`` (another ``managed-by`` value) or ``"unknown"``;
    ``name`` the job's name or the manager's; ``words`` a noun phrase ("the job 'foo'");
    ``free`` the command that removes the object."""

    kind: str
    name: str | None
    words: str
    free: str


def owner_of(kind: str, obj: dict) -> Owner:
    """Who made ``obj`` (of ``kind``: Deployment, Service, HTTPRoute, Ingress)."""
    labels = _labels(obj)
    manager = labels.get(MANAGED_BY)
    delete = f"kubectl delete {kind.lower()} {name_of(obj)}"
    if manager == JOBS_MANAGER:
        job = str(labels.get(APP_NAME) or name_of(obj))
        return Owner("job", job, f"the job '{job}'", f"toolforge jobs delete {job}")
    if manager:
        return Owner("managed", str(manager), f"'{manager}'", delete)
    return Owner("unknown", None, "made by hand or by another tool", delete)


def describe(kind: str, obj: dict) -> str:
    """``Service 'foo' of the job 'foo'``, ``Service 'foo' (made by hand or by another tool)``."""
    owner = owner_of(kind, obj)
    if owner.kind == "job":
        return f"{kind} '{name_of(obj)}' of {owner.words}"
    if owner.kind == "managed":
        return f"{kind} '{name_of(obj)}' (managed by {owner.words})"
    return f"{kind} '{name_of(obj)}' ({owner.words})"
