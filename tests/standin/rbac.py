"""Authorisation: the Toolforge ``tools-user`` ClusterRole (REFERENCE section 8), bound in
the tool's own namespace only, with kube-apiserver's RBAC refusals.

``StandIn.rbac`` chooses the rule set:

``None`` (default)
    the stand-in's historical rule: a tool may do anything in ``tool-<tool>``, get and
    list/watch its own Namespace, and get ``tf-public/image-config``; nothing else.
``"tools-user"``
    the 2023 ``tools-user`` rules plus the HTTPRoute verbs added in 2026: get/list/watch on
    events, limitranges, resourcequotas, pods/log, pods/status, namespaces; every verb on
    pods, pods/attach, pods/exec, services, configmaps, secrets; apps deployments,
    replicasets (not their /scale); batch jobs, cronjobs;
    networking.k8s.io ingresses, networkpolicies; gateway.networking.k8s.io httproutes;
    get/list/watch on metrics.k8s.io pods.  Status subresources (``*/status``) other
    than pods/status are not granted.  Only in the tool's own namespace (its Namespace
    object included); ``tf-public`` configmap ``image-config`` may be read.
``"tools-user-no-httproute"``
    the same without any HTTPRoute verb (a cluster from before 2026).

Server-side apply (``PATCH`` with ``application/apply-patch+yaml``) of an object that does
not exist needs ``create`` besides ``patch``, as on a real cluster.

Refusals are ``403 Forbidden`` Status objects with the real message:
``<resource> "<name>" is forbidden: User "<user>" cannot <verb> resource "<resource>[/<sub>]"
in API group "<group>" in the namespace "<ns>"`` (``at the cluster scope`` for a
cluster-scoped request; no ``"<name>"`` for list, watch, create and deletecollection).
"""

from __future__ import annotations

from .errors import ApiError

ADMINS = {"kubernetes-admin", "system:admin"}

READ = ("get", "list", "watch")
ALL = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

# (api group, resource[/subresource]) -> verbs
TOOLS_USER_2023: dict[tuple[str, str], tuple] = {}
for _r in ("events", "limitranges", "resourcequotas", "pods/log", "pods/status", "namespaces"):
    TOOLS_USER_2023[("", _r)] = READ
for _r in ("pods", "pods/attach", "pods/exec", "services", "configmaps", "secrets"):
    TOOLS_USER_2023[("", _r)] = ALL
for _g, _rs in (("apps", ("deployments", "replicasets")),
                ("batch", ("jobs", "cronjobs")),
                ("networking.k8s.io", ("ingresses", "networkpolicies"))):
    for _r in _rs:
        TOOLS_USER_2023[(_g, _r)] = ALL
TOOLS_USER_2023[("metrics.k8s.io", "pods")] = READ

TOOLS_USER = dict(TOOLS_USER_2023)
TOOLS_USER[("gateway.networking.k8s.io", "httproutes")] = ALL

PROFILES = {"tools-user": TOOLS_USER, "tools-user-no-httproute": TOOLS_USER_2023}

# what every tool may read outside its namespace: (namespace, group, resource, name) -> verbs
PUBLIC = {("tf-public", "", "configmaps", "image-config"): ("get",)}


def forbidden(res, name, user, verb, namespace, sub=None) -> ApiError:
    """kube-apiserver's RBAC refusal (``responsewriters.ForbiddenStatusError``)."""
    resource = f"{res.plural}/{sub}" if sub else res.plural
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    why = f'User "{user}" cannot {verb} resource "{resource}" in API group "{res.group}" {where}'
    prefix = f'{res.group_resource} "{name}"' if name else res.group_resource
    details = {"kind": res.plural}
    if name:
        details["name"] = name
    if res.group:
        details["group"] = res.group
    return ApiError(403, "Forbidden", f"{prefix} is forbidden: {why}", details)


def allowed(profile: str, user: str, verb: str, res, ns, name, sub) -> bool:
    """Whether ``user`` (a tool) may ``verb`` the resource under ``profile``."""
    rules = PROFILES[profile]
    own = f"tool-{user}"
    resource = f"{res.plural}/{sub}" if sub else res.plural
    if res.kind == "Namespace":
        # a RoleBinding in tool-<tool> grants verbs on the Namespace object of that name only
        return name == own and verb in rules.get(("", resource), ())
    if ns is None:
        return False
    if ns != own:
        return verb in PUBLIC.get((ns, res.group, resource, name), ())
    return verb in rules.get((res.group, resource), ())


def authorize(standin, user, verb, res, ns, name, sub, *, creates=False):
    """Raise a 403 ``ApiError`` unless the request is allowed.  ``creates``: a server-side
    apply that would create the object (needs ``create`` too)."""
    if user in ADMINS:
        return
    profile = standin.rbac
    if profile is None:
        return _legacy(user, verb, res, ns, name, sub)
    if profile not in PROFILES:
        raise ValueError(f"unknown StandIn.rbac {profile!r}; choose None or one of {sorted(PROFILES)}")
    shown = None if verb in ("list", "watch", "create", "deletecollection") and not sub else name
    where = name if res.kind == "Namespace" else ns
    if not allowed(profile, user, verb, res, ns, name, sub):
        raise forbidden(res, shown, user, verb, where, sub)
    if creates and not allowed(profile, user, "create", res, ns, name, sub):
        raise forbidden(res, shown, user, "create", where, sub)


def _legacy(user, verb, res, ns, name, sub):
    own = f"tool-{user}"
    if res.kind == "Namespace":
        if verb in READ and name == own:
            return
        raise forbidden(res, name, user, verb, None)
    if ns is None:
        raise forbidden(res, name, user, verb, None, sub)
    if ns == own:
        return
    if ns == "tf-public" and res.kind == "ConfigMap" and verb == "get" and name == "image-config":
        return
    raise forbidden(res, name, user, verb, ns, sub)
