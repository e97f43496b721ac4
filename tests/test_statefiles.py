"""Tests of webservice.state: service.template, service.manifest and the lock."""

from __future__ import annotations

import multiprocessing
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fcntl

from tests.hardening.conftest import nfs_flock
from webservice.state import lock as sl
from webservice.state import manifest as sm
from webservice.state import template as tp
from webservice.errors import ManifestError, TemplateError

DATA = Path(__file__).parent / "data" / "statefiles"


def write(path: Path, content: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def assert_one_line(exc: Exception) -> None:
    assert str(exc) and "\n" not in str(exc) and "\r" not in str(exc)
    hint = getattr(exc, "hint", None)
    assert hint is None or "\n" not in hint


# --- service.template: loading --------------------------------------------------------

GOOD = """\
type: python3.11
backend: kubernetes
cpu: 0.5
mem: 1.5Gi
replicas: 2
buildservice-image: tool-mytool/web:latest
extra_args: [--port, '8000']
health-check-path: /healthz
mount: none
"""


def test_good_template_all_keys(tmp_path):
    t = tp.load_template(write(tmp_path / "service.template", GOOD))
    assert t.values == {
        "type": "python3.11", "backend": "kubernetes", "cpu": "0.5", "mem": "1.5Gi",
        "replicas": 2, "buildservice_image": "tool-mytool/web:latest",
        "extra_args": ["--port", "8000"], "health_check_path": "/healthz", "mount": "none",
    }
    assert t.warnings == ()
    assert t.path == str(tmp_path / "service.template")


def test_template_numbers_and_anchors(tmp_path):
    text = "cpu: 2\nmem: &m 512Mi\nextra_args: [*m]\nmount: all\n"
    t = tp.load_template(write(tmp_path / "t", text))
    assert t.values == {"cpu": "2", "mem": "512Mi", "extra_args": ["512Mi"], "mount": "all"}


def test_unknown_keys_warn(tmp_path):
    path = write(tmp_path / "service.template", "type: php8.2\nfoo: 1\nbar: [x]\n")
    t = tp.load_template(path)
    assert t.values == {"type": "php8.2"}
    assert t.warnings == ("Your template file (service.template) contains unknown keys: foo, bar",)


@pytest.mark.parametrize("key,meant", [
    ("replica", "replicas"), ("memory", "mem"), ("Memory", "mem"), ("health_check_path", "health-check-path"),
    ("buildservice_image", "buildservice-image"), ("extra-args", "extra_args"), ("tpye", "type"),
    ("mounts", "mount"), ("cpus", "cpu"),
])
def test_unknown_key_near_miss_did_you_mean(tmp_path, key, meant):
    t = tp.load_template(write(tmp_path / "service.template", f"type: php8.2\n{key}: 2\n"))
    assert t.values == {"type": "php8.2"}  # ignored, not applied under the other name
    assert t.warnings == (f"Your template file (service.template) contains unknown keys: "
                          f"{key} (did you mean '{meant}'?)",)


@pytest.mark.parametrize("key", ["canonical", "release", "containers", "distribution"])
def test_unknown_key_far_from_any_has_no_suggestion(tmp_path, key):
    t = tp.load_template(write(tmp_path / "service.template", f"type: php8.2\n{key}: true\n"))
    assert t.warnings == (f"Your template file (service.template) contains unknown keys: {key}",)


def test_unknown_keys_are_listed_in_file_order_and_non_string_keys_shown(tmp_path):
    t = tp.load_template(write(tmp_path / "service.template", "zeta: 1\ntype: php8.2\n3: x\nalpha: 2\n"))
    assert t.warnings == ("Your template file (service.template) contains unknown keys: zeta, 3, alpha",)


@pytest.mark.parametrize("text", ["extra_args: ''", 'extra_args: ""', "extra_args: []", "extra_args:",
                                  "extra_args: null", "extra_args: '   '"])
def test_empty_extra_args_mean_none(tmp_path, text):
    t = tp.load_template(write(tmp_path / "service.template", f"type: python3.11\n{text}\n"))
    assert t.values == {"type": "python3.11", "extra_args": []}
    assert t.warnings == ()


@pytest.mark.parametrize("text,expected", [
    ("--port 8000", ["--port", "8000"]),
    ("./start.sh  --name 'my tool' -x", ["./start.sh", "--name", "my tool", "-x"]),
    ('bin/server --cbor "a b"', ["bin/server", "--cbor", "a b"]),
])
def test_string_extra_args_are_split_like_a_shell_with_a_warning(tmp_path, text, expected):
    path = write(tmp_path / "service.template", yaml.safe_dump({"type": "golang1.11", "extra_args": text}))
    raw = yaml.safe_load(path.read_text())["extra_args"]
    assert raw == text  # the file really holds the string
    t = tp.load_template(path)
    assert t.values["extra_args"] == expected
    assert len(t.warnings) == 1
    assert "key 'extra_args' is a string" in t.warnings[0] and "YAML list" in t.warnings[0]
    assert str(path) in t.warnings[0] and "\n" not in t.warnings[0]


@pytest.mark.parametrize("text", ["'./run.sh --name \"unclosed'", "'a \\'"])
def test_string_extra_args_with_bad_quoting_is_one_line_naming_the_key(tmp_path, text):
    path = write(tmp_path / "service.template", f"type: golang1.11\nextra_args: {text}\n")
    with pytest.raises(TemplateError) as info:
        tp.load_template(path)
    assert_one_line(info.value)
    assert str(info.value).startswith(f"service.template ({path}): key 'extra_args' cannot be split")
    assert "YAML list" in info.value.hint


def test_key_order_never_matters(tmp_path):
    lines = GOOD.splitlines() + ["replica: 3", "foo: bar"]
    first = tp.load_template(write(tmp_path / "a", "\n".join(lines) + "\n"))
    second = tp.load_template(write(tmp_path / "b", "\n".join(reversed(lines)) + "\n"))
    assert first.values == second.values
    assert first.values["replicas"] == 2  # the near miss 'replica: 3' never applies
    assert [w.split(": ", 1)[0] for w in first.warnings] == [w.split(": ", 1)[0] for w in second.warnings]
    # two wrong keys: the same one is reported whatever the order
    bad = ["type: python3.11", "cpu: [1]", "replicas: two"]
    messages = set()
    for order in (bad, list(reversed(bad))):
        with pytest.raises(TemplateError) as info:
            tp.load_template(write(tmp_path / "c", "\n".join(order) + "\n"))
        messages.add(str(info.value))
    assert len(messages) == 1


BAD_TEMPLATES = [
    # (id, content, words the message must contain)
    ("empty", b"", ["empty"]),
    ("only-comments", b"# nothing\n", ["empty"]),
    ("list", b"- type: python3.11\n", ["mapping", "list"]),
    ("scalar", b"python3.11\n", ["mapping", "string"]),
    ("number", b"42\n", ["mapping", "number"]),
    ("bad-yaml", b"type: [python3.11\n", ["invalid YAML", "line"]),
    ("bad-indent", b"type: a\n  cpu: 1\n", ["invalid YAML", "line 2"]),
    ("tab", b"type:\ta\n\tcpu: 1\n", ["invalid YAML"]),
    ("python-tag", b"type: !!python/object/apply:os.system ['id']\n", ["!!python/object/apply", "not allowed"]),
    ("python-name", b"type: !!python/name:os.system\n", ["tag", "not allowed"]),
    ("custom-tag", b"type: !shell python3.11\n", ["!shell", "not allowed"]),
    ("duplicate", b"type: a\ncpu: 1\ntype: b\n", ["duplicate key 'type'", "line 3"]),
    ("unhashable-key", b"? [a, b]\n: 1\n", ["unhashable"]),
    ("two-documents", b"type: a\n---\ntype: b\n", ["more than one YAML document"]),
    ("huge", b"type: python3.11\n" + b"# padding padding padding\n" * 3000, ["larger than 64 KiB"]),
    ("deep", b"extra_args: " + b"[" * 200 + b"]" * 200 + b"\n", ["nested deeper"]),
    ("billion-laughs",
     b"a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
     b"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
     b"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n", ["aliases"]),
    ("many-aliases", b"x: &x a\nextra_args: [" + b", ".join([b"*x"] * 150) + b"]\n", ["aliases"]),
    ("binary", bytes(range(256)), ["UTF-8"]),
    ("latin-1", "type: pyth\u00f6n\n".encode("latin-1"), ["UTF-8"]),
    ("control-char", b"type: python\x07\n", ["not allowed"]),
    ("bad-date", b"type: 2024-13-45\n", ["invalid YAML value"]),
    # wrong value types, one per key
    ("type-number", b"type: 3.11\n", ["'type'", "non-empty string", "number"]),
    ("type-empty", b"type: ''\n", ["'type'", "non-empty string"]),
    ("type-null", b"type:\n", ["'type'", "null"]),
    ("type-list", b"type: [python3.11]\n", ["'type'", "list"]),
    ("backend-bool", b"backend: yes\n", ["'backend'", "boolean"]),
    ("backend-mapping", b"backend: {a: b}\n", ["'backend'", "mapping"]),
    ("cpu-list", b"cpu: [1]\n", ["'cpu'", "quantity", "list"]),
    ("cpu-zero", b"cpu: 0\n", ["'cpu'", "positive"]),
    ("cpu-negative", b"cpu: -1\n", ["'cpu'", "positive"]),
    ("cpu-bool", b"cpu: true\n", ["'cpu'", "boolean"]),
    ("cpu-inf", b"cpu: .inf\n", ["'cpu'"]),
    ("cpu-nan", b"cpu: .nan\n", ["'cpu'"]),
    ("mem-empty", b"mem: ' '\n", ["'mem'", "empty string"]),
    ("mem-mapping", b"mem: {Gi: 1}\n", ["'mem'", "mapping"]),
    ("replicas-string", b"replicas: '2'\n", ["'replicas'", "whole number", "string"]),
    ("replicas-zero", b"replicas: 0\n", ["'replicas'", "at least 1"]),
    ("replicas-float", b"replicas: 1.5\n", ["'replicas'", "whole number"]),
    ("replicas-bool", b"replicas: true\n", ["'replicas'", "boolean"]),
    ("image-number", b"buildservice-image: 1\n", ["'buildservice-image'", "non-empty string"]),
    ("extra-args-number-item", b"extra_args: [--port, 8000]\n", ["'extra_args'", "item 2", "quote"]),
    ("extra-args-nested", b"extra_args: [[a]]\n", ["'extra_args'", "item 1", "list"]),
    ("extra-args-mapping", b"extra_args: {port: 8000}\n", ["'extra_args'", "mapping"]),
    ("health-no-slash", b"health-check-path: healthz\n", ["'health-check-path'", "starting with '/'"]),
    ("health-space", b"health-check-path: /health z\n", ["'health-check-path'", "without spaces"]),
    ("health-number", b"health-check-path: 200\n", ["'health-check-path'"]),
    ("mount-other", b"mount: some\n", ["'mount'", "'all' or 'none'"]),
    ("mount-bool", b"mount: no\n", ["'mount'", "boolean"]),
]


@pytest.mark.parametrize("content,words", [c[1:] for c in BAD_TEMPLATES], ids=[c[0] for c in BAD_TEMPLATES])
def test_bad_templates(tmp_path, content, words):
    path = write(tmp_path / "service.template", content)
    with pytest.raises(TemplateError) as info:
        tp.load_template(path)
    message = str(info.value)
    assert_one_line(info.value)
    assert message.startswith(f"service.template ({path})"), message
    for word in words:
        assert word in message, (word, message)
    assert info.value.hint
    assert len(message) < 400


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo"])
def test_unreadable_templates(tmp_path, kind):
    path = tmp_path / "service.template"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(TemplateError) as info:
        tp.load_template(path)
    assert_one_line(info.value)
    assert str(path) in str(info.value) and "cannot read" in str(info.value)


def test_permission_denied_template(tmp_path, monkeypatch):
    path = write(tmp_path / "service.template", GOOD)

    def denied(*args, **kwargs):  # simulated: the tests may run as root
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(TemplateError, match="cannot read .*Permission denied") as info:
        tp.load_template(path)
    assert_one_line(info.value)
    with pytest.raises(ManifestError, match="Permission denied"):
        sm.update_manifest(tmp_path, start)


def test_template_with_bom_and_crlf(tmp_path):
    t = tp.load_template(write(tmp_path / "t", b"\xef\xbb\xbftype: php8.2\r\nmount: all\r\n"))
    assert t.values == {"type": "php8.2", "mount": "all"}


# --- service.template: finding ----------------------------------------------------------


def test_find_template_none(tmp_path):
    assert tp.find_template(tmp_path) is None


@pytest.mark.parametrize("location", tp.TEMPLATE_LOCATIONS)
def test_find_template_each_location(tmp_path, location):
    write(tmp_path / location, GOOD)
    assert tp.find_template(tmp_path) == str(tmp_path / location)


def test_find_template_two_is_an_error(tmp_path):
    write(tmp_path / "service.template", GOOD)
    write(tmp_path / "www/js/service.template", GOOD)
    with pytest.raises(TemplateError) as info:
        tp.find_template(tmp_path)
    assert_one_line(info.value)
    assert str(tmp_path / "service.template") in str(info.value)
    assert str(tmp_path / "www/js/service.template") in str(info.value)
    assert "--template" in info.value.hint


def test_find_template_explicit(tmp_path, monkeypatch):
    write(tmp_path / "service.template", GOOD)
    write(tmp_path / "www/js/service.template", GOOD)  # ignored when --template is given
    other = write(tmp_path / "conf" / "my.yaml", GOOD)
    assert tp.find_template(tmp_path, other) == str(other)
    assert tp.find_template(tmp_path, str(other)) == str(other)
    monkeypatch.chdir(tmp_path / "conf")
    assert tp.find_template(tmp_path, "my.yaml") == str(other)
    assert os.path.isabs(tp.find_template(tmp_path, "my.yaml"))


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_find_template_explicit_bad(tmp_path, kind):
    path = tmp_path / "nope.yaml"
    if kind == "directory":
        path.mkdir()
    with pytest.raises(TemplateError) as info:
        tp.find_template(tmp_path, path)
    assert_one_line(info.value)
    assert str(path) in str(info.value)


def test_find_template_symlink_counts(tmp_path):
    write(tmp_path / "real.yaml", GOOD)
    (tmp_path / "www/python/src").mkdir(parents=True)
    (tmp_path / "www/python/src/service.template").symlink_to(tmp_path / "real.yaml")
    found = tp.find_template(tmp_path)
    assert found == str(tmp_path / "www/python/src/service.template")
    assert tp.load_template(found).values["type"] == "python3.11"


# --- service.template: generated input ---------------------------------------------------

YAMLISH = st.text(alphabet=st.sampled_from(list("abc019 :-[]{},&*!|>'\"#?%@`\n\t.~") + ["\u00e9", "\x00", "\ufeff"]),
                  max_size=200)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=2000) | YAMLISH.map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_property_arbitrary_bytes_only_template_error(tmp_path, raw):
    path = write(tmp_path / "service.template", raw)
    try:
        t = tp.load_template(path)
    except TemplateError as exc:
        assert_one_line(exc)
        assert str(path) in str(exc)
    else:
        assert set(t.values) <= {k.replace("-", "_") for k in tp.TEMPLATE_KEYS}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(st.sampled_from(tp.TEMPLATE_KEYS) | st.text(max_size=10), VALUES, max_size=6))
