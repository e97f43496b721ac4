"""No orphans even when the runner itself is SIGKILLed (``PR_SET_PDEATHSIG``).

The runner is killed outright, so it cannot clean up: the kernel sends the server
SIGTERM (its parent died) and the server stops what it started (lighttpd its php-cgi,
uWSGI's master its workers). Each test records the whole process tree first, then waits
(generous deadline, returns as soon as it holds) until none of it runs any more.
"""

from __future__ import annotations

import os
import signal
import sys

import pytest

from tests.runner import support
from tests.runner.support import get

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")

WSGI_APP = "def app(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'wsgi ok']\n"


def _lighttpd_home(home):
    support.require("lighttpd", "php-cgi")
    (home / "public_html").mkdir()
    (home / "public_html" / "index.php").write_text("<?php echo 'php ', 6 * 7;")
    return ["--type", "lighttpd"], "php 42", ("lighttpd", "php-cgi")


def _uwsgi_home(home):
    support.require("uwsgi", "uwsgi-python3")
    src = home / "www" / "python" / "src"
    src.mkdir(parents=True)
    (src / "app.py").write_text(WSGI_APP)
    return ["--type", "uwsgi-python"], "wsgi ok", ("uwsgi",)


@pytest.mark.parametrize("make_home", [_lighttpd_home, _uwsgi_home], ids=["lighttpd+php-cgi", "uwsgi-python"])
def test_sigkilled_runner_leaves_no_process_behind(make_home, home, tmp_path, servers):
    args, body, programs = make_home(home)
    runtime = tmp_path / "run"  # the killed runner cannot remove its runtime directory
    runtime.mkdir()
    server = servers.runner(args, home, XDG_RUNTIME_DIR=str(runtime))
    r = get(server.port, "/")
    assert r.status == 200 and body in r.text, r
    tree = support.descendants(server.proc.pid)
    names = [support.cmdline(pid) for pid in tree]
    for program in programs:  # the server and the children it started itself
        assert any(program in name for name in names), names
    if "php-cgi" in programs:
        assert sum("php-cgi" in name for name in names) >= 2, names
    else:
        assert sum("uwsgi" in name for name in names) >= 2, names  # master and workers
    os.kill(server.proc.pid, signal.SIGKILL)
    assert server.proc.wait(10) == -signal.SIGKILL
    left = support.wait_gone(tree, timeout=30)
    assert left == [], [support.cmdline(pid) for pid in left]


def test_server_started_after_the_runner_died_does_not_run(tmp_path):
    """The race: the runner dies between fork and the prctl call; the child notices
    (its parent is no longer the runner) and exits instead of running unsupervised."""
    from webservice.runner import process

    setter = process.death_signal_setter(signal.SIGTERM)
    assert setter is not None
    pid = os.fork()
    if pid == 0:
        try:
            os.getppid = lambda: 1  # re-parented to init: as if the runner had died
            setter()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGTERM


def test_death_signal_is_set_in_the_server(home):
    """The server runs with the runner's death signal set (``/proc/<pid>/status`` does
    not show it; a child asking prctl(PR_GET_PDEATHSIG) does)."""
    script = (
        "import ctypes, sys; sig = ctypes.c_int(); "
        "ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0); sys.exit(sig.value)"
    )
    result = support.run_runner(["--type", "generic", "--port", "1", sys.executable, "-c", script], home)
    assert result.returncode == signal.SIGTERM, result.stderr
