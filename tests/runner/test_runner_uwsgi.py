"""``uwsgi-python`` and ``uwsgi-plain`` through webservice-runner, with real uWSGI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.runner import support
from tests.runner.support import get

# a plain WSGI function, no framework: what a Flask app looks like to uWSGI
APP = """\
import json, os, sys
print("app.py imported", flush=True)

def app(environ, start_response):
    print("request for " + environ["PATH_INFO"])
    sys.stderr.write("stderr from the app\\n")
    body = json.dumps({
        "script_name": environ.get("SCRIPT_NAME", ""),
        "path_info": environ.get("PATH_INFO"),
        "query": environ.get("QUERY_STRING"),
        "uri": environ.get("REQUEST_URI"),
        "port": os.environ.get("PORT"),
        "prefix": os.environ.get("WEBSERVICE_PATH_PREFIX"),
        "extra": __import__("extra_dep").VALUE if os.environ.get("WANT_EXTRA") else None,
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
"""


@pytest.fixture
def py_home(home):
    support.require("uwsgi", "uwsgi-python3")
    src = home / "www" / "python" / "src"
    src.mkdir(parents=True)
    (src / "app.py").write_text(APP)
    return home


def test_wsgi_app_at_root_without_venv(py_home, servers):
    server = servers.runner(["--type", "uwsgi-python"], py_home)
    r = get(server.port, "/hello/world?x=1")
    assert r.status == 200, r
    data = json.loads(r.body)
    assert data["path_info"] == "/hello/world" and data["query"] == "x=1" and data["script_name"] == ""
    assert data["port"] == str(server.port) and data["prefix"] is None
    # the app's prints and uWSGI's request log reach the runner's output
    server.wait_output("app.py imported")
    server.wait_output("request for /hello/world")
    server.wait_output("stderr from the app")
    server.wait_output("GET /hello/world?x=1")
    code = server.stop()
    assert server.stop_seconds < 6, server.stop_seconds
    assert code == 0, server.output()


def test_wsgi_app_under_the_legacy_prefix(py_home, servers):
    server = servers.runner(["--type", "uwsgi-python"], py_home, WEBSERVICE_PATH_PREFIX="/mytool")
    r = get(server.port, "/mytool/x?y=1")
    assert r.status == 200, r
    data = json.loads(r.body)
    # mounted at /mytool: Flask sees SCRIPT_NAME=/mytool, PATH_INFO=/x, the full URI kept
    assert (data["script_name"], data["path_info"], data["query"], data["uri"]) == ("/mytool", "/x", "y=1", "/mytool/x?y=1")
    assert data["prefix"] == "/mytool"
    assert json.loads(get(server.port, "/mytool/").body)["path_info"] == "/"
    for path, location in (("/mytool", "/mytool/"), ("/mytool?y=1&z=%2F", "/mytool/?y=1&z=%2F")):
        r = get(server.port, path)
        assert r.status == 302 and r.headers["location"] == location, (path, r)
    server.stop()


def test_venv_and_uwsgi_ini_are_used(py_home, servers):
    support.require("python3-venv")
    venv = py_home / "www" / "python" / "venv"
    subprocess.run([support.SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    (Path(site) / "extra_dep.py").write_text("VALUE = 'from the venv'\n")
    (py_home / "www" / "python" / "uwsgi.ini").write_text("[uwsgi]\nenv = WANT_EXTRA=1\nprocesses = 1\n")
    server = servers.runner(["--type", "uwsgi-python"], py_home)
    data = json.loads(get(server.port, "/").body)
    assert data["extra"] == "from the venv"
    server.stop()


def test_app_that_does_not_load_fails_instead_of_serving_errors(py_home):
    (py_home / "www" / "python" / "src" / "app.py").write_text("raise RuntimeError('broken app')\n")
    result = support.run_runner(["--type", "uwsgi-python", "--port", str(support.free_port()), "--bind", "127.0.0.1"], py_home, timeout=30)
    assert result.returncode != 0
    assert "broken app" in result.stderr


def test_uwsgi_plain_with_the_tools_ini(home, servers):
    support.require("uwsgi", "uwsgi-python3")
    (home / "app").mkdir()
    (home / "app" / "main.py").write_text(APP)
    (home / "uwsgi.ini").write_text(f"[uwsgi]\nchdir = {home}/app\nwsgi-file = main.py\ncallable = app\nprocesses = 1\n")
    server = servers.runner(["--type", "uwsgi-plain"], home)
    data = json.loads(get(server.port, "/plain").body)
    assert data["path_info"] == "/plain" and data["port"] == str(server.port)
    server.stop()


OTHER = """\
def app(environ, start_response):  # the runner gives --callable app, for every mount
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("other app " + environ["SCRIPT_NAME"] + " " + environ["PATH_INFO"]).encode()]
"""
DATA = Path(__file__).resolve().parent.parent / "data" / "runner" / "uwsgi"


def test_apps_mounted_in_uwsgi_ini_are_routed_by_path(py_home, servers):
    """``mount =`` in ~/www/python/uwsgi.ini: uWSGI picks the app by SCRIPT_NAME, which it
    sets only with --manage-script-name (the old launcher always gave it)."""
    (py_home / "www" / "python" / "src" / "other.py").write_text(OTHER)
    (py_home / "www" / "python" / "uwsgi.ini").write_text((DATA / "mounts.ini").read_text())
    server = servers.runner(["--type", "uwsgi-python"], py_home)
    data = json.loads(get(server.port, "/mytool/x?y=1").body)
    assert (data["script_name"], data["path_info"], data["query"]) == ("/mytool", "/x", "y=1")
    r = get(server.port, "/ws/socket")
    assert r.status == 200 and r.text == "other app /ws /socket", r
    server.stop()


def test_uwsgi_plain_mount_is_routed_by_path(home, servers):
    support.require("uwsgi", "uwsgi-python3")
    (home / "app").mkdir()
    (home / "app" / "main.py").write_text(APP)
    (home / "uwsgi.ini").write_text((DATA / "plain.ini").read_text().replace("@HOME@", str(home)))
    server = servers.runner(["--type", "uwsgi-plain"], home)
    data = json.loads(get(server.port, "/mytool/page").body)
    assert (data["script_name"], data["path_info"]) == ("/mytool", "/page")
    server.stop()


@pytest.mark.parametrize("line,where", [
    ("venv = www/python/venv", "src/www/python/venv"),  # relative: from the runner's directory
    ("home = @HOME@/ENV", "mytool/ENV"),
    ("virtualenv = venv", "elsewhere/venv"),  # relative to the ini's chdir
])
def test_a_virtualenv_that_does_not_exist_is_named_with_its_line(py_home, line, where):
    (py_home / "elsewhere").mkdir()
    ini = py_home / "www" / "python" / "uwsgi.ini"
    extra = f"chdir = {py_home}/elsewhere\n" if "elsewhere" in where else ""
    ini.write_text(f"[uwsgi]\n; venv = commented\n{extra}{line.replace('@HOME@', str(py_home))}\n[other]\nvenv = /not/ours\n")
    result = support.run_runner(["--type", "uwsgi-python", "--port", str(support.free_port())], py_home)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    n = 4 if extra else 3
    assert lines[0].startswith(f"webservice-runner: error: {ini} line {n}: {line.replace('@HOME@', str(py_home))}  (no such directory "), lines
    assert where in lines[0] and "Traceback" not in result.stderr


def test_uwsgi_magic_in_a_virtualenv_line_is_left_to_uwsgi(py_home):
    from webservice.runner import uwsgi

    ini = py_home / "www" / "python" / "uwsgi.ini"
    ini.write_text("[uwsgi]\nvenv = %d/venv\nhome = $(VIRTUAL_ENV)\n")
    uwsgi.check_ini(str(ini), str(py_home))  # no error: uWSGI expands these itself
