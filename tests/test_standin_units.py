"""Unit tests of the stand-in's pure parts: selectors, patches, quantities, WebSocket
framing, certificates, logs formatting."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.standin import certs, logs, patch, quantity, selectors, websocket


@pytest.mark.parametrize("sel,labels,expected", [
    ("a=b", {"a": "b"}, True),
    ("a==b", {"a": "c"}, False),
    ("a!=b", {}, True),
    ("a in (x, y)", {"a": "y"}, True),
    ("a notin (x)", {"a": "x"}, False),
    ("a", {"a": ""}, True),
    ("!a", {"a": ""}, False),
    ("app.kubernetes.io/component=web,name", {"app.kubernetes.io/component": "web", "name": "t"}, True),
    ("", {"x": "y"}, True),
])
def test_label_selector(sel, labels, expected):
    assert selectors.parse_label_selector(sel)(labels) is expected


def test_label_selector_syntax_error():
    with pytest.raises(selectors.SelectorError, match="unable to parse requirement"):
        selectors.parse_label_selector("a=(b")


def test_field_selector():
    pod = {"metadata": {"name": "p", "namespace": "n"}, "status": {"phase": "Running"}}
    assert selectors.parse_field_selector("status.phase=Running,metadata.name=p", "Pod")(pod)
    assert not selectors.parse_field_selector("status.phase!=Running", "Pod")(pod)
    with pytest.raises(selectors.SelectorError, match="field label not supported: status.phase"):
        selectors.parse_field_selector("status.phase=x", "ConfigMap")


def test_json_patch_operations():
    doc = {"a": [1, 2], "b": {"c": 1}}
    out = patch.json_patch(doc, [{"op": "add", "path": "/a/-", "value": 3}, {"op": "remove", "path": "/b/c"},
                                 {"op": "copy", "from": "/a/0", "path": "/d"}, {"op": "test", "path": "/d", "value": 1},
                                 {"op": "replace", "path": "/a/0", "value": 0}, {"op": "move", "from": "/d", "path": "/e"}])
    assert out == {"a": [0, 2, 3], "b": {}, "e": 1}
    assert doc == {"a": [1, 2], "b": {"c": 1}}
    with pytest.raises(patch.PatchError):
        patch.json_patch(doc, [{"op": "test", "path": "/b/c", "value": 2}])


def test_merge_patch_rfc7386():
    assert patch.merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None, "d": 3}, "l": [2]}) == \
        {"a": {"c": 2, "d": 3}, "l": [2]}


def test_strategic_merge_lists_by_key():
    target = {"spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}],
                                       "ports": [{"containerPort": 80, "name": "http"}], "args": ["1", "2"]}],
                       "finalizers": ["f1"]}}
    p = {"spec": {"containers": [{"name": "a", "env": [{"name": "F", "value": "2"}],
                                  "ports": [{"containerPort": 80, "protocol": "TCP"}], "args": ["3"]},
                                 {"name": "b", "image": "y"}],
                  "finalizers": ["f2"]}}
    out = patch.strategic_merge(target, p)
    a, b = out["spec"]["containers"]
    assert a["env"] == [{"name": "E", "value": "1"}, {"name": "F", "value": "2"}]
    assert a["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}]
    assert a["args"] == ["3"] and a["image"] == "x" and b == {"name": "b", "image": "y"}
    assert out["spec"]["finalizers"] == ["f1", "f2"]


def test_strategic_merge_directives():
    target = {"m": {"a": 1, "b": 2}, "containers": [{"name": "a"}, {"name": "b"}], "l": [1, 2, 3]}
    out = patch.strategic_merge(target, {"m": {"$patch": "replace", "c": 3},
                                         "containers": [{"name": "a", "$patch": "delete"}],
                                         "$deleteFromPrimitiveList/l": [2],
                                         "$setElementOrder/containers": [{"name": "b"}]})
    assert out == {"m": {"c": 3}, "containers": [{"name": "b"}], "l": [1, 3]}


def test_server_side_apply_ownership():
    cfg1 = {"metadata": {"name": "x", "labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}}
    obj, owners = patch.server_side_apply({"metadata": {"name": "x"}}, cfg1, "me", {}, False)
    assert obj["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert ("f:spec", "f:replicas") in owners[("me", "Apply")]
    # someone else takes replicas with an update
    obj2 = dict(obj, spec={"replicas": 5})
    owners = patch.update_owners(obj, obj2, "kubectl-scale", owners)
    assert ("f:spec", "f:replicas") in owners[("kubectl-scale", "Update")]
    with pytest.raises(patch.ApplyConflict) as e:
        patch.server_side_apply(obj2, cfg1, "me", owners, False)
    assert e.value.conflicts == [("kubectl-scale", ("f:spec", "f:replicas"))]
    # applying without label b prunes it; forcing takes replicas back
    cfg2 = {"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"replicas": 1}}
    obj3, owners3 = patch.server_side_apply(obj2, cfg2, "me", owners, True)
    assert obj3["metadata"]["labels"] == {"a": "1"} and obj3["spec"]["replicas"] == 1
    assert ("kubectl-scale", "Update") not in owners3
    assert patch.fields_v1(owners3[("me", "Apply")])["f:metadata"]["f:labels"] == {"f:a": {}}


def test_fields_v1_keys_list_items():
    paths = patch.field_paths({"spec": {"containers": [{"name": "c", "image": "i"}]}})
    tree = patch.fields_v1(paths)
    item = tree["f:spec"]["f:containers"]['k:{"name":"c"}']
    assert item == {".": {}, "f:name": {}, "f:image": {}}


@pytest.mark.parametrize("text,value", [("500m", Decimal("0.5")), ("0.5", Decimal("0.5")), ("1.5Gi", Decimal(1.5 * 2**30)),
                                        ("2", Decimal(2)), ("1e3", Decimal(1000)), ("128974848", Decimal(128974848)),
                                        ("100Mi", Decimal(100 * 2**20)), (1, Decimal(1))])
def test_quantity_parse(text, value):
    assert quantity.parse(text) == value


@pytest.mark.parametrize("text", ["1.5 Gi", "abc", "1GB", "", "Mi"])
def test_quantity_parse_rejects(text):
    with pytest.raises(ValueError, match="quantities must match the regular expression"):
        quantity.parse(text)


def test_quantity_format():
    assert quantity.fmt("limits.cpu", Decimal("0.5")) == "500m"
    assert quantity.fmt("limits.cpu", Decimal(2)) == "2"
    assert quantity.fmt("requests.memory", Decimal(768 * 2**20)) == "768Mi"
    assert quantity.fmt("pods", Decimal(4)) == "4"


def test_websocket_frames_roundtrip():
    payload = b"\x01hello" * 50
    raw = websocket.frame(payload)
    frames, rest = websocket.parse_frames(raw + b"\x82")
    assert frames == [(2, payload)] and rest == b"\x82"
    # a masked client frame
    mask = b"\x01\x02\x03\x04"
    data = b"\x00ls\n"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    frames, rest = websocket.parse_frames(bytes([0x82, 0x80 | len(data)]) + mask + masked)
    assert frames == [(2, data)] and rest == b""
    big = websocket.frame(b"x" * 70000)
    assert websocket.parse_frames(big)[0] == [(2, b"x" * 70000)]


def test_websocket_accept_key_and_protocol():
    assert websocket.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert websocket.choose_protocol("v4.channel.k8s.io, v5.channel.k8s.io") == "v5.channel.k8s.io"
    assert websocket.choose_protocol("channel.k8s.io") is None


def test_certificates(tmp_path):
    pki = certs.PKI(str(tmp_path))
    cert, _ = pki.client_pem("mytool")
    from cryptography import x509
    der = x509.load_pem_x509_certificate(cert).public_bytes(__import__(
        "cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER)
    assert pki.ca.signed(der) and not pki.foreign_ca.signed(der)
    assert certs.common_name(der) == "mytool"
    foreign, _ = pki.client_pem("mytool", foreign=True)
    fder = x509.load_pem_x509_certificate(foreign).public_bytes(__import__(
        "cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER)
    assert not pki.ca.signed(fder)


def test_rfc3339nano():
    assert logs.rfc3339nano(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert logs.rfc3339nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert logs.rfc3339nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"


def test_log_render_options():
    lines = [(1_700_000_000_000_000_000 + i, f"l{i}") for i in range(4)]
    assert logs.LogStore.render(lines, {"tailLines": "2"}) == b"l2\nl3\n"
    assert logs.LogStore.render(lines, {"limitBytes": "5"}) == b"l0\nl1"
    assert logs.LogStore.render(lines, {"tailLines": "0"}) == b""
    assert json.dumps(logs.LogStore.render(lines[:1], {"timestamps": "true"}).decode()) == \
        json.dumps("2023-11-14T22:13:20Z l0\n")


def test_log_container_selection_follows_the_kubelet():
    from tests.standin.errors import ApiError
    from tests.standin.pods import _log_container_id as pick
    running = {"state": {"running": {}}, "containerID": "c3", "lastState": {"terminated": {"containerID": "c2"}}}
    assert pick(running, "w", "p", False) == "c3" and pick(running, "w", "p", True) == "c2"
    backoff = {"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"containerID": "c2"}}}
    assert pick(backoff, "w", "p", False) == "c2" and pick(backoff, "w", "p", True) == "c2"
    first_crash = {"state": {"terminated": {"containerID": "c1"}}, "lastState": {}}
    assert pick(first_crash, "w", "p", False) == "c1"
    with pytest.raises(ApiError, match='previous terminated container "w" in pod "p" not found'):
        pick(first_crash, "w", "p", True)
    for reason, text in (("ErrImagePull", "image can't be pulled"),
                         ("ImagePullBackOff", "trying and failing to pull image"),
                         ("ContainerCreating", "ContainerCreating")):
        with pytest.raises(ApiError, match=f'container "w" in pod "p" is waiting to start: {text}'):
            pick({"state": {"waiting": {"reason": reason}}}, "w", "p", False)
