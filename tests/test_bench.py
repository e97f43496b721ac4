"""The benchmark's own logic (bench/bench.py): how it names requests and judges budgets.
It measures nothing here; timings are the script's business, not the tests'."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    path = ROOT / "bench" / "bench.py"
    if not path.exists():
        pytest.skip("bench/ is not shipped with the installed package")
    spec = importlib.util.spec_from_file_location("webservice_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(method, path, query=None, content_type=""):
    return SimpleNamespace(method=method, path=path, query=query or {}, content_type=content_type)


@pytest.mark.parametrize(
    "request_,expected",
    [
        (record("GET", "/apis/apps/v1/namespaces/tool-x/deployments"), "GET deployments (list)"),
        (record("GET", "/api/v1/namespaces/tool-x/pods", {"watch": "true"}), "GET pods (watch)"),
        (record("GET", "/api/v1/namespaces/tool-x/pods/x-1/log", {"tailLines": "100"}), "GET pods/NAME/log"),
        (record("PATCH", "/apis/networking.k8s.io/v1/namespaces/tool-x/ingresses/x", {},
                "application/apply-patch+yaml"), "PATCH ingresses/NAME (apply)"),
        (record("DELETE", "/api/v1/namespaces/tool-x/services/x"), "DELETE services/NAME"),
    ],
)
def test_describe_names_requests_without_the_tool(bench, request_, expected):
    assert bench.describe(request_) == expected


def _row(case, kinds, env="bookworm", median=0.1):
    return {"env": env, "case": case, "wall": {"median": median}, "requests": sum(kinds.values()),
            "request_kinds": kinds}


def test_an_unjustified_request_fails_its_row(bench):
    floors = {"bookworm": {"interpreter": {"median": 0.02}}}
    rows = [_row("status-running", {"GET deployments (list)": 1, "GET pods (list)": 1}),
            _row("status-stopped", {"GET deployments (list)": 1, "GET configmaps (list)": 1})]
    verdicts = {(b["case"], b["budget"].split(" (")[0]): b for b in bench.budgets(rows, floors)}
    assert verdicts[("status-running", "no request it does not need")]["met"] is True
    stopped = verdicts[("status-stopped", "no request it does not need")]
    assert stopped["met"] is False and "GET configmaps (list)" in stopped["budget"]


def test_time_budgets(bench):
    floors = {"pypi": {"interpreter": {"median": 0.02}}, "bookworm": {"interpreter": {"median": 0.02}}}
    rows = [_row("dry-run", {}, env="pypi", median=0.149), _row("help", {}, env="pypi", median=0.151),
            _row("status-running", {}, median=0.41)]
    rows[0]["imports_kubernetes"] = False
    rows[1]["imports_kubernetes"] = False
    timed = {b["case"]: b["met"] for b in bench.budgets(rows, floors) if b["measured"] is not None}
    assert timed == {"dry-run": True, "help": False, "status-running": False}


def test_every_case_has_its_reasons(bench):
    for case in ("status-stopped", "status-running", "start", "restart", "logs-last-100", "stop"):
        assert bench.WHY[case] and all(isinstance(v, str) and len(v) > 20 for v in bench.WHY[case].values())


def test_the_table_shows_each_median_next_to_its_floor_and_the_ratio(bench):
    row = _row("status-running", {"GET deployments (list)": 1, "GET pods (list)": 1, "GET ingresses (list)": 1},
               median=0.3)
    row.update(wall={"median": 0.3, "min": 0.29, "max": 0.35}, peak_rss_kb=70 * 1024, requests_range=[3, 3])
    floors = {"bookworm": {"interpreter": {"median": 0.02}, "requests": {"3": {"median": 0.1}}}}
    result = {"date": "d", "machine": "m", "runs": 3, "rows": [row], "floors": floors}
    result["budgets"] = bench.budgets([row], floors)
    text = bench.markdown(result)
    assert "| bookworm | status-running | 300.0 | 290-350 | 3 | 100.0 | 3.0x | 70.0 |" in text
    assert "| median <= 0.40 s (bookworm libraries) | bookworm | status-running | 300.0 | 20.0 | met |" in text
    assert "| `GET pods (list)` | 1 | its pods:" in text
