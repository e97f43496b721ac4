"""The real files of Toolforge tools (``../shared/corpus``) through ``start --dry-run``.

Every ``service.template`` and ``service.manifest`` of the corpus is rendered as a tool in
a fresh home (``tests/corpus_table.py`` does the work): each must be accepted, or refused
with one line that names the file and the key, for a reason where the old command refused
too (``corpus_table.JUSTIFIED``); with a type on the command line a stored manifest must
always be accepted. The outcome table in ``docs/corpus-outcomes.rst`` must be the one the
files give today. The corpus is read where it is, at run time; without it these tests are
skipped.
"""

from __future__ import annotations

import pytest

from tests import corpus_table as ct

pytestmark = pytest.mark.skipif(
    not ct.corpus_files(), reason=f"the shared corpus of real tool files is not at {ct.CORPUS} "
                                  "(../shared/corpus from the repository root)")

FILES = ct.corpus_files()


def _runs(kind: str, name: str) -> list:
    return [r for r in ct.outcomes() if r.kind == kind and r.name == name]


@pytest.mark.parametrize("kind,path", FILES, ids=[f"{k}/{p.name}" for k, p in FILES])
def test_corpus_file_is_accepted_or_refused_in_one_justified_line(kind, path):
    runs = _runs(kind, path.name)
    assert len(runs) == (2 if kind == "service.manifest" else 1)
    for run in runs:
        if run.accepted:
            assert run.error_lines == 0, run  # warnings only
            continue
        assert run.error_lines == 1, run
        assert run.reason in ct.JUSTIFIED, f"not a refusal the old command made too: {run.error}"
        assert run.error.startswith(kind), run.error  # names the file ...
        file_level = run.reason in ("invalid YAML", "not a mapping")
        assert file_level or " key '" in run.error, run.error  # ... and the key
        assert run.run == "start --dry-run", f"a type was given and the manifest still blocked: {run.error}"


def test_corpus_has_both_kinds_and_mostly_passes():
    rows = ct.outcomes()
    kinds = {r.kind for r in rows}
    assert kinds == set(ct.KINDS)
    assert sum(r.accepted for r in rows) > len(rows) / 2


def test_committed_outcome_table_is_current():
    assert ct.TABLE.is_file(), "docs/corpus-outcomes.rst is missing: run 'python -m tests.corpus_table'"
    assert ct.TABLE.read_text(encoding="utf-8") == ct.table(ct.outcomes()), (
        "docs/corpus-outcomes.rst is stale: run 'python -m tests.corpus_table' and review the diff")
