"""The official kubernetes client against the stand-in: CRUD, selectors, watches, the
four patch types, cascading deletion, logs, authentication and authorisation."""

from __future__ import annotations

import json
import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

NS = "tool-mytool"
IMAGE = "docker-registry.tools.wmflabs.org/toolforge-python311-sssd-web:latest"
LABELS = {"toolforge": "tool", "name": "mytool", "app.kubernetes.io/component": "web",
          "app.kubernetes.io/managed-by": "webservice"}


def deployment(name="mytool", image=IMAGE, replicas=1, env=None, **container):
    c = {"name": "webservice", "image": image,
         "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
         "resources": {"limits": {"cpu": "500m", "memory": "512Mi"},
                       "requests": {"cpu": "125m", "memory": "256Mi"}}}
    if env is not None:
        c["env"] = env
    c.update(container)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": dict(LABELS)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(LABELS)},
                     "template": {"metadata": {"labels": dict(LABELS)}, "spec": {"containers": [c]}}}}


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


@pytest.fixture
def api(kube_client):
    return kube_client()


@pytest.fixture
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api):
    return client.AppsV1Api(api)


def test_version_and_discovery(api, standin):
    info = client.VersionApi(api).get_code()
    assert info.git_version.startswith("v1.29.")
    groups = client.ApisApi(api).get_api_versions()
    names = {g.name for g in groups.groups}
    assert {"apps", "networking.k8s.io", "gateway.networking.k8s.io"} <= names
    res = client.CoreV1Api(api).get_api_resources()
    by_name = {r.name: r for r in res.resources}
    assert by_name["pods"].namespaced and "watch" in by_name["pods"].verbs
    assert "pods/log" in by_name and "pods/attach" in by_name
    assert standin.requests[0].path == "/version/"


