"""Render and lint a Helm chart with Helm's own template engine, in a child process.

There is no ``helm`` binary for Debian bookworm; the ``helm-python-sdk`` wheel (pinned in
``.ci/helm-requirements.txt``, installed by ``.ci/setup``) carries Helm v4's Go SDK as a C
library. This module runs it in a separate Python process, so that the Go runtime (its
threads and signal handlers) never lives inside the pytest process, and turns Helm's
errors into :class:`HelmError` with Helm's own message.

It does not parse the manifests (the tests do) and never contacts a cluster: rendering is
offline (``lookup`` returns nothing).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REQUIREMENT = "helm-python-sdk==0.2.2 (.ci/helm-requirements.txt; .ci/setup installs it)"


class HelmError(Exception):
    """Helm refused the chart or the values; the message is Helm's."""


def available() -> bool:
    return importlib.util.find_spec("helm_python") is not None


def _run(request: dict) -> dict:
    result = subprocess.run([sys.executable, str(Path(__file__).resolve())], input=json.dumps(request),
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"the Helm child process failed ({result.returncode}): {result.stderr.strip()}")
    answer = json.loads(result.stdout)
    if "error" in answer:
        raise HelmError(answer["error"])
    return answer


def render(chart: Path, values: dict | None = None, *, name: str, namespace: str) -> dict[str, str]:
    """``helm template NAME CHART -n NAMESPACE -f values``: template path -> rendered text."""
    return _run({"op": "render", "chart": str(chart), "values": values or {}, "name": name,
                 "namespace": namespace})["manifests"]


def lint(chart: Path, *, namespace: str) -> list[dict]:
    """``helm lint --strict``: the findings, each ``{"severity", "path", "error"}``."""
    answer = _run({"op": "lint", "chart": str(chart), "namespace": namespace})
    return answer["messages"] + [{"severity": 3, "path": "", "error": e} for e in answer["errors"]]


def version() -> str:
    return _run({"op": "version"})["version"]


def _child() -> None:
    import helm_python as helm

    request = json.load(sys.stdin)
    try:
        if request["op"] == "render":
            with helm.Chart.load(request["chart"]) as chart:
                manifests = chart.render(request["values"], name=request["name"], namespace=request["namespace"])
            answer = {"manifests": manifests}
        elif request["op"] == "lint":
            report = helm.lint(request["chart"], strict=True, namespace=request["namespace"])
            answer = {"messages": report.get("messages") or [], "errors": report.get("errors") or []}
        else:
            answer = {"version": helm.helm_sdk_version()}
    except helm.HelmError as exc:
        answer = {"error": str(exc)}
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    _child()
