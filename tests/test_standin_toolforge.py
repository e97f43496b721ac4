"""The stand-in as today's Toolforge (REFERENCE section 8), through its real HTTPS API:
tools-user RBAC, the Kyverno pod policy, the Gateway controller's HTTPRoute status, Ingress
controller modes, jobs' published routes, object-count quotas, and the preset combining them.

No sleeps: tests wait for conditions (``standin.wait_for``) or for whole simulation steps
(``standin.controller.wait_steps``), and the gated Gateway controller acts only on
``standin.gateway.release()``. The Gateway controller's own rules are tested in
test_standin_gateway.py, the Kyverno message parsing in test_policy.py."""

from __future__ import annotations

import json
import shutil

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.standin import kyverno, toolforge as presets
from tests.standin.fixtures import KUBECTL

NS = "tool-mytool"
HOST = "mytool.toolforge.org"
GW = "/apis/gateway.networking.k8s.io/v1"
ROUTES = f"{GW}/namespaces/{NS}/httproutes"
UID = None  # filled per test from standin.tool_uids
IMAGE = "docker-registry.tools.wmflabs.org/toolforge-python311-sssd-web:latest"


def secure_pod_spec(uid, **overrides):
    spec = {"securityContext": {"runAsUser": uid, "runAsGroup": uid, "fsGroup": uid, "runAsNonRoot": True,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "webservice", "image": IMAGE,
                            "securityContext": {"allowPrivilegeEscalation": False,
                                                "capabilities": {"drop": ["ALL"]}, "privileged": False},
                            "resources": {"limits": {"cpu": "500m", "memory": "512Mi"},
                                          "requests": {"cpu": "150m", "memory": "256Mi"}}}]}
    spec.update(overrides)
    return spec


def route(name="mytool", host=HOST, parent=None, backend="mytool", port=8000):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": name},
            "spec": {"parentRefs": [parent or {"name": "toolforge", "namespace": "istio-gateway"}],
                     "hostnames": [host], "rules": [{"backendRefs": [{"name": backend, "port": port}]}]}}


def service(name="mytool", port=8000):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"name": name}, "ports": [{"name": "http", "port": port, "targetPort": port}]}}


def conditions(standin, name, ns=NS, parent_index=0):
    st = standin.get("HTTPRoute", ns, name).get("status") or {}
    parents = st.get("parents") or []
    if len(parents) <= parent_index:
        return None
    return {c["type"]: c for c in parents[parent_index]["conditions"]}


def wait_conditions(standin, name, **want):
    """Wait until the route's conditions have the wanted ``Type=(status, reason)``."""
    def ok():
        c = conditions(standin, name)
        return c if c and all((c[t]["status"], c[t]["reason"]) == v for t, v in want.items()) else None
    return standin.wait_for(ok, message=f"route {name} conditions never became {want}: {conditions(standin, name)}")


# -- RBAC --------------------------------------------------------------------------------------

@pytest.mark.standin(rbac="tools-user")
@pytest.mark.parametrize("method,path,message", [
    ("GET", "/api/v1/namespaces/tool-othertool/pods",
     'pods is forbidden: User "mytool" cannot list resource "pods" in API group "" in the namespace '
     '"tool-othertool"'),
    ("GET", "/api/v1/pods",
     'pods is forbidden: User "mytool" cannot list resource "pods" in API group "" at the cluster scope'),
    ("GET", "/api/v1/namespaces",
     'namespaces is forbidden: User "mytool" cannot list resource "namespaces" in API group "" at the '
     'cluster scope'),
    ("GET", "/api/v1/namespaces/tool-othertool",
     'namespaces "tool-othertool" is forbidden: User "mytool" cannot get resource "namespaces" in API group '
     '"" in the namespace "tool-othertool"'),
    ("POST", f"/api/v1/namespaces/{NS}/events",
     'events is forbidden: User "mytool" cannot create resource "events" in API group "" in the namespace '
     '"tool-mytool"'),
    ("DELETE", f"/api/v1/namespaces/{NS}/resourcequotas/{NS}",
     'resourcequotas "tool-mytool" is forbidden: User "mytool" cannot delete resource "resourcequotas" in API '
     'group "" in the namespace "tool-mytool"'),
    ("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/mytool/status",
     'deployments.apps "mytool" is forbidden: User "mytool" cannot patch resource "deployments/status" in API '
     'group "apps" in the namespace "tool-mytool"'),
    ("PATCH", f"{ROUTES}/mytool/status",
     'httproutes.gateway.networking.k8s.io "mytool" is forbidden: User "mytool" cannot patch resource '
     '"httproutes/status" in API group "gateway.networking.k8s.io" in the namespace "tool-mytool"'),
    ("GET", "/api/v1/namespaces/tf-public/configmaps",
     'configmaps is forbidden: User "mytool" cannot list resource "configmaps" in API group "" in the '
     'namespace "tf-public"'),
])
def test_tools_user_refuses_what_it_does_not_grant(standin, method, path, message):
    body = {"metadata": {"name": "e"}} if method == "POST" else ({} if method == "PATCH" else None)
    code, _, status = standin.http(method, path, body, content_type="application/merge-patch+json"
                                   if method == "PATCH" else "application/json")
    assert code == 403, status
    assert status["kind"] == "Status" and status["reason"] == "Forbidden" and status["code"] == 403
    assert status["message"] == message


