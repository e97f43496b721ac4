"""The webservice type catalogue: built-in list, cluster ConfigMap, on-disk cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from webservice.model import catalogue as cat
from webservice.model.catalogue import (
    BUILTIN_PATH,
    CACHE_FILE,
    RUNNER_TYPES,
    Catalogue,
    WebserviceType,
    cached_type_names,
    load_catalogue,
    parse_image_config,
)
from webservice.errors import InputError, UnknownTypeError, WebserviceError, ClusterError

DATA = Path(__file__).parent / "data" / "catalogue"
CLUSTER_YAML = (DATA / "cluster-images-v1.yaml").read_text(encoding="utf-8")
REPO = Path(__file__).resolve().parent.parent
NOW = 1_800_000_000.0


@pytest.fixture(autouse=True)
def _fresh_memo():
    cat._builtin_memo.clear()
    yield
    cat._builtin_memo.clear()


class Fetch:
    """A fetch callable that counts its calls and returns or raises what it was given."""

    def __init__(self, result: str | BaseException = CLUSTER_YAML):
        self.result = result
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


def builtin(tmp_path: Path) -> Catalogue:
    return load_catalogue(tmp_path / "cache")


# --- the built-in list --------------------------------------------------------------------


def test_builtin_types(tmp_path):
    c = builtin(tmp_path)
    assert c.source == "builtin" and c.fetched_at is None and c.warning is None
    assert set(c.types) == {
        "buildservice", "golang1.11", "jdk17", "node16", "node18", "node20", "perl5.36", "php7.4",
        "php8.2", "php8.4", "python3.11", "python3.13", "python3.9", "ruby3.1", "tcl8.6",
    }
    for name, t in c.types.items():
        assert isinstance(t, WebserviceType) and t.name == name
        if name == "buildservice":
            assert t.image is None and t.runner is None and not t.deprecated
            assert t.required == () and not t.needs_extra_args
            continue
        assert t.runner in RUNNER_TYPES.values()
        newer = name in ("php8.4", "python3.13", "node20")  # REFERENCE section 8: the newer registry
        registry = "docker-registry.svc.toolforge.org" if newer else "docker-registry.tools.wmflabs.org"
        assert t.image.startswith(f"{registry}/toolforge-"), t.image
        assert t.image.endswith("-sssd-web:latest")
        assert t.state in ("stable", "deprecated") and t.profile in ("default", "jdk")
    # jobs-only images are not webservice types
    assert "bookworm" not in c and "bullseye" not in c and "tf-bookworm" not in c and "trixie" not in c
    assert c.types["php8.4"].runner == "lighttpd" and c.types["node20"].runner == "nodejs"
    assert c.types["python3.13"].runner == "uwsgi-python"
    assert {n for n, t in c.types.items() if t.deprecated} == {"php7.4", "python3.9", "node16"}


def test_builtin_runners_profiles_and_needs(tmp_path):
    c = builtin(tmp_path)
    php, py, node, jdk = (c.types[n] for n in ("php8.2", "python3.11", "node18", "jdk17"))
    assert php.runner == "lighttpd" and php.required == (("public_html", ".lighttpd.conf"),)
    assert py.runner == "uwsgi-python" and py.required == (("www/python/src/app.py",),)
    assert node.runner == "nodejs" and node.required == (("www/js/package.json",),)
    assert jdk.runner == "generic" and jdk.profile == "jdk" and jdk.needs_extra_args
    assert jdk.required == ()
    assert not php.needs_extra_args and not py.needs_extra_args
    assert all(c.types[n].profile == "default" for n in c.types if n != "jdk17")
    assert py.image == "docker-registry.tools.wmflabs.org/toolforge-python311-sssd-web:latest"


def test_builtin_file_is_in_the_cluster_format(tmp_path):
    """The data file parses with the very function used for the ConfigMap."""
    with open(BUILTIN_PATH, encoding="utf-8") as handle:
        types = parse_image_config(handle.read())
    c = builtin(tmp_path)
    assert {**types, "buildservice": c.types["buildservice"]} == dict(c.types)


def test_names_order(tmp_path):
    c = builtin(tmp_path)
    assert c.names() == [
        "buildservice", "golang1.11", "jdk17", "node20", "node18", "perl5.36", "php8.4", "php8.2",
        "python3.13", "python3.11", "ruby3.1", "tcl8.6", "node16", "php7.4", "python3.9",
    ]
    assert c.names(include_deprecated=False) == c.names()[:12]


def test_natural_sort_newest_version_first():
    names = ["python3.9", "python3.11", "php7.4", "php8.2", "node18", "node9"]
    assert sorted(names, key=cat._natural_key) == [
        "node18", "node9", "php8.2", "php7.4", "python3.11", "python3.9",
    ]


# --- resolving names ----------------------------------------------------------------------


def test_resolve_names_and_aliases(tmp_path):
    c = builtin(tmp_path)
    assert c.resolve("python3.11").name == "python3.11"
    assert c.resolve("tf-python311") is c.types["python3.11"]
    assert c.resolve("tf-php74").deprecated
    assert c.resolve("buildservice").image is None
    assert c.get("nope") is None and "tf-node18" in c


def test_unknown_type_lists_valid_ones_and_suggests(tmp_path):
    c = builtin(tmp_path)
    with pytest.raises(UnknownTypeError) as e:
        c.resolve("pyhton3.11")
    assert e.value.message == "unknown webservice type 'pyhton3.11'"
    assert e.value.exit_code == 2
    hint = e.value.hint
    assert hint.startswith("did you mean 'python3.11'? Valid types: buildservice, golang1.11,")
    assert "php7.4 (deprecated)" in hint and hint.endswith("(see 'webservice types')")
    for name in c.names():
        assert name in hint


@pytest.mark.parametrize(
    "typed, suggested",
    [
        ("Python3.11", "python3.11"),  # case-sensitive, but the fix is suggested
        ("python", "python3.13"),  # family name: newest stable
        ("php", "php8.4"),
        ("node", "node20"),
        ("jdk-17", "jdk17"),
        ("TF-PHP82", "php8.2"),  # alias in another case -> its canonical name
        ("PHP7.4", "php7.4"),  # the same name in another case is what was meant
        ("zzzzzz", None),
        ("", None),
        ("php7.3", "php8.4"),  # a retired version: the newest current one, never deprecated php7.4
        ("python3.7", "python3.13"),
        ("lighttpd", "php8.4"),
    ],
)
def test_suggestions(tmp_path, typed, suggested):
    c = builtin(tmp_path)
    with pytest.raises(UnknownTypeError) as e:
        c.resolve(typed)
    assert e.value.message == f"unknown webservice type '{typed}'"  # no '?;' in the line
    if suggested:
        assert e.value.hint.startswith(f"did you mean '{suggested}'? Valid types: ")
    else:
        assert e.value.hint.startswith("valid types: ")


@pytest.mark.parametrize("deprecated,replacement", [
    ("php7.4", "php8.4"), ("python3.9", "python3.13"), ("node16", "node20"), ("python3.11", None),
])
def test_a_deprecated_type_names_its_replacement(tmp_path, deprecated, replacement):
    assert builtin(tmp_path).suggest_replacement(deprecated) == replacement


def test_hint_names_toolforge_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLFORGE_CLI", "1")
    with pytest.raises(UnknownTypeError) as e:
        builtin(tmp_path).resolve("x")
    assert e.value.hint.endswith("(see 'toolforge webservice types')")


# --- the cluster's ConfigMap and the cache -----------------------------------------------


def test_fetch_parses_caches_and_uses_cluster(tmp_path):
    fetch = Fetch()
    c = load_catalogue(tmp_path, fetch=fetch, now=NOW)
    assert fetch.calls == 1
    assert c.source == "cluster" and c.fetched_at == NOW and c.warning is None
    assert set(c.types) == {"php8.2", "python3.13", "python3.11", "jdk21", "buildservice"}
    assert c.types["python3.13"].profile == "default"  # resources omitted -> default
    assert c.types["python3.11"].deprecated
    assert c.types["jdk21"].aliases == () and c.types["jdk21"].profile == "jdk"
    stored = json.loads((tmp_path / CACHE_FILE).read_text())
    assert stored["fetched_at"] == NOW and set(stored["config"]) == set(c.types) - {"buildservice"}
    # offline, the cache is used whatever its age, and fetch is never needed
    later = load_catalogue(tmp_path, now=NOW + 10 * 86400)
    assert later.source == "cache" and later.fetched_at == NOW
    assert dict(later.types) == dict(c.types)
    assert cached_type_names(tmp_path) == later.names()


@pytest.mark.parametrize(
    "age, calls, source",
    [
        (0, 0, "cache"),
        (3599, 0, "cache"),
        (3600, 1, "cluster"),  # expired
        (86400, 1, "cluster"),
        (-60, 1, "cluster"),  # fetched "in the future": clock skew, do not trust it
    ],
)
def test_cache_freshness(tmp_path, age, calls, source):
    load_catalogue(tmp_path, fetch=Fetch(), now=NOW)
    fetch = Fetch()
    c = load_catalogue(tmp_path, fetch=fetch, now=NOW + age, ttl=3600)
    assert fetch.calls == calls and c.source == source
    assert c.fetched_at == (NOW if source == "cache" else NOW + age)


def test_custom_ttl(tmp_path):
    load_catalogue(tmp_path, fetch=Fetch(), now=NOW)
    fetch = Fetch()
    assert load_catalogue(tmp_path, fetch=fetch, now=NOW + 30, ttl=10).source == "cluster"
    assert load_catalogue(tmp_path, fetch=fetch, now=NOW + 35, ttl=10).source == "cache"
    assert fetch.calls == 1


def test_fetch_failure_falls_back_to_stale_cache(tmp_path):
    load_catalogue(tmp_path, fetch=Fetch(), now=NOW)
    before = (tmp_path / CACHE_FILE).read_bytes()
    fetch = Fetch(ClusterError("connection refused"))
    c = load_catalogue(tmp_path, fetch=fetch, now=NOW + 7200)
    assert fetch.calls == 1
    assert c.source == "cache" and c.fetched_at == NOW and "python3.13" in c
    assert "could not read the webservice types from the cluster (connection refused)" in c.warning
    assert "using the list cached on 2027-01-15 08:00 UTC" in c.warning
    assert (tmp_path / CACHE_FILE).read_bytes() == before


def test_fetch_failure_without_cache_uses_builtin(tmp_path):
    c = load_catalogue(tmp_path, fetch=Fetch(ClusterError("forbidden")), now=NOW)
    assert c.source == "builtin" and "php7.4" in c
    assert c.warning.endswith("(forbidden); using the built-in list")
    assert not (tmp_path / CACHE_FILE).exists()


def test_invalid_cluster_content_falls_back_and_keeps_cache(tmp_path):
    load_catalogue(tmp_path, fetch=Fetch(), now=NOW)
    before = (tmp_path / CACHE_FILE).read_bytes()
    c = load_catalogue(tmp_path, fetch=Fetch("just a string"), now=NOW + 7200)
    assert c.source == "cache" and "ConfigMap tf-public/image-config" in c.warning
    assert (tmp_path / CACHE_FILE).read_bytes() == before


def test_other_exceptions_from_fetch_propagate(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        load_catalogue(tmp_path, fetch=Fetch(KeyboardInterrupt()), now=NOW)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'{"format": 1}',
        b'{"format": 99, "fetched_at": 1, "config": {}}',
        b'{"format": 1, "fetched_at": "yesterday", "config": {}}',
        b'{"format": 1, "fetched_at": true, "config": {}}',
        b'{"format": 1, "fetched_at": 1e999, "config": {}}',
        b'{"format": 1, "fetched_at": 1, "config": {"x": {"variants": {"webservice": 3}}}}',
        b'{"format": 1, "fetched_at": 1, "config": []}',
        b"[" * 100000,
    ],
)
def test_corrupt_cache_is_ignored_then_overwritten(tmp_path, content):
    (tmp_path / CACHE_FILE).write_bytes(content)
    c = load_catalogue(tmp_path)
    assert c.source == "builtin" and c.warning is None
    assert cached_type_names(tmp_path) == c.names()
    fetch = Fetch()
    c = load_catalogue(tmp_path, fetch=fetch, now=NOW)
    assert fetch.calls == 1 and c.source == "cluster"
    assert load_catalogue(tmp_path).source == "cache"


def test_unreadable_cache_is_ignored(tmp_path):
    (tmp_path / CACHE_FILE).mkdir()  # reading a directory fails with OSError
    assert load_catalogue(tmp_path).source == "builtin"
    c = load_catalogue(tmp_path, fetch=Fetch(), now=NOW)  # and cannot be replaced: no failure
    assert c.source == "cluster" and c.warning is None


def test_unwritable_cache_dir_is_not_an_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    c = load_catalogue(blocker / "cache", fetch=Fetch(), now=NOW)
    assert c.source == "cluster"
    assert load_catalogue(blocker / "cache").source == "builtin"
    assert cached_type_names(blocker / "cache")[0] == "buildservice"


def test_cache_written_atomically(tmp_path, monkeypatch):
    load_catalogue(tmp_path, fetch=Fetch(), now=NOW)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CACHE_FILE]
    before = (tmp_path / CACHE_FILE).read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cat.os, "replace", broken_replace)
    other = CLUSTER_YAML.replace("jdk21", "jdk25")
    c = load_catalogue(tmp_path, fetch=Fetch(other), now=NOW + 7200)
    assert c.source == "cluster" and "jdk25" in c  # the fetched list is still used
    assert sorted(p.name for p in tmp_path.iterdir()) == [CACHE_FILE]  # no temp left
    assert (tmp_path / CACHE_FILE).read_bytes() == before  # old cache intact


def test_builtin_snapshot_avoids_yaml(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = load_catalogue(cache)
    assert (cache / cat.BUILTIN_SNAPSHOT_FILE).is_file()
    cat._builtin_memo.clear()

    def no_yaml(*args, **kwargs):
        raise AssertionError("YAML parsed although the snapshot is valid")

    monkeypatch.setattr(cat, "_parse_yaml", no_yaml)
    assert dict(load_catalogue(cache).types) == dict(first.types)


def test_builtin_snapshot_of_another_data_file_is_not_used(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    fake = {"format": 1, "key": [1, 2], "config": parse_config_subset(CLUSTER_YAML)}
    (cache / cat.BUILTIN_SNAPSHOT_FILE).write_text(json.dumps(fake))
    c = load_catalogue(cache)
    assert "jdk21" not in c and "php7.4" in c  # the real data file was read
    snap = json.loads((cache / cat.BUILTIN_SNAPSHOT_FILE).read_text())
    assert snap["key"] != [1, 2]  # and the snapshot refreshed


def parse_config_subset(text: str) -> dict:
    return cat._normalize(cat._parse_yaml(text, "test"), "test")


# --- validation of the ConfigMap ------------------------------------------------------------

GOOD_ENTRY = """\
  state: stable
  variants:
    webservice:
      image: docker-registry.tools.wmflabs.org/toolforge-x-sssd-web
      extra: {wstype: python}