def test_configmap_crud_and_resource_versions(core, standin):
    cm = core.create_namespaced_config_map(NS, {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    assert cm.metadata.namespace == NS and cm.metadata.uid and cm.metadata.creation_timestamp
    rv1 = int(cm.metadata.resource_version)
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(NS, {"metadata": {"name": "cfg"}, "data": {}})
    assert e.value.status == 409 and status_of(e.value)["reason"] == "AlreadyExists"
    assert status_of(e.value)["message"] == 'configmaps "cfg" already exists'
    cm.data["b"] = "2"
    cm2 = core.replace_namespaced_config_map("cfg", NS, cm)
    assert int(cm2.metadata.resource_version) > rv1
    with pytest.raises(ApiException) as e:  # stale resourceVersion
        core.replace_namespaced_config_map("cfg", NS, cm)
    assert e.value.status == 409 and status_of(e.value)["reason"] == "Conflict"
    assert core.read_namespaced_config_map("cfg", NS).data == {"a": "1", "b": "2"}
    lst = core.list_namespaced_config_map(NS)
    assert [i.metadata.name for i in lst.items] == ["cfg"]
    assert int(lst.metadata.resource_version) >= int(cm2.metadata.resource_version)
    core.delete_namespaced_config_map("cfg", NS)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("cfg", NS)
    assert e.value.status == 404 and status_of(e.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'configmaps "cfg" not found', "reason": "NotFound",
        "details": {"name": "cfg", "kind": "configmaps"}, "code": 404}
    assert [r.method for r in standin.requests_for(path="/configmaps")][:2] == ["POST", "POST"]


def test_label_and_field_selectors(core):
    for name, labels in (("a", {"app": "x", "tier": "web"}), ("b", {"app": "y"}), ("c", {"app": "x"})):
        core.create_namespaced_config_map(NS, {"metadata": {"name": name, "labels": labels}})

    def names(**kw):
        return [i.metadata.name for i in core.list_namespaced_config_map(NS, **kw).items]
    assert names(label_selector="app=x") == ["a", "c"]
    assert names(label_selector="app==x,tier") == ["a"]
    assert names(label_selector="app!=x") == ["b"]
    assert names(label_selector="app in (y, z)") == ["b"]
    assert names(label_selector="app notin (y),!tier") == ["c"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b", label_selector="app") == ["a", "c"]
    assert names(field_selector="metadata.namespace=tool-mytool", limit=2)[:2] == ["a", "b"]
    with pytest.raises(ApiException) as e:
        names(field_selector="data.x=1")
    assert e.value.status == 400 and "field label not supported" in status_of(e.value)["message"]


def test_list_pagination(core):
    for i in range(5):
        core.create_namespaced_config_map(NS, {"metadata": {"name": f"cm{i}"}})
    first = core.list_namespaced_config_map(NS, limit=2)
    assert [i.metadata.name for i in first.items] == ["cm0", "cm1"]
    second = core.list_namespaced_config_map(NS, limit=2, _continue=first.metadata._continue)
    assert [i.metadata.name for i in second.items] == ["cm2", "cm3"]


def test_watch_events_and_timeout(core, standin):
    core.create_namespaced_config_map(NS, {"metadata": {"name": "pre", "labels": {"w": "1"}}})
    seen = []

    def writer():
        core.create_namespaced_config_map(NS, {"metadata": {"name": "new", "labels": {"w": "1"}}})
        core.patch_namespaced_config_map("new", NS, {"data": {"k": "v"}})
        core.patch_namespaced_config_map("pre", NS, {"metadata": {"labels": {"w": "2"}}})  # leaves selector
        core.delete_namespaced_config_map("new", NS)
    t = threading.Thread(target=writer)
    start = time.monotonic()
    for ev in watch.Watch().stream(core.list_namespaced_config_map, NS, label_selector="w=1",
                                   timeout_seconds=3, _request_timeout=30):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 1:
            t.start()  # the watch is there (its first event came): now the changes
    t.join()
    assert time.monotonic() - start >= 2.9  # the server kept the watch open for timeoutSeconds
    assert seen == [("ADDED", "pre"), ("ADDED", "new"), ("MODIFIED", "new"), ("DELETED", "pre"),
                    ("DELETED", "new")]
    req = standin.requests_for("GET", "/configmaps")[0]
    assert req.query["watch"] in ("True", "true") and req.query["timeoutSeconds"] == "3"


def test_watch_from_resource_version_and_expired(core, standin):
    cm = core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    core.patch_namespaced_config_map("a", NS, {"data": {"x": "1"}})
    events = list(watch.Watch().stream(core.list_namespaced_config_map, NS,
                                       resource_version=cm.metadata.resource_version,
                                       timeout_seconds=1, _request_timeout=10))
    assert [(e["type"], e["object"].data) for e in events] == [("MODIFIED", {"x": "1"})]
    standin.compact()
    with pytest.raises(ApiException) as e:
        list(watch.Watch().stream(core.list_namespaced_config_map, NS,
                                  resource_version=cm.metadata.resource_version,
                                  timeout_seconds=1, _request_timeout=10))
    assert e.value.status == 410


def test_strategic_merge_patch_keeps_env(apps):
    apps.create_namespaced_deployment(NS, deployment(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]))
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "webservice", "env": [{"name": "B", "value": "changed"}]}]}}}}
    d = apps.patch_namespaced_deployment("mytool", NS, patch)
    c = d.spec.template.spec.containers[0]
    assert [(e.name, e.value) for e in c.env] == [("A", "1"), ("B", "changed")]
    assert c.image == IMAGE and c.ports[0].container_port == 8000
    d = apps.patch_namespaced_deployment("mytool", NS, {"spec": {"template": {"spec": {"containers": [
        {"name": "webservice", "env": [{"name": "A", "$patch": "delete"}]}]}}}})
    assert [e.name for e in d.spec.template.spec.containers[0].env] == ["B"]
    assert d.metadata.generation == 3


def test_merge_and_json_patch(apps, standin):
    apps.create_namespaced_deployment(NS, deployment(env=[{"name": "A", "value": "1"}]))
    if _supports_content_type():
        d = apps.patch_namespaced_deployment("mytool", NS, {"metadata": {"annotations": {"x": "y"}}},
                                             _content_type="application/merge-patch+json")
        assert d.metadata.annotations == {"x": "y"}
        d = apps.patch_namespaced_deployment("mytool", NS, [{"op": "replace", "path": "/spec/replicas", "value": 2}],
                                             _content_type="application/json-patch+json")
        assert d.spec.replicas == 2
        types = [r.content_type for r in standin.requests_for("PATCH")]
        assert types == ["application/merge-patch+json", "application/json-patch+json"]
    else:
        # kubernetes 22: the client picks the content type from the body (a list: JSON patch)
        d = apps.patch_namespaced_deployment("mytool", NS, [{"op": "replace", "path": "/spec/replicas", "value": 2}])
        assert d.spec.replicas == 2
        assert standin.requests_for("PATCH")[0].content_type == "application/json-patch+json"