@pytest.mark.standin(rbac="tools-user")
def test_tools_user_grants_the_tool_its_namespace(standin, kube_client):
    api = kube_client()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    assert core.read_namespace(NS).metadata.name == NS
    assert core.read_namespaced_resource_quota(NS, NS).spec.hard
    core.create_namespaced_service(NS, service())
    assert [s.metadata.name for s in core.list_namespaced_service(NS).items] == ["mytool"]
    assert apps.list_namespaced_deployment(NS).items == []
    assert core.list_namespaced_event(NS).items == []
    assert "images-v1.yaml" in core.read_namespaced_config_map("image-config", "tf-public").data
    code, _, _ = standin.http("POST", ROUTES, route())
    assert code == 201
    # server-side apply of a new object (needs patch and create: both granted)
    code, _, obj = standin.http("PATCH", f"{ROUTES}/other?fieldManager=webservice",
                                json.dumps(route("other")), content_type="application/apply-patch+yaml")
    assert code == 201 and obj["metadata"]["name"] == "other"


@pytest.mark.standin(rbac="tools-user-no-httproute")
def test_tools_user_without_httproute_verbs(standin):
    code, _, status = standin.http("GET", ROUTES)
    assert code == 403
    assert status["message"] == ('httproutes.gateway.networking.k8s.io is forbidden: User "mytool" cannot list '
                                 'resource "httproutes" in API group "gateway.networking.k8s.io" in the '
                                 'namespace "tool-mytool"')
    code, _, status = standin.http("PATCH", f"{ROUTES}/mytool?fieldManager=webservice", json.dumps(route()),
                                   content_type="application/apply-patch+yaml")
    assert code == 403 and 'cannot patch resource "httproutes"' in status["message"]
    code, _, _ = standin.http("GET", f"/api/v1/namespaces/{NS}/services")  # the rest is granted
    assert code == 200


def test_default_rbac_is_the_historical_rule(standin):
    assert standin.rbac is None
    code, _, _ = standin.http("POST", f"/api/v1/namespaces/{NS}/events",
                              {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}})
    assert code == 201  # not granted by tools-user, allowed by the default rule
    code, _, status = standin.http("GET", "/api/v1/namespaces/tool-othertool/pods")
    assert code == 403 and "tool-othertool" in status["message"]


@pytest.mark.skipif(not shutil.which(KUBECTL) and not __import__("os").path.exists(KUBECTL),
                    reason="kubectl is not installed")
@pytest.mark.standin(rbac="tools-user")
def test_tools_user_refusal_through_kubectl(standin, kubectl):
    r = kubectl("get", "ingresses", "-n", "tool-othertool")
    assert r.returncode != 0
    assert ('User "mytool" cannot list resource "ingresses" in API group "networking.k8s.io" in the namespace '
            '"tool-othertool"') in r.stderr


# -- Kyverno --------------------------------------------------------------------------------------