"""


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
        ("- a\n- b\n", "expected a mapping of type names, got list"),
        ("a: [\n", "invalid YAML at line 2"),
        ("a: 1\n", "type 'a': expected a mapping, got int"),
        ("3: {}\n", "invalid type name 3"),
        ("'bad name': {}\n", "invalid type name 'bad name'"),
        ("a: {variants: []}\n", "type 'a': 'variants' must be a mapping"),
        ("jobs: {variants: {jobs-framework: {image: x}}}\n", "defines no webservice types"),
        ("a: {variants: {webservice: x}}\n", "'variants.webservice' must be a mapping"),
        ("a: {variants: {webservice: {extra: {wstype: python}}}}\n",
         "type 'a': 'variants.webservice.image' must be an image name, got None"),
        ("a: {variants: {webservice: {image: 'x y', extra: {wstype: python}}}}\n",
         "'variants.webservice.image' must be an image name, got 'x y'"),
        ("a: {variants: {webservice: {image: x, extra: {wstype: null-ish}}}}\n",
         "type 'a': 'variants.webservice.extra.wstype' is 'null-ish', expected one of: "
         "generic, js, lighttpd, lighttpd-plain, python"),
        ("a: {variants: {webservice: {image: x, extra: {wstype: ruby}}}}\n",
         "'variants.webservice.extra.wstype' is 'ruby'"),
        ("a: {variants: {webservice: {image: x, extra: [1]}}}\n",
         "'variants.webservice.extra' must be a mapping"),
        ("a: {variants: {webservice: {image: x, extra: {wstype: js, resources: huge}}}}\n",
         "'variants.webservice.extra.resources' is 'huge', expected one of: default, jdk"),
        ("a:\n  state: experimental\n" + GOOD_ENTRY.split("\n", 1)[1],
         "type 'a': 'state' is 'experimental', expected one of: stable, deprecated"),
        ("a:\n  aliases: tf-a\n" + GOOD_ENTRY, "type 'a': 'aliases' must be a list of names"),
        ("a:\n  aliases: [1]\n" + GOOD_ENTRY, "'aliases' must be a list of names"),
        ("a:\n  aliases: ['x y']\n" + GOOD_ENTRY, "invalid alias 'x y'"),
        ("a:\n  aliases: [b]\n" + GOOD_ENTRY + "b:\n" + GOOD_ENTRY,
         "type 'b': name or alias 'b' is also used by type 'a'"),
        ("a:\n  aliases: [buildservice]\n" + GOOD_ENTRY,
         "name or alias 'buildservice' is also used by type 'buildservice'"),
        ("buildservice:\n" + GOOD_ENTRY, "type 'buildservice': the name is reserved"),
    ],
)
def test_invalid_image_config_is_rejected_clearly(text, expected):
    with pytest.raises(InputError) as e:
        parse_image_config(text)
    message = e.value.message
    assert message.startswith("ConfigMap tf-public/image-config (key images-v1.yaml): ")
    assert expected in message
    assert "\n" not in message


def test_invalid_yaml_error_has_position():
    with pytest.raises(InputError) as e:
        parse_image_config("a:\n  b: [1,\n", source="my.yaml")
    assert e.value.message.startswith("my.yaml: invalid YAML at line 3")
    assert "line " in e.value.message


def test_non_text_is_rejected():
    with pytest.raises(InputError, match="expected YAML text, got NoneType"):
        parse_image_config(None)
    with pytest.raises(InputError, match="not UTF-8"):
        parse_image_config(b"\xff: 1")


def test_lenient_where_harmless():
    types = parse_image_config(
        textwrap.dedent(
            """\
            a:
              aliases: [a, tf-a, tf-a]
              variants:
                webservice:
                  image: registry.example/some/img:1.2
                  extra: {wstype: lighttpd-plain, resources: null}
            b:
              state: deprecated
              aliases: null
              variants:
                webservice: {image: 'r.example/b@sha256:abc', extra: {wstype: js}}
            jobsonly: {}
            """
        )
    )
    a, b = types["a"], types["b"]
    assert a.state == "stable" and a.aliases == ("tf-a",) and a.profile == "default"
    assert a.image == "registry.example/some/img:1.2"  # a tag given is kept
    assert a.runner == "lighttpd-plain" and a.required == (("public_html", ".lighttpd.conf"),)
    assert b.image == "r.example/b@sha256:abc" and b.deprecated and b.aliases == ()
    assert set(types) == {"a", "b"}


def test_input_error_is_a_webservice_error():
    with pytest.raises(WebserviceError):
        parse_image_config("[]")


# --- staying light ----------------------------------------------------------------------------


def test_import_and_load_stay_light(tmp_path):
    """Loading from the cache must not import kubernetes, rich, click, nor even yaml."""
    load_catalogue(tmp_path, fetch=Fetch(), now=NOW)
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "import webservice.model.catalogue as c\n"
        "from pathlib import Path\n"
        f"cat = c.load_catalogue(Path({str(tmp_path)!r}))\n"
        "assert cat.source == 'cache', cat.source\n"
        "names = c.cached_type_names(Path(sys.argv[1]))\n"
        "print('ms', (time.perf_counter() - t) * 1000)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=REPO, check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "webservice.model.catalogue" in imported
    roots = {name.split(".")[0] for name in imported}
    for heavy in ("kubernetes", "rich", "click", "yaml", "urllib3", "requests", "platformdirs"):
        assert heavy not in roots, f"{heavy} imported"


def test_builtin_load_without_snapshot_imports_yaml_only(tmp_path):
    code = (
        "import sys\n"
        "import webservice.model.catalogue as c\n"
        "from pathlib import Path\n"
        "assert c.load_catalogue(Path(sys.argv[1])).source == 'builtin'\n"
        "for m in ('kubernetes', 'rich', 'click'):\n"
        "    assert m not in sys.modules, m\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "c")], env=env, check=True)


# --- today's cluster catalogue, entry by entry ------------------------------------------------

TODAY_YAML = (DATA / "images-v1-2026.yaml").read_text(encoding="utf-8")


def test_todays_catalogue_is_read_entry_by_entry(tmp_path):
    c = load_catalogue(tmp_path, fetch=Fetch(TODAY_YAML), now=NOW)
    assert c.source == "cluster"
    assert set(c.types) == {"buildservice", "golang1.11", "jdk17", "node18", "node20", "php7.4",
                            "php8.2", "php8.4", "python3.11", "python3.13"}
    # entries without `extra`: the launcher follows the family, resources the default
    assert c.types["golang1.11"].runner == "generic" and c.types["golang1.11"].needs_extra_args
    assert c.types["node18"].runner == "nodejs" and c.types["node18"].profile == "default"
    assert c.types["php7.4"].runner == "lighttpd"
    # top-level image and unknown keys are read past; the webservice variant's image is used
    assert c.types["php8.4"].image == "docker-registry.svc.toolforge.org/toolforge-php84-sssd-web:latest"
    assert c.types["node20"].image == "docker-registry.svc.toolforge.org/toolforge-node20-sssd-web:latest"
    assert c.resolve("tf-python313") is c.types["python3.13"]  # the alias stays with its first owner
    # the broken entries are skipped with one warning naming each of them
    assert c.warning == (
        "ConfigMap tf-public/image-config (key images-v1.yaml): skipped 3 broken entries ("
        "type 'ruby3.4': 'state' is 'experimental', expected one of: stable, deprecated; "
        "type 'perl5.40': 'variants.webservice' must be a mapping; "
        "type 'python3.12': name or alias 'tf-python313' is also used by type 'python3.13')")
    # what was read is cached, and read back without the broken entries or a warning
    again = load_catalogue(tmp_path)
    assert again.source == "cache" and dict(again.types) == dict(c.types) and again.warning is None


def test_read_image_config_reports_what_it_skipped():
    types, warning = cat.read_image_config(TODAY_YAML, source="images-v1.yaml")
    assert "php8.4" in types and "ruby3.4" not in types
    assert warning.startswith("images-v1.yaml: skipped 3 broken entries (type 'ruby3.4'")
    assert cat.read_image_config(CLUSTER_YAML)[1] is None
    with pytest.raises(InputError, match="defines no webservice types that can be used"):
        cat.read_image_config("a: {variants: {webservice: 1}}\n")


@pytest.mark.parametrize("broken", [
    "a: 1\n", "a: {variants: []}\n", "a: {variants: {webservice: x}}\n",
    "a: {variants: {webservice: {extra: {wstype: python}}}}\n",
    "a: {variants: {webservice: {image: x, extra: {wstype: ruby}}}}\n",
    "a: {variants: {webservice: {image: x, extra: {wstype: js, resources: huge}}}}\n",
    "a:\n  aliases: tf-a\n" + GOOD_ENTRY, "buildservice:\n" + GOOD_ENTRY, "'bad name': {}\n",
])
def test_one_broken_entry_never_discards_the_catalogue(tmp_path, broken):
    c = load_catalogue(tmp_path, fetch=Fetch(CLUSTER_YAML + broken), now=NOW)
    assert c.source == "cluster"
    assert {"php8.2", "python3.13", "python3.11", "jdk21"} <= set(c.types)
    assert c.warning and "skipped 1 broken entry" in c.warning and "\n" not in c.warning
    name = broken.split(":", 1)[0].strip("'")
    assert f"'{name}'" in c.warning


def test_entry_without_webservice_image_uses_the_top_level_image():
    types = parse_image_config("x1:\n  image: r.example/x1\n  variants:\n    webservice: {extra: {wstype: python}}\n")
    assert types["x1"].image == "r.example/x1:latest" and types["x1"].runner == "uwsgi-python"


def test_builtin_parse_is_still_strict():
    with pytest.raises(InputError, match="'state' is 'experimental'"):
        parse_image_config(TODAY_YAML)


# --- suggestions of a current type, and the list for `webservice types` ---------------------

@pytest.mark.parametrize("name, expected", [
    ("php7.4", "php8.4"), ("python3.9", "python3.13"), ("node16", "node20"),  # deprecated
    ("php7.3", "php8.4"), ("php5.6", "php8.4"), ("python3.7", "python3.13"), ("python39", "python3.13"),
    ("lighttpd", "php8.4"), ("uwsgi-plain", "python3.13"), ("uwsgi-python", "python3.13"),  # grid-era names
    ("nodejs", "node20"), ("node10", "node20"), ("jdk11", "jdk17"), ("golang111", "golang1.11"),
    ("pyhton3.11", "python3.11"), ("php8.2", None), ("buildservice", None), ("zzzzzz", None), ("", None),
])
def test_suggest_replacement_is_a_current_type(tmp_path, name, expected):
    c = builtin(tmp_path)
    assert c.suggest_replacement(name) == expected
    if expected:
        assert not c.resolve(expected).deprecated


def test_list_types_for_the_types_command(tmp_path):
    c = builtin(tmp_path)
    listed = cat.list_types(c)
    assert [t.name for t in listed] == c.names()
    by_name = {t.name: t for t in listed}
    assert by_name["php7.4"].deprecated and by_name["php7.4"].replacement == "php8.4"
    assert by_name["php8.4"].runner == "lighttpd" and by_name["php8.4"].replacement is None
    assert by_name["php8.4"].image == "docker-registry.svc.toolforge.org/toolforge-php84-sssd-web:latest"
    assert by_name["buildservice"].as_dict() == {
        "name": "buildservice", "runner": None, "image": None, "deprecated": False, "aliases": [],
        "profile": "default", "replacement": None}
    json.dumps([t.as_dict() for t in listed])  # --json can print it
    assert [t.name for t in cat.list_types(c, include_deprecated=False)] == c.names(include_deprecated=False)


def test_cache_write_fsyncs_the_directory(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    load_catalogue(tmp_path / "cache", fetch=Fetch(), now=NOW)
    assert os.path.realpath(tmp_path / "cache") in synced  # the rename survives a crash
