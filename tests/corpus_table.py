"""What ``webservice start --dry-run`` makes of every real file in the shared corpus.

The corpus (``../shared/corpus`` from the repository's root; see its README) holds the
``service.template`` and ``service.manifest`` files of real Toolforge tools. They are
other people's files: they are read where they are, at run time, and never copied into
this repository. Each one is put into a fresh temporary tool home (as
``~/service.template`` or ``~/service.manifest``) and rendered in this process as the
tool ``mytool`` with the built-in catalogue (no cluster): ``start --dry-run``, and for a
manifest also ``php8.2 start --dry-run`` (with a type on the command line a stored
manifest must never block).

Each file gets an outcome: ``accepted`` (with what the warnings said), or ``refused`` with
the reason class of its one error line. :data:`JUSTIFIED` lists the classes a refusal may
have: the ones where the old command (0.98) refused too (or crashed).

``python -m tests.corpus_table`` (from the repository's root) writes the table to
``docs/corpus-outcomes.rst``; ``tests/test_corpus_dryrun.py`` checks every outcome and that
the committed table is the one this module generates now.
"""

from __future__ import annotations

import functools
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
TABLE = ROOT / "docs" / "corpus-outcomes.rst"
KINDS = ("service.template", "service.manifest")
TYPE_GIVEN = "php8.2"  # the type given on the command line in the second manifest run
ENV = {"SOURCE_DATE_EPOCH": "1795687200", "COLUMNS": "200"}

#: reason classes of a refusal where the old command refused (or crashed) too
JUSTIFIED = {
    "invalid YAML": "not YAML the old command could read (it crashed with a traceback)",
    "not a mapping": "not a mapping of settings (the old command crashed)",
    "unknown type": "a type that no longer exists (the old command knew only the current catalogue)",
    "needs a command": "a generic type with nothing to run (the old command could not start it either)",
    "mount none, home type": ("``mount: none`` with a type that serves files from the tool's home: "
                              "without the home mounted there is nothing to serve"),
}
_CLASSES = [
    ("invalid YAML", re.compile(r"invalid YAML|is damaged: invalid YAML|not valid UTF-8")),
    ("not a mapping", re.compile(r"must be a YAML mapping|the file is empty")),
    ("unknown type", re.compile(r"unknown webservice type")),
    ("needs a command", re.compile(r"runs the command you give after '--'")),
    ("mount none, home type", re.compile(r"key 'mount' is 'none', which only works with build-service")),
]
_WARNINGS = [
    ("unknown keys", "contains unknown keys"),
    ("extra_args split", "key 'extra_args' is a string"),
    ("grid engine ignored", "ignored 'backend: gridengine'"),
    ("deprecated type", "is deprecated"),
    ("buildservice-image ignored", "only applies to the buildservice type"),
    ("default type", "no type given"),
]


@dataclass(frozen=True)
class Outcome:
    kind: str  # service.template | service.manifest
    name: str  # the file's name in the corpus folder
    run: str  # the command line, after 'webservice'
    accepted: bool
    type: str  # the type rendered ('' when refused)
    detail: str  # warnings in short (accepted), the reason class and the error line (refused)
    reason: str = ""  # the reason class of a refusal
    error: str = ""  # the error line of a refusal, the home shown as ~
    error_lines: int = 0


def corpus_files(kinds: tuple[str, ...] = KINDS) -> list[tuple[str, Path]]:
    """Every (kind, path) of the corpus folders ``kinds``, sorted; [] when the corpus is
    absent. Shared with ``tests.runner_corpus_table``."""
    found = []
    for kind in kinds:
        folder = CORPUS / kind
        if folder.is_dir():
            found += [(kind, path) for path in sorted(folder.iterdir()) if path.is_file()]
    return found


def classify(error: str) -> str:
    for name, pattern in _CLASSES:
        if pattern.search(error):
            return name
    return "other"


def render(kind: str, path: Path, argv: list[str]) -> Outcome:
    """Render one corpus file with ``argv`` in a fresh tool home; return the outcome."""
    import yaml

    from tests.hardening.conftest import isolated, run_cli

    with isolated(ENV) as root:
        home = root / "home"
        shutil.copyfile(path, home / kind)  # into the temporary home only
        result = run_cli(argv, limit=30)
        err = result.err.replace(str(home), "~")
    lines = err.splitlines()
    errors = [line for line in lines if not line.startswith("webservice: warning: ")]
    run = " ".join(argv)
    if result.code == 0:
        deployment = next(yaml.safe_load_all(result.out))
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        rendered = image
        notes = [short for short, needle in _WARNINGS if needle in err]
        return Outcome(kind, path.name, run, True, _type_of(rendered), ", ".join(notes) or "-",
                       error_lines=len(errors))
    error = errors[0].removeprefix("webservice: error: ") if errors else err.strip()
    reason = classify(error)
    return Outcome(kind, path.name, run, False, "", f"{reason}: {error}", reason, error, len(errors))


def _type_of(image: str) -> str:
    """The type an image belongs to, in short: ``php74``, ``buildservice``."""
    match = re.search(r"/toolforge-([a-z]+\d*)-sssd-web", image)
    return match.group(1) if match else "buildservice"


@functools.lru_cache(maxsize=None)
def outcomes() -> tuple[Outcome, ...]:
    """Every run of the corpus, in order (computed once per process)."""
    rows = []
    for kind, path in corpus_files():
        rows.append(render(kind, path, ["start", "--dry-run"]))
        if kind == "service.manifest":
            rows.append(render(kind, path, [TYPE_GIVEN, "start", "--dry-run"]))
    return tuple(rows)


def cell(text: str) -> str:
    """``text`` safe in an RST list-table cell ("-" when empty)."""
    text = text.replace("\\", "\\\\").replace("`", "'").replace("*", "\\*").replace("|", "\\|")
    return text if text.strip() else "-"


def table(rows) -> str:
    accepted = sum(r.accepted for r in rows)
    lines = [
        "Real Toolforge files: what ``--dry-run`` makes of them",
        "=" * 56,
        "",
        "Generated by ``python -m tests.corpus_table`` from the files in ``../shared/corpus``",
        "(read at run time, never copied here); ``tests/test_corpus_dryrun.py`` checks every",
        "outcome and that this table is current. Each file is rendered as the tool ``mytool``",
        "in a fresh home with the built-in catalogue; a manifest also with a type given",
        f"(``{TYPE_GIVEN} start``), which must always be accepted.",
        "",
        f"{len(rows)} runs: {accepted} accepted, {len(rows) - accepted} refused. A refusal is one line",
        "naming the file and the key, for one of these reasons (runs of each in brackets):",
        "",
    ]
    lines += [f"- *{name}* ({sum(r.reason == name for r in rows)}): {why}" for name, why in JUSTIFIED.items()]
    lines += ["", ".. list-table::", "   :header-rows: 1", "   :widths: 40 20 8 10 40", "",
              "   * - file", "     - command", "     - outcome", "     - type", "     - notes / error"]
    for r in rows:
        lines += [f"   * - {cell(r.kind + '/' + r.name)}", f"     - ``{r.run}``",
                  f"     - {'accepted' if r.accepted else 'refused'}", f"     - {cell(r.type)}",
                  f"     - {cell(r.detail)}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    rows = outcomes()
    if not rows:
        print(f"no corpus at {CORPUS}", file=sys.stderr)
        return 1
    TABLE.parent.mkdir(exist_ok=True)
    TABLE.write_text(table(rows), encoding="utf-8")
    print(f"wrote {TABLE.relative_to(ROOT)} ({len(rows)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