@pytest.mark.standin(pod_policy="strict")
def test_kyverno_refuses_a_direct_pod_without_security_context(standin):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "shell-abc"},
           "spec": {"containers": [{"name": "shell", "image": IMAGE}]}}
    code, _, status = standin.http("POST", f"/api/v1/namespaces/{NS}/pods", pod)
    assert code == 400 and status["kind"] == "Status" and "reason" not in status
    assert status["message"] == (
        'admission webhook "validate.kyverno.svc-fail" denied the request: \n\n'
        "resource Pod/tool-mytool/shell-abc was blocked due to the following policies \n\n"
        "toolforge-kyverno-pod-policy:\n  toolforge-validate-pod-policy: 'validation error: pod security context "
        "must set runAsNonRoot: true. rule toolforge-validate-pod-policy failed at path "
        "/spec/securityContext/runAsNonRoot/'\n")
    assert standin.get("Pod", NS, "shell-abc") is None


def _break(spec, where, key, value):
    target = spec if where == "pod" else spec["securityContext"] if where == "psc" else \
        spec["containers"][0]["securityContext"]
    if value is None:
        target.pop(key)
    else:
        target[key] = value


@pytest.mark.standin(pod_policy="strict")
@pytest.mark.parametrize("where,key,value,path", [
    (None, None, None, None),
    ("psc", "runAsNonRoot", False, "/spec/securityContext/runAsNonRoot/"),
    ("psc", "runAsUser", None, "/spec/securityContext/runAsUser/"),
    ("psc", "runAsGroup", 0, "/spec/securityContext/runAsGroup/"),
    ("psc", "fsGroup", None, "/spec/securityContext/fsGroup/"),
    ("psc", "seccompProfile", {"type": "Unconfined"}, "/spec/securityContext/seccompProfile/type/"),
    ("pod", "hostNetwork", True, "/spec/hostNetwork/"),
    ("pod", "volumes", [{"name": "root", "hostPath": {"path": "/etc"}}], "/spec/volumes/0/hostPath/path/"),
    ("csc", "allowPrivilegeEscalation", None, "/spec/containers/0/securityContext/allowPrivilegeEscalation/"),
    ("csc", "capabilities", {"drop": ["NET_RAW"]}, "/spec/containers/0/securityContext/capabilities/drop/"),
    ("csc", "privileged", True, "/spec/containers/0/securityContext/privileged/"),
])
def test_kyverno_checks_each_field(standin, where, key, value, path):
    spec = secure_pod_spec(standin.tool_uids["mytool"],
                           volumes=[{"name": "home", "hostPath": {"path": "/data/project/mytool"}}])
    if where:
        _break(spec, where, key, value)
    code, _, body = standin.http("POST", f"/api/v1/namespaces/{NS}/pods",
                                 {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
    if path is None:
        assert code == 201, body
    else:
        assert code == 400 and body["message"].endswith(f"failed at path {path}'\n"), body


@pytest.mark.standin(pod_policy="strict")
def test_kyverno_refusal_of_replicaset_pods_is_a_failedcreate_event(standin, kube_client):
    apps = client.AppsV1Api(kube_client())
    labels = {"name": "mytool"}
    apps.create_namespaced_deployment(NS, {
        "metadata": {"name": "mytool", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "webservice", "image": IMAGE}]}}}})
    ev = standin.wait_for(lambda: standin.events(reason="FailedCreate"))[0]
    assert ev["type"] == "Warning" and ev["involvedObject"]["kind"] == "ReplicaSet"
    rs = standin.objects("ReplicaSet", NS)[0]["metadata"]["name"]
    assert ev["message"] == "Error creating: " + kyverno.message(
        NS, rs + "-", "/spec/securityContext/runAsNonRoot/", "pod security context must set runAsNonRoot: true")
    assert standin.pods() == []
    rs = standin.objects("ReplicaSet", NS)[0]
    cond = standin.wait_for(lambda: (standin.get("ReplicaSet", NS, rs["metadata"]["name"]).get("status") or {})
                            .get("conditions"))
    assert cond[0]["reason"] == "FailedCreate" and "toolforge-validate-pod-policy" in cond[0]["message"]