def test_property_generated_mappings(tmp_path, data):
    path = write(tmp_path / "service.template", yaml.safe_dump(data))
    try:
        t = tp.load_template(path)
    except TemplateError as exc:
        assert_one_line(exc)
        assert "'" in str(exc)  # names the key
    else:
        for key, value in t.values.items():
            if key in ("cpu", "mem", "type", "backend", "buildservice_image", "health_check_path", "mount"):
                assert isinstance(value, str) and value
            elif key == "replicas":
                assert type(value) is int and value >= 1
            elif key == "extra_args":
                assert all(isinstance(a, str) for a in value)


# --- service.manifest: reading ----------------------------------------------------------


def home_with(tmp_path: Path, fixture: str) -> Path:
    write(tmp_path / sm.MANIFEST_NAME, (DATA / fixture).read_bytes())
    return tmp_path


def test_read_missing_manifest(tmp_path):
    m = sm.read_manifest(tmp_path)
    assert m.data == {} and m.path == str(tmp_path / "service.manifest")
    assert (m.version, m.web_type, m.backend, m.cpu, m.memory, m.replicas, m.extra_args) == (None,) * 7


@pytest.mark.parametrize("fixture,expected", [
    ("manifest-v1.yaml", dict(version=1, web_type="lighttpd", backend=None, replicas=None)),
    ("manifest-v2.yaml", dict(version=2, web_type="uwsgi-python", backend="gridengine")),
    ("manifest-v3.yaml", dict(version=3, web_type="php7.4", backend="kubernetes", cpu=None)),
    ("manifest-v4.yaml", dict(version=4, web_type="buildservice", backend="kubernetes", cpu="1",
                              memory="2Gi", replicas=2, extra_args=["--port", "8000"],
                              buildservice_image="tools-harbor.wmcloud.org/tool-mytool/tool-mytool:latest")),
    ("manifest-v4-stopped.yaml", dict(version=4, web_type=None, backend="kubernetes")),
])
def test_read_old_versions(tmp_path, fixture, expected):
    m = sm.read_manifest(home_with(tmp_path, fixture))
    for attribute, value in expected.items():
        assert getattr(m, attribute) == value, attribute


