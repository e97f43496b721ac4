"""The dependency-free YAML writer of --dry-run reads back as exactly what it wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from webservice.ui.yamlout import dump, dump_all

GOLDEN = Path(__file__).parent / "golden"

TRICKY = [
    "", " ", "8000", "0.5", "1e3", "0x1F", "0o17", "1_000", "+1", "-1", ".5", "1:30", "2026-11-26",
    "2026-11-26T10:00:00Z", "true", "True", "TRUE", "yes", "No", "on", "OFF", "y", "N", "null", "Null",
    "~", "-", "--", "---", "...", "- x", "a: b", "a:b", "#x", "x #y", "&a", "*a", "!tag", "%x", "@x",
    "`x", "'x'", '"x"', "[x]", "{x}", "x,y", "|", ">", "?", "a\nb", "tab\tx", "é", "日本", "\u2028",
    "\x00", "\x7f", "\\", "x ", " x", "/x", "$1", "^(/x)$ $1/ redirect;", "/mytool(/|$)(.*)",
    "app.kubernetes.io/component", ".inf", "-.inf", ".nan", "=", "<<",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_read_back_as_strings(text):
    document = {text or "k": text, "list": [text, {"key": text}]}
    assert yaml.safe_load(dump(document)) == document


def test_every_golden_object_reads_back_and_looks_like_pyyaml():
    for path in sorted(GOLDEN.glob("*.yaml")):
        documents = list(yaml.safe_load_all(path.read_text()))
        text = dump_all(documents)
        assert list(yaml.safe_load_all(text)) == documents, path.name
        assert text.count("\n") == path.read_text().count("\n"), path.name  # same layout


def test_empty_containers_and_scalars():
    document = {"a": {}, "b": [], "c": None, "d": True, "e": False, "f": 0, "g": [[], {}, [1, [2]]]}
    assert yaml.safe_load(dump(document)) == document


def test_refuses_what_it_cannot_write_exactly():
    with pytest.raises(TypeError):
        dump({"x": 0.5})
    with pytest.raises(TypeError):
        dump({1: "x"})


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
data = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(data)
def test_any_plain_data_reads_back(document):
    assert yaml.safe_load(dump(document)) == document