@pytest.mark.standin(pod_policy="strict")
def test_kyverno_admits_a_compliant_deployment(standin, kube_client):
    apps = client.AppsV1Api(kube_client())
    labels = {"name": "mytool"}
    apps.create_namespaced_deployment(NS, {
        "metadata": {"name": "mytool", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": secure_pod_spec(standin.tool_uids["mytool"])}}})
    standin.wait_for(lambda: [p for p in standin.pods() if (p.get("status") or {}).get("phase") == "Running"])
    assert standin.events(reason="FailedCreate") == []


@pytest.mark.standin(pod_policy="runasnonroot")
def test_kyverno_today_refuses_only_runasnonroot_false(standin):
    bare = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
            "spec": {"containers": [{"name": "c", "image": IMAGE}]}}
    assert standin.http("POST", f"/api/v1/namespaces/{NS}/pods", bare)[0] == 201
    bare["metadata"]["name"] = "b"
    bare["spec"]["securityContext"] = {"runAsNonRoot": False}
    code, _, status = standin.http("POST", f"/api/v1/namespaces/{NS}/pods", bare)
    assert code == 400 and "failed at path /spec/securityContext/runAsNonRoot/" in status["message"]


# -- Gateway controller (the rest is in test_standin_gateway.py) --------------------------------

def test_gateway_status_is_stable_and_echoes_the_parent(standin):
    standin.create(service())
    assert standin.http("POST", ROUTES, route())[0] == 201
    c = wait_conditions(standin, "mytool", Accepted=("True", "Accepted"), ResolvedRefs=("True", "ResolvedRefs"))
    assert c["Accepted"]["observedGeneration"] == 1 and c["ResolvedRefs"]["observedGeneration"] == 1
    parent = standin.get("HTTPRoute", NS, "mytool")["status"]["parents"][0]
    assert parent["parentRef"] == {"name": "toolforge", "namespace": "istio-gateway"}
    assert parent["controllerName"] == "istio.io/gateway-controller"
    # more steps write nothing new
    rv = standin.get("HTTPRoute", NS, "mytool")["metadata"]["resourceVersion"]
    standin.controller.wait_steps(3)
    assert standin.get("HTTPRoute", NS, "mytool")["metadata"]["resourceVersion"] == rv


def test_gateway_section_name_of_no_listener_is_no_matching_parent(standin):
    standin.create(service())
    standin.http("POST", ROUTES, route(parent={"name": "toolforge", "namespace": "istio-gateway",
                                               "sectionName": "https"}))
    c = wait_conditions(standin, "mytool", Accepted=("False", "NoMatchingParent"))
    assert c["ResolvedRefs"]["status"] == "True"


def test_gateway_a_published_job_older_wins_the_host(standin):
    standin.publish_job("myjob", 8080)  # one hour older
    standin.set_quota({"services": "2"})
    standin.create(service())
    standin.http("POST", ROUTES, route())
    c = wait_conditions(standin, "mytool", Accepted=("False", "HostnameConflict"))
    assert c["Accepted"]["message"] == ("hostname mytool.toolforge.org is already routed by the older HTTPRoute "
                                        "tool-mytool/myjob")
    wait_conditions(standin, "myjob", Accepted=("True", "Accepted"), ResolvedRefs=("True", "ResolvedRefs"))
    # the job's route goes away: the webservice's route gets the host
    standin.http("DELETE", f"{ROUTES}/myjob")
    wait_conditions(standin, "mytool", Accepted=("True", "Accepted"))


def test_gateway_same_age_conflict_goes_by_name(standin):
    standin.set_quota({"services": "3"})
    for name in ("b-route", "a-route"):
        standin.create(service(name))
        standin.http("POST", ROUTES, route(name, backend=name))
    with standin.lock:  # the same creationTimestamp for both, whatever second they were made in
        for name in ("a-route", "b-route"):
            r = standin.store.get("HTTPRoute", NS, name)
            r["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
            standin.store.update("HTTPRoute", r)
    wait_conditions(standin, "b-route", Accepted=("False", "HostnameConflict"))
    wait_conditions(standin, "a-route", Accepted=("True", "Accepted"))


@pytest.mark.standin(gateway_mode="none")
def test_gateway_mode_setting_reaches_the_controller(standin):
    assert standin.gateway.mode == "none"
    standin.create(service())
    standin.http("POST", ROUTES, route())
    standin.controller.wait_steps(3)
    assert "parents" not in (standin.get("HTTPRoute", NS, "mytool").get("status") or {})


# -- HTTPRoute serving and validation --------------------------------------------------------------

def test_httproute_served_as_v1_and_v1beta1(standin, kube_client):
    api = kube_client()
    groups = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}
    gw = groups["gateway.networking.k8s.io"]
    assert [v.version for v in gw.versions] == ["v1", "v1beta1"] and gw.preferred_version.version == "v1"
    beta = "/apis/gateway.networking.k8s.io/v1beta1"
    code, _, res = standin.http("GET", beta)
    assert code == 200 and "httproutes" in [r["name"] for r in res["resources"]]
    body = route()
    body["apiVersion"] = "gateway.networking.k8s.io/v1beta1"
    code, _, obj = standin.http("POST", f"{beta}/namespaces/{NS}/httproutes", body)
    assert code == 201 and obj["apiVersion"] == "gateway.networking.k8s.io/v1beta1"
    code, _, obj = standin.http("GET", f"{ROUTES}/mytool")
    assert code == 200 and obj["apiVersion"] == "gateway.networking.k8s.io/v1"
    code, _, lst = standin.http("GET", f"{beta}/namespaces/{NS}/httproutes")
    assert lst["apiVersion"] == "gateway.networking.k8s.io/v1beta1" and len(lst["items"]) == 1
    objs = client.CustomObjectsApi(api).list_namespaced_custom_object("gateway.networking.k8s.io", "v1", NS,
                                                                       "httproutes")
    assert [o["metadata"]["name"] for o in objs["items"]] == ["mytool"]


@pytest.mark.parametrize("spec,field", [
    ({"parentRefs": [{"namespace": "istio-gateway"}], "hostnames": [HOST]}, "spec.parentRefs[0].name"),
    ({"hostnames": [HOST], "rules": [{"backendRefs": [{"port": 80}]}]}, "spec.rules[0].backendRefs[0].name"),
    ({"hostnames": [HOST], "rules": [{"matches": [{"path": {"type": "Glob", "value": "/"}}]}]},
     "spec.rules[0].matches[0].path.type"),
    ({"hostnames": [HOST], "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "x"}}]}]},
     "spec.rules[0].matches[0].path.value"),
    (None, "spec"),
])
def test_httproute_required_fields(standin, spec, field):
    body = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"}}
    if spec is not None:
        body["spec"] = spec
    code, _, status = standin.http("POST", ROUTES, body)
    assert code == 422 and status["reason"] == "Invalid"
    assert [c["field"] for c in status["details"]["causes"]] == [field]


# -- Ingress controllers ---------------------------------------------------------------------------

def ingress(name="mytool", cls=None):
    spec = {"rules": [{"host": HOST, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
        "service": {"name": "mytool", "port": {"number": 8000}}}}]}}]}
    if cls:
        spec["ingressClassName"] = cls
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name}, "spec": spec}