@pytest.mark.parametrize("fixture", ["manifest-v1.yaml", "manifest-v2.yaml", "manifest-v3.yaml", "manifest-v4.yaml"])
def test_upgrade_keeps_unknown_keys(tmp_path, fixture):
    home = home_with(tmp_path, fixture)
    before = sm.read_manifest(home).data
    m = sm.update_manifest(home, lambda d: sm.manifest_for_start(d, web_type="python3.11", cpu="500m"))
    after = sm.read_manifest(home).data
    assert after == m.data
    assert after["version"] == 4 and after["web"] == "python3.11" and after["cpu"] == "500m"
    for key, value in before.items():
        if key not in sm.WEB_KEYS and key != "version":
            assert after[key] == value
    assert "replicas" not in after  # None removes a key
    assert (home / "service.manifest").read_text().startswith(sm.MANIFEST_HEADER)


BAD_MANIFESTS = [
    ("bad-yaml", b"web: [python\n"),
    ("list", b"- web\n"),
    ("scalar", b"hello\n"),
    ("binary", b"\x00\xff\xfe garbage"),
    ("duplicate", b"web: a\nweb: b\n"),
    ("python-tag", b"web: !!python/object/apply:os.system [id]\n"),
    ("web-list", b"web: [a]\nversion: 4\n"),
    ("replicas-string", b"replicas: two\n"),
    ("extra-args-numbers", b"web::extra_args: [--port, 8000]\n"),
    ("extra-args-mapping", b"web::extra_args: {port: 8000}\n"),
    ("version-string", b"version: four\n"),
    ("cpu-mapping", b"cpu: {a: 1}\n"),
    ("huge", b"x: y\n" * 20000),
]


