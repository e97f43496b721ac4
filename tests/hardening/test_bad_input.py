"""Bad input, generated: no traceback, a non-zero exit with ONE line ``webservice: error:``
on stderr, and the tool's files byte-identical. Each property says, through an oracle
written from the published rules (``tests/hardening/oracles.py``), which inputs must be
refused and which accepted; a loosened or dropped validation fails it.

Most families run ``webservice.ui.cli.main`` in this process (``--dry-run``: no cluster),
hundreds of examples in a few seconds; a handful of attacks also run as real
subprocesses. Each family counts its examples for the results table (``row.case()``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.hardening import oracles
from tests.hardening.conftest import SETTINGS, TRACEBACK, assert_clean, assert_verdict, isolated, run_cli, snapshot

TEMPLATE_KEYS = ["type", "backend", "cpu", "mem", "replicas", "buildservice-image", "extra_args",
                 "health-check-path", "mount"]
MANIFEST_KEYS = ["version", "backend", "web", "cpu", "memory", "replicas", "buildservice-image",
                 "web::extra_args", "health-check-path", "mount"]
CONFIG_KEYS = ["public_domain", "buildservice_repository", "routing", "legacy_host", "legacy_snippets",
               "gateway_name", "gateway_namespace", "gateway_section", "project", "catalogue_ttl", "timeout"]

# --- strategies ---------------------------------------------------------------------------------

NASTY_TEXT = st.sampled_from([
    "", " ", "\t", "\x00", "\x1b[31mred\x1b[0m", "\u202eevil", "\ufeff", "\u200b", "a\nb", "a\rb",
    "python3.11\n", "ｐｙｔｈｏｎ3.11", "pythоn3.11",  # fullwidth, Cyrillic о
    "9" * 5000, "1e999999999", "-1", "0", "1" * 40 + "Gi", "NaN", "inf", "💥" * 100, "..", "../../etc/passwd",
    "$(touch /tmp/pwned)", "`id`", "'; rm -rf ~; '", "%s%n", "{0}", "<script>alert(1)</script>",
])
TEXT = st.one_of(st.text(max_size=40), NASTY_TEXT)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), TEXT,
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(TEXT, inner, max_size=4)),
                      max_leaves=12)


def _doc(keys):
    return st.dictionaries(st.one_of(st.sampled_from(keys), TEXT), VALUES, max_size=6)


# YAML-specific fragments: anchors, aliases, merge keys, tags, directives, duplicate keys
FRAGMENTS = [
    "&a x", "*a", "*undefined", "<<: *a", "<<: [*a, *a]", "!!python/object/apply:os.system [\"touch /tmp/pwned\"]",
    "!!python/name:os.system", "!!binary aGVsbG8=", "!!timestamp 2024-13-45", "!!set {a, b}", "!!omap [a: 1]",
    "!custom x", "!<tag:evil.example,2026:x> y", "%YAML 1.1", "%TAG ! tag:evil.example,2026:", "---", "...",
    "? [a, b]\n: c", "? {a: b}\n: c", "{", "[", "'", "\"\\x\"", "|\n  text", ">-\n  text", "\t- tab",
    "2024-13-45", "0o777", "0x_", "1_000", ".inf", "-.inf", ".nan", "~", "null", "yes", "no", "on", "off",
    "9" * 5000, "1e99999", "- " * 50 + "x", "[" * 40 + "]" * 40, "{a: " * 40 + "b" + "}" * 40,
    "[" * 3000 + "]" * 3000,
]


@st.composite
def yaml_text(draw, keys):
    """A YAML document for ``keys``: a dump of generated data, then mutated with
    YAML-specific fragments (anchors, tags, duplicate keys...), or raw text/bytes."""
    kind = draw(st.sampled_from(["dump", "mutated", "duplicate", "text", "binary"]))
    if kind == "binary":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")
    data = draw(_doc(keys))
    try:
        text = yaml.safe_dump(data, allow_unicode=draw(st.booleans()), sort_keys=False)
    except yaml.YAMLError:
        text = "type: python3.11\n"
    lines = text.splitlines() or [""]
    if kind == "duplicate":
        key = draw(st.sampled_from(keys))
        lines += [f"{key}: 1", f"{key}: 2"]
    elif kind == "mutated":
        for _ in range(draw(st.integers(1, 4))):
            fragment = draw(st.sampled_from(FRAGMENTS))
            where = draw(st.integers(0, len(lines)))
            key = draw(st.sampled_from(keys))
            lines.insert(where, draw(st.sampled_from([fragment, f"{key}: {fragment}", f"  {fragment}"])))
    return "\n".join(lines).encode("utf-8", "surrogatepass")


@st.composite
def alias_bomb(draw, key):
    """A 'billion laughs' under ``key``: ``depth`` levels of ``width`` aliases each."""
    depth, width = draw(st.integers(2, 12)), draw(st.integers(2, 12))
    lines = [f"{key}:", "  - &l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, depth):
        lines.append(f"  - &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    if draw(st.booleans()):
        lines = [f"x{level}: &m{level} {{a: 1}}" for level in range(3)] + lines
    return ("\n".join(lines) + "\n").encode()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _check_untouched(root: Path, before: dict) -> None:
    after = snapshot(root)
    ignored = lambda k: k == "xdg" or k.startswith("xdg/cache")  # noqa: E731 - the catalogue's cache
    before = {k: v for k, v in before.items() if not ignored(k)}
    after = {k: v for k, v in after.items() if not ignored(k)}
    assert after == before


def _dry_run(root: Path, *args: str, expect: str = oracles.EITHER, what: object = "") -> None:
    """Run ``--dry-run ... start``; check the verdict ``expect`` and that nothing changed."""
    before = snapshot(root)
    result = run_cli(["--dry-run", *args])
    assert_verdict(result, expect, what)
    _check_untouched(root, before)
    return result


# --- service.template -------------------------------------------------------------------------


@SETTINGS
@given(data=yaml_text(TEMPLATE_KEYS), where=st.sampled_from(["service.template", "www/python/src/service.template",
                                                             "explicit.yaml"]))
def test_template_generated(row, data, where):
    row.describe("bad input", "service.template: generated YAML, mutations (anchors, tags, duplicate keys), text, binary")
    row.case()
    with isolated() as root:
        _write(root / "home" / where, data)
        extra = ["--template", str(root / "home" / where)] if where == "explicit.yaml" else []
        _dry_run(root, "python3.11", "start", *extra, expect=oracles.yaml_mapping_file(data, yaml.safe_load), what=data)


@SETTINGS
@given(data=st.one_of(alias_bomb("extra_args"),
                      alias_bomb("cpu"), alias_bomb("unknown-key")))
def test_template_alias_bombs(row, data):
    row.describe("bad input", "service.template: billion laughs (nested YAML aliases)")
    row.case()
    with isolated() as root:
        _write(root / "home" / "service.template", data)
        _dry_run(root, "python3.11", "start")


@SETTINGS
@given(size=st.integers(64 * 1024 - 64, 200 * 1024), depth=st.integers(0, 300))
def test_template_huge_and_deep(row, size, depth):
    row.describe("bad input", "service.template: huge files (up to 200 KiB), nesting up to 300 deep")
    row.case()
    with isolated() as root:
        body = "type: python3.11\nextra_args: " + "[" * depth + "x" + "]" * depth + "\n"
        body += "#" + "x" * max(0, size - len(body) - 2) + "\n"
        _write(root / "home" / "service.template", body.encode())
        _dry_run(root, "start")


def test_template_string_extra_args_is_split_like_a_shell_not_characters(row):
    row.describe("bad input", "service.template: extra_args as a string (old bug: split into characters; "
                              "now split like a shell, with a warning; bad quoting refused)")
    row.case(2)
    with isolated() as root:
        _write(root / "home" / "service.template", b"type: golang1.11\nextra_args: ./serve --port 8000\n")
        result = _dry_run(root, "start")
        assert result.code == 0, result.err
        import yaml

        command = next(yaml.safe_load_all(result.out))["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[-3:] == ["./serve", "--port", "8000"], command
        assert "key 'extra_args' is a string" in result.err
        _write(root / "home" / "service.template", b"type: golang1.11\nextra_args: \"./serve 'x\"\n")
        result = _dry_run(root, "start")
        assert result.code == 2 and "key 'extra_args' cannot be split" in result.err


# --- service.manifest -------------------------------------------------------------------------


@SETTINGS
@given(data=st.one_of(yaml_text(MANIFEST_KEYS), alias_bomb("web::extra_args"), alias_bomb("cpu")))
def test_manifest_generated(row, data):
    row.describe("bad input", "service.manifest: generated YAML, mutations, billion laughs, text, binary")
    row.case()
    with isolated() as root:
        _write(root / "home" / "service.manifest", data)
        _dry_run(root, "start")
        _dry_run(root, "python3.11", "start")


# --- config files and variables ----------------------------------------------------------------


@SETTINGS
@given(data=st.one_of(yaml_text(CONFIG_KEYS), alias_bomb("public_domain"),
                      alias_bomb("timeout")),
       which=st.sampled_from(["site", "user"]))
def test_config_files_generated(row, data, which):
    row.describe("bad input", "config files (site and user): generated YAML, mutations, billion laughs, binary")
    row.case()
    with isolated() as root:
        path = root / "etc" / "webservice.yaml" if which == "site" else root / "xdg" / "config" / "toolforge" / "webservice.yaml"
        _write(path, data)
        _dry_run(root, "python3.11", "start", expect=oracles.yaml_mapping_file(data, yaml.safe_load), what=data)


@SETTINGS
@given(key=st.sampled_from(CONFIG_KEYS + ["TIMEOUT", "ROUTING"]), value=TEXT.filter(lambda v: "\x00" not in v))
def test_config_environment_generated(row, key, value):
    row.describe("bad input", "config environment variables WEBSERVICE_<KEY>: generated values")
    row.case()
    with isolated({f"WEBSERVICE_{key.upper()}": value}) as root:
        _dry_run(root, "python3.11", "start")


# --- command-line values -----------------------------------------------------------------------

QUANTITY_LIKE = st.from_regex(
    r"\A[+-]?[0-9]{0,60}(\.[0-9]{0,40})?(e[+-]?[0-9]{1,12}|E[+-]?[0-9]{1,3}|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?\Z")


@SETTINGS
@given(option=st.sampled_from(["--cpu", "--mem", "-c", "-m"]), value=st.one_of(QUANTITY_LIKE, TEXT))
def test_quantities_generated(row, option, value):
    row.describe("bad input", "--cpu/--mem quantities: generated numbers, suffixes, exponents, text")
    row.case()
    oracle = oracles.cpu if option in ("--cpu", "-c") else oracles.mem
    with isolated() as root:
        _dry_run(root, "python3.11", "start", option, value, expect=oracle(value), what=value)


@SETTINGS
@given(value=st.one_of(QUANTITY_LIKE, TEXT, st.integers(), st.floats(), st.none(), st.booleans(), VALUES))
def test_quantity_parser_direct(row, value):
    """The parser itself: a Decimal or an InputError, for any Python value."""
    from webservice.model import quantity
    from webservice.errors import InputError

    row.describe("bad input", "quantity parser (in-process): any value, any type")
    row.case()
    for parse in (quantity.parse, quantity.parse_cpu, quantity.parse_memory):
        try:
            parse(value, "--x")
        except InputError as error:
            assert "\n" not in error.message


@SETTINGS
@given(name=st.one_of(TEXT, st.from_regex(r"\A[a-z0-9.\-]{0,30}\Z")))
def test_type_names_generated(row, name):
    row.describe("bad input", "type names: generated text, unicode look-alikes, option-like words")
    row.case()
    with isolated() as root:
        _dry_run(root, "start", name)
        _dry_run(root, name, "start")


@SETTINGS
@given(args=st.lists(st.one_of(TEXT, st.text(min_size=4000, max_size=4100)), max_size=6),
       wstype=st.sampled_from(["python3.11", "jdk17", "buildservice"]))
def test_extra_args_generated(row, args, wstype):
    row.describe("bad input", "extra args after '--': generated lists (shell syntax, NUL, 4 KiB words)")
    row.case()
    with isolated() as root:
        result = _dry_run(root, wstype, "start", "--", *args,
                          expect=oracles.extra_args(args, generic=wstype == "jdk17"), what=args)
        if result.code == 0:  # accepted: passed on word for word, never split or joined
            deployment = next(yaml.safe_load_all(result.out))
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            words = container.get("command") or container.get("args") or []
            assert words[len(words) - len(args):] == args


@SETTINGS
@given(name=st.one_of(TEXT, st.from_regex(r"\A[a-z0-9\-]{50,70}\Z")), how=st.sampled_from(["option", "env"]))
def test_tool_names_generated(row, name, how):
    row.describe("bad input", "tool names (--tool, WEBSERVICE_TOOL): generated text, too long, unicode")
    row.case()
    if how == "env" and "\x00" in name:
        name = name.replace("\x00", "")
    with isolated({"WEBSERVICE_TOOL": name} if how == "env" else None) as root:
        args = ["--tool", name] if how == "option" else []
        # an empty --tool is not given: WEBSERVICE_TOOL (mytool here) names the tool
        expect = oracles.ACCEPT if how == "option" and name == "" else oracles.tool_name(name)
        _dry_run(root, "python3.11", "start", *args, expect=expect, what=name)


OPTIONS = ["--cpu", "--mem", "--replicas", "-r", "--backend", "--template", "--buildservice-image",
           "--health-check-path", "--mount", "--routing", "--timeout", "--tool", "--json", "--debug",
           "--wait", "--no-wait", "--release", "--canonical", "-f", "--since", "--last", "--previous", "--", "-"]


@SETTINGS
@given(words=st.lists(st.one_of(st.sampled_from(OPTIONS), st.sampled_from(["start", "stop", "status", "restart",
                                                                         "python3.11", "php8.2"]), TEXT),
                      max_size=8))
def test_argument_lists_generated(row, words):
    """Whole command lines made of real options, actions and generated words (dry run, so
    that no action reaches a cluster: there is none)."""
    row.describe("bad input", "whole command lines: real options and actions mixed with generated words")
    row.case()
    with isolated() as root:
        before = snapshot(root)
        result = run_cli(["--dry-run", *words])
        # without a kubeconfig every non-dry-run action fails with one clear line too; which
        # of these mixtures are valid no simple rule decides: the clean-outcome property only
        assert_clean(result)
        _check_untouched(root, before)


@SETTINGS
@given(replicas=st.one_of(st.integers(), st.integers(0, 17), TEXT, st.sampled_from([" 2 ", "+2", "\u0663", "1_0", "02"])),
       health=st.one_of(TEXT, st.from_regex(r"\A/[!-~]{0,30}\Z"),
                        st.sampled_from(["/a b", "/healthz\n", "/\t", "//", "/" + "x" * 1023, "/" + "x" * 1024])),
       image=st.one_of(TEXT, st.from_regex(r"\A[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}(:[a-z0-9]{1,8})?\Z"),
                       st.sampled_from(["a..b", "Tool/Image", "a b", "tool/image:latest\n", "/x", "x:"])),
       mount=st.one_of(TEXT, st.sampled_from(["all", "none", "ALL", " all", "none\n"])))
def test_other_options_generated(row, replicas, health, image, mount):
    row.describe("bad input", "--replicas, --health-check-path, --buildservice-image, --mount: generated values")
    row.case()
    with isolated() as root:
        _dry_run(root, "python3.11", "start", "--replicas", str(replicas),
                 expect=oracles.replicas(str(replicas)), what=replicas)
        _dry_run(root, "python3.11", "start", "--health-check-path", health,
                 expect=oracles.health_check_path(health), what=health)
        _dry_run(root, "buildservice", "start", "--buildservice-image", image,
                 expect=oracles.buildservice_image(image), what=image)
        _dry_run(root, "buildservice", "start", "--mount", mount, expect=oracles.mount(mount), what=mount)


@SETTINGS
@given(data=st.one_of(st.binary(max_size=200), yaml_text(["current-context", "clusters", "users", "contexts"]),
                      alias_bomb("clusters")))
def test_kubeconfig_generated(row, data):
    """A damaged kubeconfig: status (which must read it) fails with one line."""
    row.describe("bad input", "kubeconfig: generated YAML, binary, billion laughs (status)")
    row.case()
    with isolated() as root:
        _write(root / "kubeconfig", data)
        os.environ["KUBECONFIG"] = str(root / "kubeconfig")
        before = snapshot(root)
        result = run_cli(["status"], limit=3)
        assert_verdict(result, oracles.REFUSE)
        assert result.code in (2, 7)
        _check_untouched(root, before)


_BOMB = "".join(f"      - &l{i} [" + ",".join([f"*l{i - 1}" if i else "lol"] * 9) + "]\n" for i in range(8))
_CONTEXT = "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n"
KUBECONFIG_CASES = {
    "section not a list": "clusters: 1\n",
    "nested 3000 deep": "clusters: " + "[" * 3000 + "]" * 3000 + "\n",
    "impossible date": "current-context: 2024-13-45\n",
    "alias bomb as a name": "current-context: x\nclusters:\n  - name:\n" + _BOMB,
    "server port out of range": _CONTEXT + "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:99999'}}]\n",
    "server with a broken IPv6 literal": _CONTEXT + "clusters: [{name: c, cluster: {server: 'https://[::1'}}]\n",
}


@pytest.mark.parametrize("case", sorted(KUBECONFIG_CASES))
def test_kubeconfig_known_bad(row, case):
    row.describe("bad input", f"kubeconfig: {case}")
    row.case()
    with isolated() as root:
        _write(root / "kubeconfig", KUBECONFIG_CASES[case].encode())
        os.environ["KUBECONFIG"] = str(root / "kubeconfig")
        result = run_cli(["status"], limit=3)
        assert_verdict(result, oracles.REFUSE)
        assert result.code == 7


@SETTINGS
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                      st.builds(lambda v: yaml.safe_dump({"format": 1, "fetched_at": 1e12, "config": v}).encode(), VALUES)))
def test_catalogue_cache_generated(row, data):
    """A corrupt catalogue cache is ignored (the built-in list is used), never an error."""
    row.describe("bad input", "catalogue cache file: corrupt JSON, wrong shapes (ignored, never an error)")
    row.case()
    with isolated() as root:
        _write(root / "xdg" / "cache" / "webservice" / "images-v1.json", data)
        result = run_cli(["--dry-run", "python3.11", "start"])
        assert_verdict(result, oracles.ACCEPT)


# --- a handful as real processes --------------------------------------------------------------

BILLION = b"extra_args:\n  - &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + b"".join(
    b"  - &%c [%s]\n" % (c, b", ".join([b"*" + bytes([c - 1])] * 9)) for c in b"bcdefghi")

SUBPROCESS_CASES = {
    "binary template": ({"service.template": bytes(range(256)) * 4}, ["start"]),
    "billion-laughs template": ({"service.template": BILLION}, ["python3.11", "start"]),
    "python tag template": ({"service.template": b"type: !!python/object/apply:os.system ['touch pwned']\n"}, ["start"]),
    "duplicate keys template": ({"service.template": b"type: python3.11\ntype: php8.2\n"}, ["start"]),
    "empty template": ({"service.template": b""}, ["python3.11", "start"]),
    "damaged manifest": ({"service.manifest": b"web: [python3.11\n"}, ["start"]),
    "bad quantity": ({}, ["python3.11", "start", "--mem", "1.5Gb"]),
    "huge quantity": ({}, ["python3.11", "start", "--cpu", "9" * 5000]),
    "unicode type": ({}, ["pythоn3.11", "start"]),
    "unicode tool": ({}, ["python3.11", "start", "--tool", "mytооl"]),
    "config python tag": ({"xdg/config/toolforge/webservice.yaml": b"timeout: !!python/name:os.system\n"}, ["python3.11", "start"]),
}


@pytest.mark.parametrize("case", sorted(SUBPROCESS_CASES))
def test_real_process(row, tmp_path, case):
    row.describe("bad input", f"real process: {case}")
    row.case()
    files, args = SUBPROCESS_CASES[case]
    home = tmp_path / "home"
    home.mkdir()
    for name, data in files.items():
        _write((tmp_path / name) if name.startswith("xdg/") else (home / name), data)
    before = snapshot(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBSERVICE_") and k != "KUBECONFIG"}
    env.update(HOME=str(home), WEBSERVICE_TOOL="mytool", XDG_CONFIG_HOME=str(tmp_path / "xdg" / "config"),
               XDG_CACHE_HOME=str(tmp_path / "xdg" / "cache"), WEBSERVICE_SITE_CONFIG=str(tmp_path / "etc" / "x.yaml"),
               KUBECONFIG=str(tmp_path / "none"))
    script = Path(sys.executable).parent / "webservice"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "webservice"]
    done = subprocess.run([*command, "--dry-run", *args], capture_output=True, text=True, env=env,
                          cwd=home, timeout=30, stdin=subprocess.DEVNULL)
    assert not TRACEBACK.search(done.stderr), done.stderr
    assert done.returncode not in (0, 1), (done.returncode, done.stderr)
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("webservice: error: "), done.stderr
    _check_untouched(tmp_path, before)


_GARBAGE_CERT = ("current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: tool-mytool}}]\n"
                 "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9', insecure-skip-tls-verify: true}}]\n"
                 "users: [{name: u, user: {client-certificate-data: aGVsbG8=, client-key-data: aGVsbG8=}}]\n")


def test_kubeconfig_unusable_inline_certificate(row):
    row.describe("bad input", "kubeconfig: inline certificate and key that are not PEM (one clear line)")
    row.case()
    with isolated() as root:
        _write(root / "kubeconfig", _GARBAGE_CERT.encode())
        os.environ["KUBECONFIG"] = str(root / "kubeconfig")
        result = run_cli(["status"], limit=5)
        assert_verdict(result, oracles.REFUSE)
        assert result.code == 7
        assert "the client certificate the client certificate" not in result.err, result.err