def test_ingress_nothing_serves_by_default(standin):
    assert standin.ingress_controller is None
    standin.create(ingress())
    standin.controller.wait_steps(3)
    assert standin.get("Ingress", NS, "mytool")["status"] == {"loadBalancer": {}}


@pytest.mark.parametrize("mode,cls,served", [
    ("nginx", None, True), ("nginx", "nginx", True), ("nginx", "istio", False),
    ("istio", None, False), ("istio", "istio", True),
])
def test_ingress_controller_modes(standin, mode, cls, served):
    standin.configure(ingress_controller=mode)
    standin.create(ingress(cls=cls))
    if served:
        st = standin.wait_for(lambda: standin.get("Ingress", NS, "mytool")["status"]["loadBalancer"].get("ingress"))
        assert st == [{"ip": "185.15.56.11"}]
    else:
        standin.controller.wait_steps(3)
        assert standin.get("Ingress", NS, "mytool")["status"] == {"loadBalancer": {}}


# -- jobs and quotas -----------------------------------------------------------------------------------

def test_published_job_objects_and_labels(standin):
    made = standin.publish_job("myjob", 8080)
    assert set(made) == {"Deployment", "Service", "HTTPRoute"}
    for kind, obj in made.items():
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "toolforge-jobs-framework"
        assert labels["app.kubernetes.io/created-by"] == "mytool" and labels["app.kubernetes.io/name"] == "myjob"
        assert obj["metadata"]["name"] == "myjob" and obj["metadata"]["namespace"] == NS
    r = made["HTTPRoute"]["spec"]
    assert r == {"parentRefs": [{"name": "toolforge", "namespace": "istio-gateway"}], "hostnames": [HOST],
                 "rules": [{"backendRefs": [{"name": "myjob", "port": 8080}]}]}
    assert made["HTTPRoute"]["metadata"]["creationTimestamp"] < standin.get("Namespace", None, NS)["metadata"][
        "creationTimestamp"]


