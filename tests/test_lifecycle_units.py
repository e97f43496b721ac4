"""Pure parts of start/restart/stop: preflight checks, manifest changes, Ctrl-C shielding."""

from __future__ import annotations

import os
import signal
from decimal import Decimal
from types import SimpleNamespace

import pytest

from webservice.actions import lifecycle
from webservice.actions import stop as stop_mod
from webservice.actions import preflight
from webservice.errors import PreflightError

GI = Decimal(2**30)
MI = Decimal(2**20)


def spec(cpu="0.5", mem=512, replicas=1, runner="uwsgi-python", type_name="python3.11"):
    cpu = Decimal(cpu)
    mem = Decimal(mem) * MI
    return SimpleNamespace(cpu_limit=cpu, cpu_request=cpu / 2, mem_limit=mem, mem_request=mem / 2,
                           replicas=replicas, runner=runner, type_name=type_name)


LIMITS = [{"metadata": {"name": "tool-mytool"}, "spec": {"limits": [
    {"type": "Container", "max": {"cpu": "1", "memory": "4Gi"}, "min": {"cpu": "50m", "memory": "100Mi"}}]}}]


def quota(used=None, **hard):
    hard = hard or {"requests.cpu": "2", "requests.memory": "6Gi", "limits.cpu": "2", "limits.memory": "8Gi",
                    "pods": "4"}
    return [{"metadata": {"name": "tool-mytool"}, "spec": {"hard": hard}, "status": {"hard": hard, "used": used or {}}}]


def test_within_limits():
    assert preflight.check_limits(spec(), LIMITS, quota()) == []


@pytest.mark.parametrize("the_spec,words", [
    (spec(mem=8192), ["--mem 8Gi", "maximum of 4Gi", "at most --mem 4Gi"]),
    (spec(cpu="2"), ["--cpu 2", "maximum of 1 cpu"]),
    (spec(cpu="0.06"), ["request 30m", "minimum of 50m"]),
])
def test_limit_range(the_spec, words):
    with pytest.raises(PreflightError) as caught:
        preflight.check_limits(the_spec, LIMITS, [])
    text = caught.value.message + " " + (caught.value.hint or "")
    for word in words:
        assert word in text


def test_quota_counts_what_others_use():
    used = {"limits.memory": "7Gi", "pods": "1"}
    with pytest.raises(PreflightError, match="other workloads already use 7Gi"):
        preflight.check_limits(spec(mem=2048), [], quota(used))
    with pytest.raises(PreflightError, match="5 pod"):
        preflight.check_limits(spec(cpu="0.1", mem=100, replicas=5), [], quota())


def test_restart_gives_back_what_the_current_pods_use_and_warns_without_surge_room():
    current = {"spec": {"replicas": 2, "template": {"spec": {"containers": [
        {"resources": {"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "250m", "memory": "512Mi"}}}]}}}}
    used = {"limits.memory": "8Gi", "pods": "4", "limits.cpu": "1", "requests.cpu": "500m", "requests.memory": "1Gi"}
    warnings = preflight.check_limits(spec(mem=1024, replicas=2), [], quota(used), current)
    assert warnings and "one at a time" in warnings[0]
    with pytest.raises(PreflightError):
        preflight.check_limits(spec(mem=1024, replicas=2), [], quota(used), None)


def test_unreadable_quantities_are_skipped():
    assert preflight.check_limits(spec(), [{"spec": {"limits": [{"type": "Container", "max": {"cpu": "lots"}}]}}],
                                  quota(**{"limits.cpu": "??"})) == []


def test_required_files(tmp_path):
    wstype = SimpleNamespace(required=(("www/python/src/app.py",),))
    with pytest.raises(PreflightError, match=r"needs ~/www/python/src/app.py"):
        preflight.check_files(tmp_path, wstype, spec())
    (tmp_path / "www/python/src").mkdir(parents=True)
    (tmp_path / "www/python/src/app.py").write_text("")
    preflight.check_files(tmp_path, wstype, spec())
    either = SimpleNamespace(required=(("public_html", ".lighttpd.conf"),))
    with pytest.raises(PreflightError, match="~/public_html or ~/.lighttpd.conf"):
        preflight.check_files(tmp_path, either, spec(runner="lighttpd", type_name="php8.2"))


def test_nodejs_needs_a_start_script(tmp_path):
    node = spec(runner="nodejs", type_name="node18")
    wstype = SimpleNamespace(required=(("www/js/package.json",),))
    (tmp_path / "www/js").mkdir(parents=True)
    (tmp_path / "www/js/package.json").write_text('{"scripts": {"test": "x"}}')
    with pytest.raises(PreflightError, match='no "start" script'):
        preflight.check_files(tmp_path, wstype, node)
    (tmp_path / "www/js/package.json").write_text("{nope")
    with pytest.raises(PreflightError, match="not valid JSON"):
        preflight.check_files(tmp_path, wstype, node)
    (tmp_path / "www/js/package.json").write_text('{"scripts": {"start": "node s.js"}}')
    preflight.check_files(tmp_path, wstype, node)


def test_manifest_changes():
    values = {"web": "python3.11", "backend": "kubernetes", "cpu": None, "memory": "1Gi", "replicas": None,
              "buildservice-image": None, "web::extra_args": None, "health-check-path": "/healthz", "mount": None}
    new = lifecycle._start_change(values)({"version": 4, "replicas": 2, "other": 1, "cpu": "1"})
    assert new == {"version": 4, "web": "python3.11", "backend": "kubernetes", "memory": "1Gi", "other": 1,
                   "health-check-path": "/healthz"}
    assert stop_mod._stop_change(new) == {"version": 4, "other": 1}
    assert stop_mod._stop_change({"version": 4, "web": "x"}) == {"version": 4}
    assert stop_mod._stop_change({}) == {}


def test_started_at_always_changes_on_restart():
    assert lifecycle._later("2026-11-26T22:00:00Z", "2026-11-26T21:00:00Z") == "2026-11-26T22:00:00Z"
    assert lifecycle._later("2026-11-26T23:59:59Z", "2026-11-26T23:59:59Z") == "2026-11-27T00:00:00Z"


def test_changes_in_words():
    def dep(mem, replicas, image="a"):
        return {"spec": {"replicas": replicas, "template": {"spec": {"containers": [
            {"name": "webservice", "image": image, "resources": {"limits": {"cpu": "500m", "memory": mem}}}]}}}}

    assert lifecycle._changes(None, dep("1Gi", 1)) == []
    assert lifecycle._changes(dep("512Mi", 2), dep("1Gi", 1, "b")) == ["memory 512Mi -> 1Gi", "replicas 2 -> 1",
                                                                      "image a -> b"]


def test_ctrl_c_is_deferred_until_the_changes_are_made():
    done = []
    with lifecycle._shielded() as received:
        os.kill(os.getpid(), signal.SIGINT)
        done.append("applied")
        done.append("saved")
    assert done == ["applied", "saved"] and received == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