@pytest.mark.parametrize("content", [c[1] for c in BAD_MANIFESTS], ids=[c[0] for c in BAD_MANIFESTS])
def test_bad_manifests(tmp_path, content):
    path = write(tmp_path / "service.manifest", content)
    with pytest.raises(ManifestError) as info:
        sm.read_manifest(tmp_path)
    assert_one_line(info.value)
    assert str(path) in str(info.value)
    assert "webservice stop" in info.value.hint
    with pytest.raises(ManifestError):
        sm.update_manifest(tmp_path, lambda d: sm.manifest_for_start(d, web_type="php8.2"))
    assert path.read_bytes() == content


@pytest.mark.parametrize("stored,expected", [
    ("/data/project/ukbot/server.sh", ["/data/project/ukbot/server.sh"]),
    ("--port 8000 --name 'my tool'", ["--port", "8000", "--name", "my tool"]),
    ("--name 'unclosed", None),  # broken quoting: nothing usable (the spec ignores it with a note)
])
def test_version_2_string_extra_args_are_read_split(tmp_path, stored, expected):
    write(tmp_path / "service.manifest", yaml.safe_dump({"version": 2, "backend": "kubernetes",
                                                         "web": "generic", "web::extra_args": stored}))
    m = sm.read_manifest(tmp_path)
    assert m.extra_args == expected
    # and the next write replaces it with the list form
    m = sm.update_manifest(tmp_path, lambda d: sm.manifest_for_start(d, web_type="golang1.11", extra_args=["./x"]))
    assert sm.read_manifest(tmp_path).data["web::extra_args"] == ["./x"]