def test_published_job_service_counts_against_the_services_quota(standin, kube_client):
    standin.publish_job("myjob", 8080, deployment=False)
    core = client.CoreV1Api(kube_client())
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service(NS, service())
    assert e.value.status == 403
    assert json.loads(e.value.body)["message"] == (
        'services "mytool" is forbidden: exceeded quota: tool-mytool, requested: services=1, used: services=1, '
        'limited: services=1')


@pytest.mark.standin("toolforge")
def test_deployment_count_quota(standin, kube_client):
    apps = client.AppsV1Api(kube_client())

    def dep(name):
        return {"metadata": {"name": name}, "spec": {"replicas": 0, "selector": {"matchLabels": {"n": name}},
                                                      "template": {"metadata": {"labels": {"n": name}},
                                                                   "spec": secure_pod_spec(standin.tool_uids["mytool"])}}}
    for name in ("d1", "d2", "d3"):
        apps.create_namespaced_deployment(NS, dep(name))
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment(NS, dep("d4"))
    assert e.value.status == 403 and json.loads(e.value.body)["reason"] == "Forbidden"
    assert json.loads(e.value.body)["message"] == (
        'deployments.apps "d4" is forbidden: exceeded quota: tool-mytool, requested: count/deployments.apps=1, '
        'used: count/deployments.apps=3, limited: count/deployments.apps=3')
    used = standin.wait_for(lambda: (standin.get("ResourceQuota", NS, NS).get("status") or {}).get("used", {})
                            .get("count/deployments.apps") == "3")
    assert used


# -- the preset ------------------------------------------------------------------------------------

def test_toolforge_fixture_is_todays_cluster(toolforge):
    assert (toolforge.rbac, toolforge.pod_policy, toolforge.gateway.mode, toolforge.ingress_controller) == \
        ("tools-user", True, "accept", None)
    hard = toolforge.get("ResourceQuota", NS, NS)["spec"]["hard"]
    assert hard == presets.TOOLFORGE_QUOTA


def test_toolforge_with_job_a_default_route_loses_the_host(toolforge_with_job, kube_client):
    s = toolforge_with_job
    wait_conditions(s, "myjob", Accepted=("True", "Accepted"), ResolvedRefs=("True", "ResolvedRefs"))
    s.wait_for(lambda: [p for p in s.pods(**{"app.kubernetes.io/name": "myjob"})
                        if (p.get("status") or {}).get("phase") == "Running"])
    core = client.CoreV1Api(kube_client())
    with pytest.raises(ApiException) as e:  # services quota 1, taken by the job
        core.create_namespaced_service(NS, service())
    assert e.value.status == 403 and "exceeded quota" in json.loads(e.value.body)["message"]
    code, _, _ = s.http("POST", ROUTES, route())  # as the tool: HTTPRoute verbs granted
    assert code == 201
    wait_conditions(s, "mytool", Accepted=("False", "HostnameConflict"), ResolvedRefs=("False", "BackendNotFound"))


@pytest.mark.standin("toolforge", rbac="tools-user-no-httproute", published_job={"name": "web", "port": 9000})
def test_marker_combines_preset_settings_and_job(standin):
    assert standin.rbac == "tools-user-no-httproute" and standin.pod_policy is True
    assert standin.get("HTTPRoute", NS, "web")["spec"]["rules"][0]["backendRefs"] == [{"name": "web", "port": 9000}]
    assert standin.http("GET", ROUTES)[0] == 403


def test_configure_refuses_unknown_names(standin):
    with pytest.raises(TypeError, match="unknown stand-in setting 'rbca'"):
        standin.configure(rbca="tools-user")
    with pytest.raises(TypeError, match="unknown stand-in preset"):
        standin.configure("toolforge-2030")
