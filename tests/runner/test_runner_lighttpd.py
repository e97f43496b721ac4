"""``lighttpd`` and ``lighttpd-plain`` through webservice-runner, with real lighttpd and php-cgi."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.runner import support
from tests.runner.support import get

PHP_PAGE = """<?php
error_log("php-error-log-line " . $_SERVER["REQUEST_URI"]);
header("Content-Type: text/plain");
echo "php says ", 6 * 7, "\\n";
echo "uri=", $_SERVER["REQUEST_URI"], "\\n";
echo "script=", $_SERVER["SCRIPT_NAME"], "\\n";
echo "port=", getenv("PORT"), "\\n";
"""


@pytest.fixture
def php_home(home):
    support.require("lighttpd", "php-cgi")
    (home / "public_html").mkdir()
    (home / "public_html" / "index.php").write_text(PHP_PAGE)
    (home / "public_html" / "hello.txt").write_text("static hello\n")
    (home / "public_html" / "style.css").write_text("body {}\n")
    return home


def test_php_page_rendered_by_php_cgi_at_root(php_home, servers):
    server = servers.runner(["--type", "lighttpd"], php_home)
    r = get(server.port, "/?a=1")
    assert r.status == 200, r
    # output: the access log on stdout, PHP's error_log() on stderr
    server.wait_output('"GET /?a=1 HTTP/1.1" 200', stream="stdout")
    server.wait_output("php-error-log-line /?a=1", stream="stderr")
    assert "php says 42" in r.text and "uri=/?a=1" in r.text and "script=/index.php" in r.text
    assert f"port={server.port}" in r.text  # PORT reaches PHP
    r = get(server.port, "/hello.txt")
    assert (r.status, r.text, r.headers["content-type"]) == (200, "static hello\n", "text/plain;charset=utf-8")
    assert get(server.port, "/style.css").headers["content-type"].startswith("text/css")
    assert "server started" in server.stderr
    tree = support.descendants(server.proc.pid)
    assert sum(1 for pid in tree if "php-cgi" in support.cmdline(pid)) >= 2, tree  # checked below
    code = server.stop()  # php-cgi (a session of its own) must be gone too
    assert server.stop_seconds < 5, server.stop_seconds
    assert code == 0, server.output()
    assert "server stopped" in server.stderr
    assert '"GET /hello.txt HTTP/1.1" 200' in server.stdout


def test_php_under_the_legacy_prefix_with_redirect(php_home, servers):
    server = servers.runner(["--type", "lighttpd"], php_home, WEBSERVICE_PATH_PREFIX="/mytool")
    r = get(server.port, "/mytool/index.php?y=1")
    assert r.status == 200 and "uri=/mytool/index.php?y=1" in r.text and "script=/mytool/index.php" in r.text, r
    r = get(server.port, "/mytool/?y=1")
    assert r.status == 200 and "php says 42" in r.text, r
    assert get(server.port, "/mytool/hello.txt").text == "static hello\n"
    for path, location in (("/mytool", "/mytool/"), ("/mytool?q=1&r=%20x", "/mytool/?q=1&r=%20x")):
        r = get(server.port, path)
        assert r.status == 302 and r.headers["location"].endswith(location), (path, r)
    assert get(server.port, "/mytoolx").status == 404
    server.stop()


def test_plain_serves_files_without_php(home, servers):
    support.require("lighttpd")
    (home / "public_html").mkdir()
    (home / "public_html" / "index.html").write_text("<p>plain</p>\n")
    (home / "public_html" / "secret.php").write_text("<?php $password = 1;")
    server = servers.runner(["--type", "lighttpd-plain"], home)
    r = get(server.port, "/")
    assert r.status == 200 and r.text == "<p>plain</p>\n" and r.headers["content-type"].startswith("text/html")
    r = get(server.port, "/secret.php")
    assert r.status in (403, 404) and "password" not in r.text, r  # never the PHP source
    server.stop()


def test_lighttpd_conf_is_appended_and_may_extend_or_set_keys(php_home, servers):
    # typical ~/.lighttpd.conf lines: extending the keys the old launcher set (+=), setting
    # keys it did not (=), conditionals
    (php_home / ".lighttpd.conf").write_text(
        'url.rewrite-if-not-file = ( "^/pretty/(.*)$" => "/index.php?page=$1" )\n'
        'index-file.names += ( "default.htm" )\n'
        'setenv.add-response-header = ( "X-From-Tool-Conf" => "yes" )\n'
        'dir-listing.activate = "enable"\n'
        '$HTTP["url"] =~ "^/private/" { url.access-deny = ( "" ) }\n'
    )
    (php_home / "public_html" / "listing").mkdir()
    (php_home / "public_html" / "listing" / "a.txt").write_text("a")
    server = servers.runner(["--type", "lighttpd"], php_home)
    r = get(server.port, "/pretty/abc")
    assert r.status == 200 and "uri=/pretty/abc" in r.text and r.headers.get("x-from-tool-conf") == "yes", r
    r = get(server.port, "/listing/")
    assert r.status == 200 and "a.txt" in r.text
    assert get(server.port, "/private/x").status == 403
    server.stop()


def test_only_a_lighttpd_conf_is_enough(home, servers):
    support.require("lighttpd")
    (home / "site").mkdir()
    (home / "site" / "index.html").write_text("from conf\n")
    (home / ".lighttpd.conf").write_text(f'alias.url += ( "/" => "{home}/site/" )\n')
    server = servers.runner(["--type", "lighttpd-plain"], home)
    assert get(server.port, "/").text == "from conf\n"
    server.stop()


def test_bad_lighttpd_conf_fails_with_lighttpd_message(php_home):
    (php_home / ".lighttpd.conf").write_text("this is not lighttpd syntax\n")
    result = support.run_runner(["--type", "lighttpd", "--port", str(support.free_port())], php_home, timeout=20)
    assert result.returncode != 0
    assert "lighttpd.conf" in result.stderr and "Traceback" not in result.stderr


def test_generated_config_passes_lighttpd_syntax_check(php_home):
    out = support.run_runner(["--type", "lighttpd", "--port", "8000", "--prefix", "/mytool", "--dry-run"], php_home).stdout
    conf = php_home.parent / "check.conf"
    conf.write_text(out.split("# ---- ", 1)[1].split("\n", 1)[1].replace(">&1", ">&2"))
    result = subprocess.run([support.which("lighttpd"), "-tt", "-f", str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr.upper(), result.stderr


@pytest.fixture
def world_readable_dir():
    """A directory that other users can reach (pytest's tmp_path is root-only)."""
    import shutil
    import tempfile
    from pathlib import Path

    path = tempfile.mkdtemp(prefix="webservice-runner-test-")
    os.chmod(path, 0o755)
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def test_runs_as_an_unprivileged_tool_user(world_readable_dir, servers):
    """In the container the runner is the tool user, not root: no server.username, a
    runtime dir of its own, and stdout/stderr pipes it did not create (here: root's)."""
    import pwd

    support.require("lighttpd", "php-cgi")
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user (as a non-root user every other test already is one)")
    nobody = pwd.getpwnam("nobody")
    home = world_readable_dir / "mytool"
    (home / "public_html").mkdir(parents=True)
    (home / "public_html" / "index.php").write_text(PHP_PAGE)
    for path in (home.parent, home, home / "public_html", home / "public_html" / "index.php"):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    if not os.path.exists(support.SYSTEM_PYTHON):
        pytest.skip(f"needs {support.SYSTEM_PYTHON} (the test's own Python may not be usable by nobody)")
    probe = subprocess.run(
        [support.SYSTEM_PYTHON, "-c", "import webservice.runner.cli"],
        env={"PYTHONPATH": support.PACKAGE_ROOT, "PATH": os.defpath}, cwd="/", user=nobody.pw_uid, group=nobody.pw_gid, capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"nobody cannot import webservice from {support.PACKAGE_ROOT} (a private build directory)")
    port = support.free_port()
    # the images' Python: the runner needs nothing but the standard library
    argv = [support.SYSTEM_PYTHON, "-m", "webservice.runner", "--type", "lighttpd", "--port", str(port), "--bind", "127.0.0.1"]
    env = support.runner_env(home, TMPDIR=str(home.parent))
    server = servers.add(support.Server(argv, env, str(home), port, user=nobody.pw_uid, group=nobody.pw_gid))
    server.wait_ready()
    r = get(port, "/?u=1")
    assert r.status == 200 and "php says 42" in r.text, r
    server.wait_output('"GET /?u=1 HTTP/1.1" 200', stream="stdout")
    server.wait_output("php-error-log-line /?u=1", stream="stderr")
    assert server.stop() == 0


def test_a_crashed_server_takes_its_php_cgi_with_it(php_home, servers):
    """lighttpd killed outright cannot stop its php-cgi: they are re-parented to the
    runner (a child subreaper), which stops them and exits with lighttpd's status."""
    import signal

    server = servers.runner(["--type", "lighttpd"], php_home)
    assert get(server.port, "/").status == 200
    tree = support.descendants(server.proc.pid)
    lighttpd = [pid for pid in tree if support.cmdline(pid).startswith(support.which("lighttpd"))]
    assert len(lighttpd) == 1 and any("php-cgi" in support.cmdline(pid) for pid in tree)
    os.kill(lighttpd[0], signal.SIGKILL)
    assert server.proc.wait(10) == 128 + signal.SIGKILL
    left = support.wait_gone(tree)
    assert left == [], [support.cmdline(pid) for pid in left]