def test_manifest_directory_is_refused(tmp_path):
    (tmp_path / "service.manifest").mkdir()
    with pytest.raises(ManifestError, match="not a regular file"):
        sm.read_manifest(tmp_path)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=1000) | YAMLISH.map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_property_arbitrary_manifest_only_manifest_error(tmp_path, raw):
    write(tmp_path / "service.manifest", raw)
    try:
        sm.read_manifest(tmp_path)
    except ManifestError as exc:
        assert_one_line(exc)


# --- service.manifest: writing ------------------------------------------------------------


def start(d):
    return sm.manifest_for_start(d, web_type="python3.11", cpu="500m", memory="1Gi", replicas=2,
                                 extra_args=["--port", "8000"])


def test_round_trip_header_order_and_mode(tmp_path):
    write(tmp_path / "service.manifest", "zzz: 1\naaa: {x: [1, 2]}\n")
    old_umask = os.umask(0o077)
    try:
        m = sm.update_manifest(tmp_path, start)
    finally:
        os.umask(old_umask)
    text = (tmp_path / "service.manifest").read_text()
    assert text.startswith(sm.MANIFEST_HEADER)
    assert text == sm.MANIFEST_HEADER + (
        "version: 4\nbackend: kubernetes\nweb: python3.11\ncpu: 500m\nmemory: 1Gi\nreplicas: 2\n"
        "web::extra_args:\n- --port\n- '8000'\naaa:\n  x:\n  - 1\n  - 2\nzzz: 1\n")
    assert sm.read_manifest(tmp_path).data == m.data
    assert m.replicas == 2 and m.extra_args == ["--port", "8000"] and m.web_type == "python3.11"
    # a fresh file gets 0644 whatever the umask; a stricter existing mode is kept
    path = tmp_path / "service.manifest"
    path.unlink()
    sm.update_manifest(tmp_path, start)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o600)
    sm.update_manifest(tmp_path, start)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o666)
    sm.update_manifest(tmp_path, start)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # never group/world writable


