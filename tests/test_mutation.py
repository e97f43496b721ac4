"""The mutation list of bench/mutation.py still applies to today's code: every mutant's text
occurs exactly once in its module and its tests exist (running them is the script's job)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "mutation.py"


def _module():
    if not SCRIPT.exists():
        pytest.skip("bench/ is not shipped with the installed package")
    spec = importlib.util.spec_from_file_location("webservice_mutation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_mutant_applies_to_the_code():
    module = _module()
    problems = [f"{m.what}: {why}" for m in module.MUTANTS if (why := module.check(m, ROOT))]
    assert problems == []


def test_mutants_are_distinct_and_change_something():
    module = _module()
    assert len({(m.path, m.old, m.new) for m in module.MUTANTS}) == len(module.MUTANTS)
    assert all(m.old != m.new and m.tests for m in module.MUTANTS)


def test_check_notices_a_mutant_that_no_longer_applies(tmp_path):
    module = _module()
    (tmp_path / "webservice").mkdir()
    (tmp_path / "webservice" / "x.py").write_text("a = 1\na = 1\n")
    twice = module.Mutant("webservice/x.py", "twice", "a = 1", "a = 2", ("tests/x.py",))
    assert "occurs 2 times" in module.check(twice, tmp_path)
    (tmp_path / "webservice" / "x.py").write_text("a = 1\n")
    assert "tests not found" in module.check(twice, tmp_path)
