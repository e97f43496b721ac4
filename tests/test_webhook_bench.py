"""bench/webhook_load.py works (tiny counts): it starts the real server, every review it sends
is answered correctly, and it writes its results. No figure is judged here: speed is the
script's business (bench/results/webhook.md), not the tests'."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    path = ROOT / "bench" / "webhook_load.py"
    if not path.exists():
        pytest.skip("bench/ is not shipped with the installed package")
    spec = importlib.util.spec_from_file_location("webhook_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("rate", [0.0, 400.0], ids=["closed-loop", "open-loop"])
def test_a_tiny_run_answers_every_review_correctly(bench, tmp_path, rate):
    result = bench.run(reviews=40, clients=2, procs=1, rounds=2, rate=rate)
    assert result["reviews"] == 40 and result["errors"] == 0, result["error_samples"]
    assert len(result["rss_kb"]) == 3 and all(kb > 0 for kb in result["rss_kb"])
    assert result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["server_exit"] == 0  # SIGTERM: a graceful stop


def test_the_mix_expects_the_decisions_the_rule_makes(bench):
    from webservice.webhook import config
    from webservice.webhook.review import review

    conf = config.load({}, environ={})
    for i, (obj, namespace, group, kind, expected) in enumerate(bench.MIX):
        body, uid = bench.review_request(i, obj, namespace, group, kind)
        answer, _ = review(json.loads(body.split(b"\r\n\r\n", 1)[1]), conf.policy(), conf.exempt_namespaces)
        assert answer["response"]["allowed"] is expected and answer["response"]["uid"] == uid


def test_verdicts_and_markdown(bench):
    result = {"date": "d", "machine": "m", "cpus": 2, "python": "3.11", "clients": 8, "procs": 2, "rounds": 3,
              "rate": None, "reviews": 300, "errors": 0, "seconds": 0.2, "reviews_per_s": 1500.0, "p50_ms": 1.0,
              "p90_ms": 2.0, "p99_ms": 25.0, "max_ms": 30.0, "rss_kb": [20000, 21000, 21100, 27000]}
    verdicts = dict(bench.verdicts(result))
    assert verdicts == {">= 1000 reviews/s": True, "p99 < 20 ms": False, "no errors": True,
                        "flat memory (growth after the first round < 5 MiB)": False}
    text = bench.markdown(result)
    assert "| 300 | 0.2 | 1500.0 | 1.0 | 2.0 | 25.0 | 30.0 | 0 |" in text
    assert "| p99 < 20 ms | NOT met |" in text