def test_stop_keeps_unknown_keys_and_deletes_when_empty(tmp_path):
    sm.update_manifest(tmp_path, start)
    m = sm.update_manifest(tmp_path, sm.manifest_for_stop)
    assert m.data == {} and not (tmp_path / "service.manifest").exists()
    # nothing there and stop: nothing is created
    sm.update_manifest(tmp_path, lambda d: None)
    assert not (tmp_path / "service.manifest").exists()
    # unknown keys survive a stop
    home = home_with(tmp_path, "manifest-v4.yaml")
    for change in (sm.manifest_for_stop, lambda d: {}, lambda d: None):
        sm.update_manifest(home, start)
        m = sm.update_manifest(home, change)
        assert m.data == {"version": 4, "some-other-tooling": {"keep": "me", "list": [1, 2]}}
        assert sm.read_manifest(home).data == m.data


def test_stopped_old_manifest_is_removed(tmp_path):
    home = home_with(tmp_path, "manifest-v4-stopped.yaml")
    sm.update_manifest(home, sm.manifest_for_stop)
    assert not (home / "service.manifest").exists()


def test_pure_helpers_do_not_mutate():
    data = {"version": 3, "web": "php7.4", "cpu": "1", "other": [1]}
    new = sm.manifest_for_start(data, web_type="node18", cpu=None, replicas=1)
    assert data == {"version": 3, "web": "php7.4", "cpu": "1", "other": [1]}
    assert new == {"version": 4, "web": "node18", "backend": "kubernetes", "replicas": 1, "other": [1]}
    assert sm.manifest_for_stop(new) == {"version": 4, "other": [1]}
    assert sm.manifest_for_stop({}) == {}


def test_invalid_data_is_never_written(tmp_path):
    home = home_with(tmp_path, "manifest-v3.yaml")
    before = (home / "service.manifest").read_bytes()
    with pytest.raises(ManifestError, match="replicas"):
        sm.update_manifest(home, lambda d: {**d, "replicas": "2"})
    assert (home / "service.manifest").read_bytes() == before


def test_newer_version_is_not_downgraded(tmp_path):
    path = write(tmp_path / "service.manifest", "version: 5\nweb: python3.11\n")
    assert sm.read_manifest(tmp_path).version == 5
    with pytest.raises(ManifestError, match="newer"):
        sm.update_manifest(tmp_path, start)
    assert path.read_text() == "version: 5\nweb: python3.11\n"


def test_stale_leftovers_do_not_block(tmp_path):
    tilde = write(tmp_path / "service.manifest~", "web: lighttpd\n")
    tilde.chmod(0o400)
    stale = write(tmp_path / ".service.manifest.abc123.tmp", "half written")
    (tmp_path / ".service.manifest.lock").write_text("pid 1 on gone-host\n")  # stale lock file
    sm.update_manifest(tmp_path, start)
    assert sm.read_manifest(tmp_path).web_type == "python3.11"
    assert not stale.exists()
    assert tilde.read_text() == "web: lighttpd\n"  # the old tool's file is not ours to remove


def leftovers(home: Path) -> list[str]:
    return sorted(n for n in os.listdir(home) if n.endswith(".tmp"))