def _supports_content_type() -> bool:
    import kubernetes
    return int(kubernetes.__version__.split(".")[0]) >= 30


def _apply(apps, body, manager="webservice", force=False):
    kw = {"field_manager": manager}
    if force:
        kw["force"] = True
    if _supports_content_type():
        return apps.patch_namespaced_deployment(body["metadata"]["name"], NS, body,
                                                _content_type="application/apply-patch+yaml", **kw)
    api = apps.api_client
    query = [("fieldManager", manager)] + ([("force", "true")] if force else [])
    return api.call_api(f"/apis/apps/v1/namespaces/{NS}/deployments/{body['metadata']['name']}", "PATCH",
                        query_params=query, header_params={"Content-Type": "application/apply-patch+yaml",
                                                           "Accept": "application/json"},
                        # kubernetes 22 only sends str bodies for non-JSON content types
                        body=json.dumps(body), response_type="V1Deployment", auth_settings=["BearerToken"],
                        _return_http_data_only=True)


def test_server_side_apply_creates_merges_and_prunes(apps, standin):
    d = _apply(apps, deployment(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]))
    assert d.metadata.name == "mytool" and d.spec.replicas == 1
    assert standin.requests_for("PATCH")[0].query["fieldManager"] == "webservice"
    managers = [(m.manager, m.operation) for m in d.metadata.managed_fields]
    assert managers == [("webservice", "Apply")]
    # another manager changes an annotation; our next apply keeps it and drops env B
    apps.patch_namespaced_deployment("mytool", NS, {"metadata": {"annotations": {"other": "yes"}}})
    d = _apply(apps, deployment(env=[{"name": "A", "value": "3"}]))
    assert [(e.name, e.value) for e in d.spec.template.spec.containers[0].env] == [("A", "3")]
    assert d.metadata.annotations == {"other": "yes"}
    assert d.spec.template.spec.containers[0].termination_message_path == "/dev/termination-log"


def test_server_side_apply_conflicts_and_force(apps):
    _apply(apps, deployment())
    apps.patch_namespaced_deployment("mytool", NS, {"spec": {"replicas": 3}})
    with pytest.raises(ApiException) as e:
        _apply(apps, deployment(replicas=1))
    body = status_of(e.value)
    assert e.value.status == 409 and body["reason"] == "Conflict"
    assert body["message"].startswith("Apply failed with 1 conflict: conflict with ")
    assert body["message"].endswith("using apps/v1: .spec.replicas")
    d = _apply(apps, deployment(replicas=1), force=True)
    assert d.spec.replicas == 1


def test_server_side_apply_requires_field_manager(standin):
    code, _, body = standin.http("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/mytool", deployment(),
                                 content_type="application/apply-patch+yaml")
    assert code == 400 and body["reason"] == "BadRequest" and "fieldManager is required" in body["message"]
    assert standin.get("Deployment", NS, "mytool") is None
    code, _, body = standin.http("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/mytool?fieldManager=t",
                                 "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: mytool}\n"
                                 "spec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, "
                                 "spec: {containers: [{name: c, image: i}]}}}\n",
                                 content_type="application/apply-patch+yaml")
    assert code == 201 and body["spec"]["replicas"] == 1


