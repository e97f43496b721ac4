#!/usr/bin/env python3
"""Mutation score: apply a fixed list of hand-made mutations to the core modules, one at a
time, and run the tests that should notice each; report how many were killed.

Usage (from a clone, after ``.ci/setup``)::

    .venv/bin/python bench/mutation.py [--only SUBSTRING] [--out bench/results]

Each mutant is a change a careless edit could make (a loosened check, an off-by-one, a
dropped label, a swapped exit code). It is applied to a copy of the repository in a
temporary folder (the working tree is never touched), the mutant's tests run there with
``-x``, and the mutant counts as *killed* when they fail. A mutant marked equivalent (it
changes no behaviour, said why) is listed but left out of the score. The run starts with
the unmutated copy, which must pass, and checks that the copy is what gets imported.

Writes ``mutation.md`` in ``--out``. ``tests/test_mutation.py`` checks, without running
anything, that every mutant still applies to today's code (so the list cannot rot).
The target is at least 95% of the non-equivalent mutants killed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    path: str  # relative to the repository root
    what: str  # one line: what the mutation breaks
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]
    equivalent: str = ""  # why it changes no behaviour (then it is not scored)


M = Mutant
MUTANTS = [
    # --- quantities (the request rule, limits of the syntax) ---
    M("webservice/model/quantity.py", "cpu request not halved above the threshold",
      "half = (limit * 1000 / 2)", "half = (limit * 1000 / 1)", ("tests/test_quantity.py",)),
    M("webservice/model/quantity.py", "cpu threshold off by one side",
      "if limit < CPU_REQUEST_THRESHOLD:", "if limit <= CPU_REQUEST_THRESHOLD:", ("tests/test_quantity.py",)),
    M("webservice/model/quantity.py", "memory request rounding down",
      'return (limit / 2).to_integral_value(rounding="ROUND_CEILING")',
      'return (limit / 2).to_integral_value(rounding="ROUND_FLOOR")', ("tests/test_quantity.py",)),
    M("webservice/model/quantity.py", "zero cpu accepted",
      "    if value <= 0:\n        raise InputError(f\"{what}: must be more than 0, got {shorten(text, 40)!r}\", hint=CPU_EXAMPLES)",
      "    if value < 0:\n        raise InputError(f\"{what}: must be more than 0, got {shorten(text, 40)!r}\", hint=CPU_EXAMPLES)",
      ("tests/test_quantity.py",)),
    M("webservice/model/quantity.py", "memory below 1Mi accepted (forgotten unit)",
      "if value < 2**20:", "if value < 2**10:", ("tests/test_quantity.py",)),
    M("webservice/model/quantity.py", "exponent bound dropped",
      "if abs(exponent) > 30:", "if abs(exponent) > 3000:", ("tests/test_quantity.py",)),
    M("webservice/model/quantity.py", "overlong quantity text accepted",
      "if len(candidate) <= 64 else None", "if len(candidate) <= 6400 else None", ("tests/test_quantity.py",)),
    # --- the spec: what may run ---
    M("webservice/model/spec.py", "more than 16 replicas accepted",
      "MAX_REPLICAS = 16", "MAX_REPLICAS = 160", ("tests/test_cli.py", "tests/test_lifecycle_units.py")),
    M("webservice/model/spec.py", "replicas 0 accepted from the template or manifest",
      "not 1 <= replicas <= MAX_REPLICAS", "not 0 <= replicas <= MAX_REPLICAS", ("tests/test_cli.py",)),
    M("webservice/model/spec.py", "health-check path with spaces accepted",
      r'_HEALTH_PATH = re.compile(r"^/[\x21-\x7e]{0,1023}\Z")', r'_HEALTH_PATH = re.compile(r"^/[\x20-\x7e]{0,1023}\Z")',
      ("tests/test_cli.py",)),
    M("webservice/model/spec.py", "health-check path with a final newline accepted",
      r'_HEALTH_PATH = re.compile(r"^/[\x21-\x7e]{0,1023}\Z")', r'_HEALTH_PATH = re.compile(r"^/[\x21-\x7e]{0,1023}$")',
      ("tests/test_cli.py",)),
    M("webservice/model/spec.py", "--mount none allowed for types that serve the tool's home",
      'if mount == "none":', 'if mount == "never":', ("tests/test_cli.py",)),
    M("webservice/model/spec.py", "default cpu request not following the rule",
      'DEFAULT_REQUESTS = {"cpu": quantity.cpu_request_for(DEFAULT_LIMITS["cpu"]),',
      'DEFAULT_REQUESTS = {"cpu": Decimal("0.125"),', ("tests/test_objects.py",)),
    # --- the tool name ---
    M("webservice/model/tool.py", "tool names longer than 58 accepted",
      'TOOL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,56}[a-z0-9])?$")',
      'TOOL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,60}[a-z0-9])?$")', ("tests/test_tool.py",)),
    M("webservice/model/tool.py", "upper-case tool names accepted",
      'TOOL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,56}[a-z0-9])?$")',
      'TOOL_NAME = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,56}[a-zA-Z0-9])?$")', ("tests/test_tool.py",)),
    # --- the objects ---
    M("webservice/conventions.py", "port 8000 changed", "PORT = 8000", "PORT = 8080", ("tests/test_objects.py",)),
    M("webservice/builders/objects.py", "restarts drop serving pods (no surge)",
      '"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}', '"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}',
      ("tests/test_objects.py",)),
    # --- status ---
    M("webservice/actions/status.py", "running while pods of the old template still run",
      "    if updated >= desired and not others:", "    if updated >= desired:", ("tests/test_diagnose.py",)),
    M("webservice/actions/status.py", "scaled to zero counted as running",
      '    if desired == 0:\n        return "degraded", replicas', '    if desired == -1:\n        return "degraded", replicas',
      ("tests/test_diagnose.py",)),
    M("webservice/actions/status.py", "a certain problem with a serving pod called crashing",
      'return ("degraded" if ready else "crashing"), replicas', 'return "crashing", replicas', ("tests/test_diagnose.py",)),
    # --- the CLI: exit codes and flags scripts rely on ---
    M("webservice/ui/cli.py", "plain status exits with the state again",
      "    if not check and not request.json and code in _STATE_CODES:", "    if False:",
      ("tests/test_lifecycle_e2e.py",)),
    M("webservice/ui/cli.py", "--json after '--' taken as ours",
      'ours = args[:args.index("--")] if "--" in args else args', "ours = args", ("tests/test_cli.py",)),
    M("webservice/ui/cli.py", "replicas 0 accepted by the option (the spec still refuses)",
      "if count is None or not 1 <= count <= MAX_REPLICAS:", "if count is None or not 0 <= count <= MAX_REPLICAS:",
      ("tests/test_cli.py",), equivalent="the spec refuses replicas 0 from every source with the same exit code; "
      "only the wording of the message differs, and the tests check the option's wording for 17 and 'many'"),
    M("webservice/ui/cli.py", "non-ASCII digits accepted for --replicas",
      'all("0" <= c <= "9" for c in text)', "text.isdigit()", ("tests/test_cli.py",)),
    # --- the cluster boundary ---
    M("webservice/kube/cluster.py", "a kubeconfig for another namespace accepted",
      "if wanted and namespace != wanted:", "if False:", ("tests/test_cluster.py", "tests/test_lifecycle_e2e.py")),
    M("webservice/kube/cluster.py", "a 503 not retried",
      "_RETRY_STATUS = {429, 500, 502, 503, 504}", "_RETRY_STATUS = {429, 500, 502, 504}", ("tests/test_cluster.py",)),
    M("webservice/kube/cluster.py", "writes retried like reads",
      'idempotent = method in ("GET", "DELETE", "HEAD")', 'idempotent = method in ("GET", "DELETE", "HEAD", "POST", "PATCH")',
      ("tests/test_cluster.py",), equivalent="the client sends no POST, and its PATCHes are server-side applies, "
      "which are retried on purpose (idempotent: tests/test_cluster.py::test_apply_is_retried_on_503)"),
    M("webservice/kube/kubeconfig.py", "kubeconfig size bound dropped",
      "MAX_KUBECONFIG_BYTES = 1 << 20", "MAX_KUBECONFIG_BYTES = 1 << 40", ("tests/test_cluster.py", "tests/hardening/test_bad_input.py")),
    # --- ownership: only objects with our labels ---
    M("webservice/health/owners.py", "objects of another manager counted as ours",
      'return (labels.get(COMPONENT) == WEB_COMPONENT and labels.get(MANAGED_BY) == MANAGER',
      'return (labels.get(COMPONENT) == WEB_COMPONENT', ("tests/test_lifecycle_e2e.py", "tests/hardening/test_security.py",
                                                  "tests/test_preflight_conflicts.py")),
    # --- sharing the namespace: other owners' objects, hosts and quotas ---
    M("webservice/actions/preflight.py", "an object named like ours but not ours taken over",
      "if owners.name_of(obj) == name and not owners.ours(obj, namespace):", "if False:",
      ("tests/test_preflight_conflicts.py", "tests/test_conflicts_e2e.py", "tests/test_lifecycle_e2e.py")),
    M("webservice/actions/preflight.py", "another owner's route on our host not refused",
      "if any(host == my_host and _overlap(path, my_path) for my_host, my_path in mine):", "if False:",
      ("tests/test_preflight_conflicts.py", "tests/test_conflicts_e2e.py")),
    M("webservice/actions/preflight.py", "the quota's object counts ignored",
      "if limit is None or in_use is None or in_use + 1 <= limit:", "if True:",
      ("tests/test_preflight_conflicts.py", "tests/test_conflicts_e2e.py")),
    M("webservice/actions/preflight.py", "a restart counts its own Service against the quota",
      "if any(owners.name_of(o) == name and owners.ours(o, namespace) for o in items):", "if False:",
      ("tests/test_preflight_conflicts.py", "tests/test_conflicts_e2e.py")),
    M("webservice/actions/stop.py", "delete without the uid precondition",
      'if cluster.delete(kind, meta["name"], uid=meta.get("uid")):', 'if cluster.delete(kind, meta["name"]):',
      ("tests/test_lifecycle_e2e.py", "tests/hardening/test_concurrency.py", "tests/hardening/test_security.py")),
    # --- logs ---
    M("webservice/kube/cluster.py", "logs not following (follow flag dropped at the boundary)",
      '"follow": follow}', '"follow": False}', ("tests/test_cluster.py",)),
]


def _copy(destination: Path) -> None:
    for name in ("webservice", "tests", "bench", "completions", "man", "debian", "deploy", "docs"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("setup.cfg", "pyproject.toml", "README.rst"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, destination / name)
    shared = ROOT.parent / "shared"  # tests read ../shared/corpus when it is there
    if shared.exists() and not (destination.parent / "shared").exists():
        os.symlink(shared, destination.parent / "shared")


def check(mutant: Mutant, root: Path = ROOT) -> str | None:
    """Why ``mutant`` no longer applies to the code under ``root``, or None."""
    path = root / mutant.path
    if not path.exists():
        return f"{mutant.path} does not exist"
    count = path.read_text(encoding="utf-8").count(mutant.old)
    if count != 1:
        return f"{mutant.path}: the text to mutate occurs {count} times (must be once): {mutant.old[:60]!r}"
    missing = [t for t in mutant.tests if not (root / t.split("::")[0]).exists()]
    return f"tests not found: {missing}" if missing else None


def _pytest(copy: Path, tests, timeout: float) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *tests]
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, "timed out (counted as killed: the mutant hangs the tests)"
    return done.returncode, (done.stdout + done.stderr).strip().splitlines()[-1:][0] if (done.stdout + done.stderr).strip() else ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run only the mutants whose description contains this")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    broken = [(m, why) for m in MUTANTS if (why := check(m))]
    if broken:
        for m, why in broken:
            print(f"does not apply: {m.what}: {why}", file=sys.stderr)
        return 2
    chosen = [m for m in MUTANTS if not args.only or args.only in m.what]
    rows = []
    with tempfile.TemporaryDirectory(prefix="webservice-mutation-") as tmp:
        copy = Path(tmp) / "repo"
        copy.mkdir()
        _copy(copy)
        probe = subprocess.run([sys.executable, "-c", "import webservice; print(webservice.__file__)"], cwd=copy,
                               env=dict(os.environ, PYTHONPATH=str(copy)), capture_output=True, text=True, check=True)
        if not probe.stdout.strip().startswith(str(copy)):
            print(f"the copy is not what gets imported ({probe.stdout.strip()})", file=sys.stderr)
            return 2
        tests = sorted({t for m in chosen for t in m.tests})
        code, last = _pytest(copy, tests, args.timeout)
        if code != 0:
            print(f"the unmutated tests fail in the copy: {last}", file=sys.stderr)
            return 2
        for mutant in chosen:
            target = copy / mutant.path
            original = target.read_text(encoding="utf-8")
            target.write_text(original.replace(mutant.old, mutant.new), encoding="utf-8")
            began = time.monotonic()
            try:
                code, last = _pytest(copy, mutant.tests, args.timeout)
            finally:
                target.write_text(original, encoding="utf-8")
            killed = code != 0
            rows.append((mutant, killed, time.monotonic() - began, last))
            verdict = "equivalent" if mutant.equivalent else ("killed" if killed else "SURVIVED")
            print(f"{verdict:10} {time.monotonic() - began:6.1f}s  {mutant.path}: {mutant.what}", flush=True)
    scored = [(m, k) for m, k, _, _ in rows if not m.equivalent]
    killed = sum(1 for _, k in scored if k)
    score = 100.0 * killed / len(scored) if scored else 0.0
    print(f"\nmutation score: {killed}/{len(scored)} non-equivalent mutants killed ({score:.1f}%)")
    if not args.only:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        lines = ["# Mutation score", "", f"{killed} of {len(scored)} non-equivalent mutants killed: **{score:.1f}%** "
                 f"(target 95%); {len(rows) - len(scored)} equivalent. Made by `bench/mutation.py`.", "",
                 "| module | mutation | result | seconds |", "|---|---|---|---|"]
        for m, k, seconds, _ in rows:
            result = f"equivalent: {m.equivalent}" if m.equivalent else ("killed" if k else "**survived**")
            lines.append(f"| `{m.path.split('/', 1)[1]}` | {m.what} | {result} | {seconds:.1f} |")
        (out / "mutation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0 if score >= 95.0 else 1


if __name__ == "__main__":
    sys.exit(main())