@pytest.mark.parametrize("target,error", [
    ("os.replace", OSError(28, "No space left on device")),
    ("os.fsync", OSError(5, "Input/output error")),
    ("os.fchmod", OSError(1, "Operation not permitted")),
    ("yaml.safe_dump", RuntimeError("boom")),
    ("os.replace", KeyboardInterrupt()),
    ("os.fsync", KeyboardInterrupt()),
])
def test_failure_during_write_keeps_old_manifest(tmp_path, monkeypatch, target, error):
    home = home_with(tmp_path, "manifest-v4.yaml")
    before = (home / "service.manifest").read_bytes()
    module, name = target.split(".")

    def fail(*args, **kwargs):
        raise error

    import yaml  # statefiles imports yaml only when it needs it

    monkeypatch.setattr(yaml if module == "yaml" else os, name, fail)
    expected = ManifestError if isinstance(error, OSError) else type(error)
    with pytest.raises(expected) as info:
        sm.update_manifest(home, start)
    monkeypatch.undo()
    if expected is ManifestError:
        assert_one_line(info.value)
        assert "previous version was kept" in str(info.value)
    assert (home / "service.manifest").read_bytes() == before
    assert leftovers(home) == []
    sm.update_manifest(home, start)  # and the next run works
    assert sm.read_manifest(home).web_type == "python3.11"


def test_change_raising_keeps_old_manifest(tmp_path):
    home = home_with(tmp_path, "manifest-v3.yaml")
    before = (home / "service.manifest").read_bytes()

    def change(d):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sm.update_manifest(home, change)
    assert (home / "service.manifest").read_bytes() == before
    sm.update_manifest(home, start)  # the lock was released


def _increment(home: str, times: int) -> None:
    for _ in range(times):
        sm.update_manifest(Path(home), lambda d: {**d, "counter": d.get("counter", 0) + 1})


def test_concurrent_updates_lose_nothing(tmp_path):
    sm.update_manifest(tmp_path, start)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_increment, args=(str(tmp_path), 20)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 8
    m = sm.read_manifest(tmp_path)
    assert m.data["counter"] == 160 and m.web_type == "python3.11"
    assert leftovers(tmp_path) == []


