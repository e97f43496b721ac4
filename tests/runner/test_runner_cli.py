"""webservice-runner's command line, environment contract and fail-fast checks (no servers)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runner import support
from webservice.runner import cli
from webservice.runner.context import Context, RunnerError, normalize_prefix, tool_name

RUNNER_DIR = Path(cli.__file__).resolve().parent


def parse(argv, environ=None):
    own, extra = cli.split_argv(argv)
    args = cli.build_parser().parse_args(own)
    return cli.make_context(args, extra, environ if environ is not None else {"HOME": "/nonexistent"})


# ----------------------------------------------------------------------------- argv


@pytest.mark.parametrize(
    "argv, own, extra",
    [
        (["--type", "generic", "--port", "8000", "node", "app.js", "--port", "9"], ["--type", "generic", "--port", "8000"], ["node", "app.js", "--port", "9"]),
        (["--type=generic", "--port=8000", "--", "--weird", "x"], ["--type=generic", "--port=8000"], ["--weird", "x"]),
        (["--type", "uwsgi-python", "--port", "8000"], ["--type", "uwsgi-python", "--port", "8000"], []),
        (["--type", "lighttpd", "--port", "8000", "--prefix", "/t", "--dry-run", "x"], ["--type", "lighttpd", "--port", "8000", "--prefix", "/t", "--dry-run"], ["x"]),
    ],
)
def test_split_argv_never_parses_extra_args_as_runner_options(argv, own, extra):
    assert cli.split_argv(argv) == (own, extra)


def test_context_from_the_deployment_command():
    ctx = parse(["--type", "js", "--port", "8000", "a", "b"], {"HOME": "/nonexistent", "TOOL_NAME": "mytool"})
    assert (ctx.type, ctx.port, ctx.tool, ctx.prefix, ctx.extra_args) == ("nodejs", 8000, "mytool", None, ["a", "b"])
    env = ctx.child_env()
    assert env["PORT"] == "8000" and "WEBSERVICE_PATH_PREFIX" not in env


def test_prefix_from_option_or_environment():
    assert parse(["--type", "generic", "--port", "1", "--prefix", "mytool/"]).prefix == "/mytool"
    ctx = parse(["--type", "generic", "--port", "1"], {"WEBSERVICE_PATH_PREFIX": "/mytool"})
    assert ctx.prefix == "/mytool" and ctx.child_env()["WEBSERVICE_PATH_PREFIX"] == "/mytool"
    assert parse(["--type", "generic", "--port", "1"], {"WEBSERVICE_PATH_PREFIX": ""}).prefix is None
    # the option wins over the environment
    assert parse(["--type", "generic", "--port", "1", "--prefix", "/a"], {"WEBSERVICE_PATH_PREFIX": "/b"}).prefix == "/a"


@pytest.mark.parametrize("bad", ['/a"b', "/a/b", "/a b", "/.hidden", "/a\nb", "/$x"])
def test_unsafe_prefixes_are_refused(bad):
    with pytest.raises(RunnerError, match="invalid path prefix"):
        normalize_prefix(bad, "--prefix")


def test_port_defaults_to_PORT_then_8000_and_is_checked():
    assert parse(["--type", "generic"], {"PORT": "9000"}).port == 9000
    assert parse(["--type", "generic"], {}).port == 8000
    with pytest.raises(RunnerError, match="out of range"):
        parse(["--type", "generic", "--port", "70000"])
    with pytest.raises(RunnerError, match="unknown type"):
        parse(["--type", "tomcat", "--port", "1"])


def test_tool_name_is_found_leniently(tmp_path):
    assert tool_name({"TOOL_NAME": "explicit"}, str(tmp_path)) == "explicit"
    name = tool_name({}, str(tmp_path / "fromhome"))
    # the user name wins when it is tools.<name>; as root (tests) the home's name is used
    import pwd

    user = pwd.getpwuid(os.getuid()).pw_name
    assert name == (user.split(".", 1)[1] if "." in user else "fromhome")


def test_runner_package_imports_only_the_standard_library():
    """It runs inside the images: no click, kubernetes, rich, yaml; nothing else of webservice."""
    allowed_local = {"webservice", "webservice.runner"}
    for path in RUNNER_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top == "webservice":
                    assert name in allowed_local or name.startswith("webservice.runner."), f"{path.name} imports {name}"
                else:
                    assert top in sys.stdlib_module_names, f"{path.name} imports {name}"
    code = "import sys, webservice.runner.cli; bad = [m for m in ('click', 'kubernetes', 'rich', 'yaml', 'webservice.ui.cli') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": support.PACKAGE_ROOT, "PATH": os.defpath})
    assert out.stdout.strip() == "[]", out.stderr


# ----------------------------------------------------------------------------- fail fast


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("webservice-runner: error: "), result.stderr
    assert "Traceback" not in result.stderr and "running:" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], result.stderr


@pytest.mark.parametrize(
    "type_name, layout, missing",
    [
        ("lighttpd", {}, "public_html not found"),
        ("lighttpd-plain", {}, "public_html not found"),
        ("uwsgi-python", {}, "www/python/src not found"),
        ("uwsgi-python", {"www/python/src/other.py": ""}, "www/python/src/app.py not found"),
        ("uwsgi-plain", {}, "uwsgi.ini not found"),
        ("nodejs", {}, "www/js/package.json not found"),
        ("js", {"www/js/package.json": "{not json"}, "package.json is not valid JSON"),
        ("js", {"www/js/package.json": '{"name": "x"}'}, 'has no "start" script'),
        ("generic", {}, "needs a command"),
    ],
)
def test_wrong_layout_fails_before_anything_starts(home, type_name, layout, missing):
    for rel, content in layout.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(content)
    tmp = home.parent / "tmp"  # a private TMPDIR: other runners may share /tmp
    tmp.mkdir()
    result = support.run_runner(["--type", type_name, "--port", "8000"], home, TMPDIR=str(tmp))
    assert_one_line_error(result, missing)
    if "not found" in missing:
        assert str(home) in result.stderr  # the full path is named
    assert list(tmp.iterdir()) == [], "runtime dir left behind"


def test_generic_command_not_found(home):
    assert_one_line_error(support.run_runner(["--type", "generic", "--port", "1", "no-such-program-xyz"], home), "no-such-program-xyz not found on PATH")
    assert_one_line_error(support.run_runner(["--type", "generic", "--port", "1", "./start.sh"], home), f"{home}/start.sh not found")
    (home / "start.sh").write_text("#!/bin/sh\n")
    assert_one_line_error(support.run_runner(["--type", "generic", "--port", "1", "./start.sh"], home), "is not executable")


def test_bad_command_lines_exit_2_without_traceback(home):
    for args in (["--port", "1"], ["--type", "nope", "--port", "1"], ["--type", "generic", "--port", "x"], ["--type", "lighttpd", "--prefix", "/a/b"]):
        result = support.run_runner(args, home)
        assert result.returncode == 2, (args, result)
        assert "Traceback" not in result.stderr and "error:" in result.stderr


def test_help_and_version(home):
    result = support.run_runner(["--help"], home)
    assert result.returncode == 0 and "--type TYPE --port PORT" in result.stdout and "WEBSERVICE_PATH_PREFIX" in result.stdout
    result = support.run_runner(["--version"], home)
    assert result.returncode == 0 and result.stdout.startswith("webservice-runner ")


# ----------------------------------------------------------------------------- dry run: what would run


def write(home: Path, files: dict) -> None:
    for rel, content in files.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(content)


def test_dry_run_lighttpd_config_subdomain_and_legacy(home):
    write(home, {"public_html/index.php": "<?php echo 1;", ".lighttpd.conf": 'dir-listing.activate = "enable"\n'})
    plain = support.run_runner(["--type", "lighttpd", "--port", "8000", "--dry-run"], home)
    assert plain.returncode == 0, plain.stderr
    assert 'server.port = 8000' in plain.stdout and f'server.document-root = "{home}/public_html"' in plain.stdout
    assert '"bin-path" =>' in plain.stdout and "alias.url" not in plain.stdout and "url.redirect" not in plain.stdout
    assert plain.stdout.rstrip().endswith('dir-listing.activate = "enable"')  # ~/.lighttpd.conf appended last
    legacy = support.run_runner(["--type", "lighttpd", "--port", "8000", "--dry-run"], home, WEBSERVICE_PATH_PREFIX="/mytool")
    assert f'alias.url = ( "/mytool/" => "{home}/public_html/" )' in legacy.stdout
    assert '$HTTP["url"] == "/mytool" {' in legacy.stdout and '"/mytool/${qsa}"' in legacy.stdout
    assert str(home) not in legacy.stdout.split("# command: ")[1].split("\n")[0], "config must not be in the tool home"
    nophp = support.run_runner(["--type", "lighttpd-plain", "--port", "8000", "--dry-run"], home)
    assert "fastcgi.server" not in nophp.stdout.split("# ----")[1].split(str(home / ".lighttpd.conf"))[0]


def test_dry_run_uwsgi_python(home):
    write(home, {"www/python/src/app.py": "app = None\n", "www/python/uwsgi.ini": "[uwsgi]\n"})
    (home / "www/python/venv").mkdir()
    out = support.run_runner(["--type", "uwsgi-python", "--port", "8000", "--dry-run", "--enable-threads"], home).stdout
    command = out.split("# command: ")[1].splitlines()[0].split()
    assert command[command.index("--http-socket") + 1] == ":8000"
    assert command[command.index("--wsgi-file") + 1] == "app.py" and "--mount" not in command
    assert command[command.index("--virtualenv") + 1] == str(home / "www/python/venv")
    assert command.index("--ini") > command.index("--callable"), "the tool's uwsgi.ini must come after our options"
    assert command[-1] == "--enable-threads"  # extra args last
    out = support.run_runner(["--type", "uwsgi-python", "--port", "8000", "--prefix", "/mytool", "--dry-run"], home).stdout
    command = out.split("# command: ")[1].splitlines()[0].split()
    assert command[command.index("--mount") + 1] == "/mytool=app.py" and "--manage-script-name" in command
    assert "--wsgi-file" not in command and "--route-uri" in command


def test_dry_run_nodejs_and_generic(home):
    write(home, {"www/js/package.json": json.dumps({"scripts": {"start": "node server.js"}})})
    out = support.run_runner(["--type", "js", "--port", "8000", "--dry-run", "--flag"], home).stdout
    assert out.split("# command: ")[1].split("\n")[0].endswith("npm start -- --flag")
    assert f"# cwd: {home}/www/js" in out
    out = support.run_runner(["--type", "generic", "--port", "8000", "--dry-run", "sh", "-c", "exit 0"], home).stdout
    assert "# command: /" in out and out.split("# command: ")[1].split("\n")[0].endswith("sh -c exit 0")


def test_lighttpd_extra_args_are_ignored_with_a_warning(home):
    write(home, {"public_html/index.html": "x"})
    result = support.run_runner(["--type", "lighttpd-plain", "--port", "8000", "--dry-run", "--foo"], home)
    assert result.returncode == 0 and "warning: lighttpd-plain ignores extra arguments (--foo)" in result.stderr


def test_runtime_dir_is_made_in_xdg_runtime_dir(home, tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir()
    write(home, {"public_html/index.html": "x"})
    out = support.run_runner(["--type", "lighttpd-plain", "--port", "8000", "--dry-run"], home, XDG_RUNTIME_DIR=str(runtime)).stdout
    assert f"-f {runtime}/webservice-runner-" in out
    assert list(runtime.iterdir()) == [], "the runtime dir is removed on exit"


def test_context_runtime_dir_falls_back_to_tmp(tmp_path):
    ctx = Context(type="generic", port=1, home=str(tmp_path), tool="t", environ={"XDG_RUNTIME_DIR": str(tmp_path / "missing")})
    path = ctx.make_runtime_dir()
    try:
        assert os.path.isdir(path) and not path.startswith(str(tmp_path)) and os.path.basename(path).startswith("webservice-runner-")
    finally:
        os.rmdir(path)