def test_cascading_delete(apps, core, standin):
    apps.create_namespaced_deployment(NS, deployment(replicas=2))
    standin.wait_for(lambda: [p["status"].get("phase") for p in standin.pods(name="mytool")] == ["Running"] * 2)
    rs = standin.objects("ReplicaSet", NS)
    assert len(rs) == 1 and rs[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    pod = standin.pods()[0]
    assert pod["metadata"]["ownerReferences"][0]["uid"] == rs[0]["metadata"]["uid"]
    apps.delete_namespaced_deployment("mytool", NS, propagation_policy="Foreground")
    standin.wait_for(lambda: not standin.objects("ReplicaSet", NS) and not standin.pods()
                     and standin.get("Deployment", NS, "mytool") is None)
    kinds = {e["involvedObject"]["kind"] for e in standin.events(reason="Killing")}
    assert kinds == {"Pod"}


def test_delete_background_and_deletecollection(apps, core, standin):
    apps.create_namespaced_deployment(NS, deployment())
    standin.wait_for(lambda: standin.pods(name="mytool"))
    status = apps.delete_namespaced_deployment("mytool", NS)
    if not isinstance(status, dict):  # kubernetes 22 gives a V1Status, 37 a dict
        status = status.to_dict()
    assert status["status"] == "Success" and status["details"]["name"] == "mytool"
    standin.wait_for(lambda: not standin.pods() and not standin.objects("ReplicaSet", NS))
    for n in ("a", "b"):
        core.create_namespaced_config_map(NS, {"metadata": {"name": n, "labels": {"del": "me"}}})
    core.create_namespaced_config_map(NS, {"metadata": {"name": "keep"}})
    core.delete_collection_namespaced_config_map(NS, label_selector="del=me")
    assert [c["metadata"]["name"] for c in standin.objects("ConfigMap", NS)] == ["keep"]


def test_pod_delete_is_graceful(core, standin):
    standin.time_scale = 0.05
    pod = core.create_namespaced_pod(NS, {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": IMAGE}]}})
    assert pod.spec.containers[0].resources.limits == {"cpu": "500m", "memory": "512Mi"}  # LimitRange default
    standin.wait_for(lambda: (standin.get("Pod", NS, "p").get("status") or {}).get("phase") == "Running")
    deleted = core.delete_namespaced_pod("p", NS)
    meta = deleted["metadata"] if isinstance(deleted, dict) else deleted.metadata.to_dict()
    assert meta.get("deletionTimestamp") or meta.get("deletion_timestamp")
    assert standin.get("Pod", NS, "p")["metadata"]["deletionGracePeriodSeconds"] == 30
    standin.wait_for(lambda: standin.get("Pod", NS, "p") is None)


def test_logs_options(core, apps, standin):
    apps.create_namespaced_deployment(NS, deployment())
    pod = standin.wait_for(lambda: [p for p in standin.pods() if p["status"].get("phase") == "Running"])[0]
    name = pod["metadata"]["name"]
    for i in range(5):
        standin.append_log(NS, name, f"line {i}")
    text = core.read_namespaced_pod_log(name, NS)
    assert text.splitlines()[-5:] == [f"line {i}" for i in range(5)]
    assert core.read_namespaced_pod_log(name, NS, tail_lines=2) == "line 3\nline 4\n"
    stamped = core.read_namespaced_pod_log(name, NS, tail_lines=1, timestamps=True)
    stamp, rest = stamped.rstrip("\n").split(" ", 1)
    assert rest == "line 4" and stamp.endswith("Z") and stamp[10] == "T" and "." in stamp
    assert core.read_namespaced_pod_log(name, NS, since_seconds=3600).endswith("line 4\n")
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log(name, NS, previous=True)
    assert e.value.status == 400
    assert status_of(e.value)["message"] == f'previous terminated container "webservice" in pod "{name}" not found'
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log("nope", NS)
    assert e.value.status == 404


def test_log_follow_streams_appended_lines_and_ends_with_pod(core, standin):
    standin.time_scale = 0.02
    core.create_namespaced_pod(NS, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": IMAGE}]}})
    standin.wait_for(lambda: standin.get("Pod", NS, "p")["status"].get("phase") == "Running")
    resp = core.read_namespaced_pod_log("p", NS, follow=True, _preload_content=False, _request_timeout=10)
    got = []

    def appender():
        for i in range(3):
            time.sleep(0.05)
            standin.append_log(NS, "p", f"live {i}")
        time.sleep(0.1)
        core.delete_namespaced_pod("p", NS)
    t = threading.Thread(target=appender)
    t.start()
    for chunk in resp.stream(1024):
        got.append(chunk.decode())
    t.join()
    lines = "".join(got).splitlines()
    assert lines[-3:] == ["live 0", "live 1", "live 2"]
    assert standin.get("Pod", NS, "p") is None


def test_services_ingress_and_quota_status(core, api, standin):
    core.create_namespaced_service(NS, {"metadata": {"name": "mytool", "labels": LABELS}, "spec": {
        "selector": {"name": "mytool"}, "ports": [{"name": "http", "port": 8000, "targetPort": 8000}]}})
    svc = core.read_namespaced_service("mytool", NS)
    assert svc.spec.cluster_ip and svc.spec.type == "ClusterIP" and svc.spec.ports[0].protocol == "TCP"
    net = client.NetworkingV1Api(api)
    ing = net.create_namespaced_ingress(NS, {"metadata": {"name": "mytool-subdomain", "labels": LABELS}, "spec": {
        "rules": [{"host": "mytool.toolforge.org", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                   "backend": {"service": {"name": "mytool", "port": {"number": 8000}}}}]}}]}})
    assert ing.spec.rules[0].host == "mytool.toolforge.org"
    q = standin.wait_for(lambda: (standin.get("ResourceQuota", NS, NS).get("status") or {}).get("used", {})
                         .get("services") == "1" and standin.get("ResourceQuota", NS, NS))
    assert q["status"]["hard"]["pods"] == "4"


def test_httproute_crud(api, standin):
    # no Gateway controller: a status write between the get and the replace below would make
    # the replace a 409 conflict instead of the admission denial this test is about
    standin.gateway.mode = "none"
    custom = client.CustomObjectsApi(api)
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "mytool", "labels": LABELS},
             "spec": {"parentRefs": [{"name": "toolforge", "namespace": "gateway"}],
                      "hostnames": ["mytool.toolforge.org"],
                      "rules": [{"backendRefs": [{"name": "mytool", "port": 8000}]}]}}
    created = custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", NS, "httproutes", route)
    assert created["metadata"]["uid"]
    listed = custom.list_namespaced_custom_object("gateway.networking.k8s.io", "v1", NS, "httproutes")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["mytool"]
    route["spec"]["hostnames"] = ["other.toolforge.org"]
    with pytest.raises(ApiException) as e:
        current = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", NS, "httproutes", "mytool")
        custom.replace_namespaced_custom_object("gateway.networking.k8s.io", "v1", NS, "httproutes", "mytool",
                                                {**route, "metadata": current["metadata"]})
    assert e.value.status == 400 and "denied the request" in status_of(e.value)["message"]
    custom.delete_namespaced_custom_object("gateway.networking.k8s.io", "v1", NS, "httproutes", "mytool")
    assert standin.objects("HTTPRoute", NS) == []


