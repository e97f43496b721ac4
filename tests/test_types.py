"""``webservice types``: the table and ``--json`` from the cluster's catalogue (the stand-in's
differs from the built-in list: golang1.21, not golang1.11), the offline fallbacks, and a
non-tool user (anyone may ask which types exist)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_types_from_the_cluster(ws_env):
    result = ws_env.run("types")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TYPE", "RUNNER", "IMAGE", "STATE"]
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert "golang1.21" in rows and "golang1.11" not in rows  # the cluster's list, not the built-in
    assert rows["php7.4"][-3:] == ["deprecated:", "use", "php8.2"]
    assert rows["python3.9"][-3:] == ["deprecated:", "use", "python3.11"]
    assert rows["python3.11"][1] == "uwsgi-python" and rows["python3.11"][-1] == "stable"
    assert all(line == line.rstrip() for line in lines)  # no padding at line ends (scripts cut them)
    assert lines[-1].startswith("From the cluster's image catalogue")
    assert result.stderr == ""


def test_types_json(ws_env):
    result = ws_env.run("types", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["source"] in ("cluster", "cache") and data["fetched_at"]
    by_name = {t["name"]: t for t in data["types"]}
    assert by_name["node16"] == {**by_name["node16"], "deprecated": True, "replacement": "node18"}
    assert by_name["buildservice"]["image"] is None and by_name["buildservice"]["runner"] is None
    assert by_name["php8.2"]["image"].endswith("toolforge-php82-sssd-web:latest")
    assert by_name["php8.2"]["deprecated"] is False and by_name["php8.2"]["replacement"] is None


def test_types_without_credentials_lists_the_offline_list_and_says_why(ws_env):
    os.unlink(ws_env.kubeconfig)
    result = ws_env.run("types", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["source"] == "builtin"
    assert "listing the types known offline" in result.stderr and len(result.stderr.splitlines()) == 1


def test_types_for_someone_who_is_not_a_tool(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "WEBSERVICE_TOOL"}
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-m", "webservice", "types"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr  # the Unix user is not a tool: no error, no warning
    assert result.stderr == ""
    assert "python3.11" in result.stdout and "From the built-in list" in result.stdout
