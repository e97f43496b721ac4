"""Every real ``.lighttpd.conf`` and ``uwsgi.ini`` (``../shared/corpus``) through the runner.

``tests/runner_corpus_table.py`` does the work: each file in a fresh tool home, the real
lighttpd (with php-cgi) or uWSGI started through ``webservice-runner``, ``/`` requested over
HTTP, the server stopped with SIGTERM (every wait is bounded and ends on a condition).
Each file must be served, or refused before anything starts with one line naming the
file and its line, for a reason that is the file's doing (``JUSTIFIED``); nothing may
crash, hang or be left running. ``docs/runner-corpus-outcomes.rst`` must be the table the
files give today. The corpus is read where it is, at run time; without it, or without the
servers, these tests are skipped.
"""

from __future__ import annotations

import pytest

from tests import runner_corpus_table as rct

FILES = rct.corpus_files()
MISSING = rct.servers_missing()

pytestmark = [
    pytest.mark.skipif(not FILES, reason=f"the shared corpus of real tool files is not at {rct.CORPUS} "
                                         "(../shared/corpus from the repository root)"),
    pytest.mark.skipif(bool(MISSING), reason="the corpus runs need the real servers: missing " + ", ".join(MISSING)),
]


def _outcome(kind: str, name: str) -> rct.Outcome:
    (row,) = [r for r in rct.outcomes() if r.kind == kind and r.name == name]
    return row


@pytest.mark.parametrize("kind,path", FILES, ids=[f"{k}/{p.name}" for k, p in FILES])
def test_corpus_file_is_served_or_refused_in_one_justified_line(kind, path):
    row = _outcome(kind, path.name)
    assert row.stopped, f"SIGTERM did not stop the runner and all it started: {row}"
    assert row.outcome in ("served", "refused", "no answer"), row  # never exited by itself, never hung
    if row.outcome == "served":
        assert row.status < 500, row
        return
    assert row.reason in rct.JUSTIFIED, f"not the file's doing: {row.detail}"
    if row.outcome == "refused":
        assert row.error_lines == 1, row
        where = "~/.lighttpd.conf line " if kind == "lighttpd.conf" else "~/www/python/uwsgi.ini line "
        assert where in row.detail, row.detail  # names the file and the line
    else:  # the server runs and answers other requests; lighttpd said why it dropped this one
        assert row.reason == "relative rewrite", row


def test_most_of_the_corpus_is_served():
    rows = rct.outcomes()
    assert {r.kind for r in rows} == set(rct.KINDS)
    for kind in rct.KINDS:
        of_kind = [r for r in rows if r.kind == kind]
        assert sum(r.outcome == "served" for r in of_kind) > 0.9 * len(of_kind), kind


def test_committed_runner_outcome_table_is_current():
    assert rct.TABLE.is_file(), "docs/runner-corpus-outcomes.rst is missing: run 'python -m tests.runner_corpus_table'"
    assert rct.TABLE.read_text(encoding="utf-8") == rct.table(rct.outcomes()), (
        "docs/runner-corpus-outcomes.rst is stale: run 'python -m tests.runner_corpus_table' and review the diff")