# -- authentication and authorisation --------------------------------------------------------
def test_no_client_certificate_is_401(kube_client, standin):
    core = client.CoreV1Api(kube_client(with_cert=False))
    with pytest.raises(ApiException) as e:
        core.list_namespaced_pod(NS)
    assert e.value.status == 401 and status_of(e.value)["reason"] == "Unauthorized"
    assert standin.requests[-1].user is None


def test_certificate_from_another_ca_is_401(kube_client):
    core = client.CoreV1Api(kube_client(foreign=True))
    with pytest.raises(ApiException) as e:
        core.list_namespaced_pod(NS)
    assert e.value.status == 401


def test_foreign_namespace_is_403(core, standin):
    with pytest.raises(ApiException) as e:
        core.list_namespaced_pod("tool-othertool")
    assert e.value.status == 403
    assert status_of(e.value)["message"] == ('pods is forbidden: User "mytool" cannot list resource "pods" in '
                                             'API group "" in the namespace "tool-othertool"')
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("tool-othertool", {"metadata": {"name": "x"}})
    assert e.value.status == 403 and status_of(e.value)["reason"] == "Forbidden"
    with pytest.raises(ApiException) as e:
        core.list_pod_for_all_namespaces()
    assert e.value.status == 403 and "at the cluster scope" in status_of(e.value)["message"]
    assert standin.objects("ConfigMap", "tool-othertool") == []


def test_image_config_is_readable_and_nothing_else_in_tf_public(core):
    import yaml
    cm = core.read_namespaced_config_map("image-config", "tf-public")
    types = yaml.safe_load(cm.data["images-v1.yaml"])
    assert types["python3.11"]["variants"]["webservice"]["image"] == \
        "docker-registry.tools.wmflabs.org/toolforge-python311-sssd-web"
    assert types["python3.11"]["variants"]["webservice"]["extra"]["wstype"] == "python"
    assert types["php7.4"]["state"] == "deprecated"
    assert "webservice" not in types["bookworm"]["variants"]
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map("tf-public")
    assert e.value.status == 403