def test_concurrent_threads_lose_nothing(tmp_path):
    import threading

    threads = [threading.Thread(target=_increment, args=(str(tmp_path), 10)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sm.read_manifest(tmp_path).data["counter"] == 40


def _hold_lock(home: str, ready, release) -> None:
    lock = sl.take_lock(Path(home), 5)
    ready.set()
    release.wait(30)
    lock.release()


def test_lock_wait_is_bounded(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(ManifestError) as info:
            sm.update_manifest(tmp_path, start, lock_timeout=0.3)
        assert_one_line(info.value)
        assert "another webservice command is updating" in str(info.value)
        assert f"pid {holder.pid}" in str(info.value)
        assert not (tmp_path / "service.manifest").exists()
    finally:
        release.set()
        holder.join(10)
    sm.update_manifest(tmp_path, start, lock_timeout=5)  # free again


def test_lock_not_supported_is_a_clear_error(tmp_path, monkeypatch):
    def no_locks(*args):  # e.g. NFS without a lock daemon
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fcntl, "lockf", no_locks)
    with pytest.raises(ManifestError, match="cannot lock .*No locks available") as info:
        sm.update_manifest(tmp_path, start)
    assert_one_line(info.value)
    assert not (tmp_path / "service.manifest").exists()


def test_missing_home_is_a_clear_error(tmp_path):
    with pytest.raises(ManifestError, match="cannot create the lock file"):
        sm.update_manifest(tmp_path / "nope", start)
    assert sm.read_manifest(tmp_path / "nope").data == {}


# --- service.manifest: security -----------------------------------------------------------


def test_symlinked_manifest_is_refused(tmp_path):
    victim = write(tmp_path / "other-user" / "file", "version: 4\nweb: php8.2\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / "service.manifest").symlink_to(victim)
    with pytest.raises(ManifestError, match="symbolic link") as info:
        sm.read_manifest(home)
    assert_one_line(info.value)
    with pytest.raises(ManifestError, match="symbolic link"):
        sm.update_manifest(home, start)
    with pytest.raises(ManifestError, match="symbolic link"):
        sm.update_manifest(home, sm.manifest_for_stop)
    assert victim.read_text() == "version: 4\nweb: php8.2\n"
    assert (home / "service.manifest").is_symlink()


def test_dangling_symlinked_manifest_is_refused(tmp_path):
    (tmp_path / "service.manifest").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ManifestError, match="symbolic link"):
        sm.update_manifest(tmp_path, start)
    assert not (tmp_path / "elsewhere").exists()


def test_symlinked_lock_file_is_refused(tmp_path):
    victim = write(tmp_path / "victim", "precious\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".service.manifest.lock").symlink_to(victim)
    with pytest.raises(ManifestError, match="symbolic link"):
        sm.update_manifest(home, start)
    assert victim.read_text() == "precious\n"
    assert not (home / "service.manifest").exists()


def test_files_of_another_user_are_not_written(tmp_path, monkeypatch):
    sm.update_manifest(tmp_path, start)
    before = (tmp_path / "service.manifest").read_bytes()
    real = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: real + 1)
    with pytest.raises(ManifestError, match="owned by") as info:
        sm.update_manifest(tmp_path, sm.manifest_for_stop)
    assert_one_line(info.value)
    # the manifest check itself (lock file already ours)
    with pytest.raises(ManifestError, match="owned by another user"):
        sm._update_locked(tmp_path / "service.manifest", start)
    monkeypatch.undo()
    assert (tmp_path / "service.manifest").read_bytes() == before


def test_module_imports_nothing_heavy():
    import subprocess

    code = ("import sys, webservice.state.template, webservice.state.manifest, webservice.state.lock; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'rich', 'click')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent)
    assert out.stdout.strip() == "[]"


def test_manifest_in_a_relative_home(tmp_path, monkeypatch):
    """A home given as a relative path (HOME=. in a cron line) still saves atomically."""
    monkeypatch.chdir(tmp_path)
    sm.update_manifest(".", lambda data: {**data, "web": "python3.11"})
    assert sm.read_manifest(".").data["web"] == "python3.11"
    sm.update_manifest("", lambda data: {**data, "web": "php8.2"})
    assert sm.read_manifest(tmp_path).data["web"] == "php8.2"
    assert sorted(os.listdir(tmp_path)) == [sl.LOCK_NAME, sm.MANIFEST_NAME]


# --- the lock under NFS semantics ------------------------------------------------------------
#
# ``nfs_flock`` (tests/hardening/conftest.py) makes fcntl.flock behave as on NFS.


def test_nfs_emulation_makes_flock_and_lockf_conflict(tmp_path):
    """The emulation is faithful: what the old design did (flock held, then lockf on the
    same file) cannot get the second lock."""
    path = tmp_path / sl.LOCK_NAME
    path.touch()
    first, second = os.open(path, os.O_RDWR), os.open(path, os.O_RDWR)
    try:
        nfs_flock([])(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(OSError) as info:
            fcntl.lockf(second, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert info.value.errno in (11, 13)  # EAGAIN / EACCES: the two kinds conflict
    finally:
        os.close(first)
        os.close(second)


def test_lock_is_one_posix_lock_passed_down_never_flock(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(fcntl, "flock", nfs_flock(calls))
    with sl.ToolLock(tmp_path, timeout=0.5, busy="busy") as lock:
        # the command's own manifest update under the held lock: no second lock, no wait
        m = sm.update_manifest(tmp_path, start, lock=lock, lock_timeout=0.5)
        assert m.web_type == "python3.11"
        assert lock.held
        # updating without passing the lock waits for it, as another command would
        with pytest.raises(ManifestError, match="in this process"):
            sm.update_manifest(tmp_path, start, lock_timeout=0.2)
        assert lock.held  # and the failed attempt did not drop the lock (no close of another fd)
    assert calls == []  # flock is never used
    assert not lock.held
    sm.update_manifest(tmp_path, sm.manifest_for_stop, lock_timeout=0.5)  # free again


def test_a_lock_of_another_home_is_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with sl.ToolLock(tmp_path / "a", timeout=1) as lock:
        with pytest.raises(ValueError):
            sm.update_manifest(tmp_path / "b", start, lock=lock)
    with pytest.raises(ValueError):
        sm.update_manifest(tmp_path / "a", start, lock=lock)  # released: not held any more
    assert not (tmp_path / "b" / "service.manifest").exists()


def test_held_lock_blocks_another_process_and_names_the_holder(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(ManifestError) as info:
            sl.ToolLock(tmp_path, timeout=0.2, busy="another webservice command is changing this webservice").acquire()
        assert_one_line(info.value)
        assert str(info.value) == ("another webservice command is changing this webservice; "
                                   "gave up waiting for it after 0.2 s")
    finally:
        release.set()
        holder.join(10)
    with sl.ToolLock(tmp_path, timeout=5):
        pass