def test_own_namespace_readable(core):
    assert core.read_namespace(NS).status.phase == "Active"
    with pytest.raises(ApiException) as e:
        core.read_namespace("tool-othertool")
    assert e.value.status == 403


def test_fault_injection(core, standin):
    standin.add_fault(status=500, method="GET", path="/configmaps", nth=2)
    core.list_namespaced_config_map(NS)
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map(NS)
    assert e.value.status == 500 and status_of(e.value)["reason"] == "InternalError"
    core.list_namespaced_config_map(NS)
    standin.add_fault(action="delay", delay=0.3, path="/configmaps")
    t = time.monotonic()
    core.list_namespaced_config_map(NS)
    assert time.monotonic() - t >= 0.3
    assert [r.status for r in standin.requests_for(path="/configmaps")] == [200, 500, 200, 200]
    standin.add_fault(action="drop", path="/pods", times=10)
    with pytest.raises(Exception):
        core.list_namespaced_pod(NS, _request_timeout=5)
    assert all(r.status == -1 for r in standin.requests_for(path="/pods"))


def test_fault_503_with_retry_after_is_retried_by_urllib3(core, standin):
    # urllib3 (under the kubernetes client) honours Retry-After on 503 for GETs by itself
    fault = standin.add_fault(status=503, method="GET", path="/configmaps", retry_after=0)
    core.list_namespaced_config_map(NS)
    assert fault.fired == 1
    assert [r.status for r in standin.requests_for(path="/configmaps")] == [503, 200]


def test_exec_through_the_client_stream_module(core, standin):
    from kubernetes.stream import stream
    core.create_namespaced_pod(NS, {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": IMAGE, "env": [{"name": "WHO", "value": "world"}]}]}})
    standin.wait_for(lambda: standin.get("Pod", NS, "p")["status"].get("phase") == "Running")
    out = stream(core.connect_get_namespaced_pod_exec, "p", NS, command=["sh", "-c", "echo hello $WHO"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "hello world\n"
    resp = stream(core.connect_get_namespaced_pod_exec, "p", NS, command=["sh", "-c", "read l; echo got:$l; exit 4"],
                  stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    resp.write_stdin("piped\n")
    resp.run_forever(timeout=10)
    assert "got:piped" in resp.read_stdout()
    assert resp.returncode == 4  # from the NonZeroExitCode Status on channel 3
    resp.close()
    req = standin.requests_for("GET", "/pods/p/exec")[0]
    assert req.status == 101 and req.query["command"] == ["sh", "-c", "echo hello $WHO"]


def test_scale_subresource(apps, standin):
    apps.create_namespaced_deployment(NS, deployment())
    scale = apps.read_namespaced_deployment_scale("mytool", NS)
    assert scale.spec.replicas == 1 and "name=mytool" in scale.status.selector
    apps.patch_namespaced_deployment_scale("mytool", NS, {"spec": {"replicas": 2}})
    assert standin.get("Deployment", NS, "mytool")["spec"]["replicas"] == 2
    standin.wait_for(lambda: len(standin.pods(name="mytool")) == 2)
    apps.patch_namespaced_deployment_scale("mytool", NS, {"spec": {"replicas": 0}})
    standin.wait_for(lambda: not standin.pods(name="mytool"))
    assert standin.get("Deployment", NS, "mytool")["metadata"]["generation"] == 3


def test_watch_bookmarks(standin):
    standin.bookmark_interval = 0.2
    code, _, raw = standin.http("GET", f"/api/v1/namespaces/{NS}/configmaps?watch=1&allowWatchBookmarks=true"
                                       "&timeoutSeconds=1")
    events = [json.loads(line) for line in raw.decode().splitlines()]
    assert code == 200 and len(events) >= 2 and {e["type"] for e in events} == {"BOOKMARK"}
    assert events[-1]["object"] == {"kind": "ConfigMap", "apiVersion": "v1",
                                    "metadata": {"resourceVersion": str(standin.store.rv)}}
    code, _, raw = standin.http("GET", f"/api/v1/namespaces/{NS}/configmaps?watch=1&timeoutSeconds=1")
    assert code == 200 and raw == b""
