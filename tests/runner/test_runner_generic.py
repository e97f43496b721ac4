"""``generic`` through webservice-runner, and the supervisor's signal and cleanup duties."""

from __future__ import annotations

import signal
import sys

from tests.runner import support
from tests.runner.support import get

# a server that leaves a background child behind and may ignore SIGTERM
SERVER_SH = """\
#!/bin/sh
sleep 300 &
echo "started helper $!"
exec "$PYTHON" -c '
import http.server, os, signal, sys
if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("generic port=%s prefix=%s cwd=%s" % (os.environ["PORT"], os.environ.get("WEBSERVICE_PATH_PREFIX"), os.getcwd())).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
print("generic serving", flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
'
"""


def make_script(home):
    script = home / "start.sh"
    script.write_text(SERVER_SH)
    script.chmod(0o755)


def test_generic_runs_extra_args_in_home_and_cleans_up_strays(home, servers):
    make_script(home)
    server = servers.runner(["--type", "generic", "./start.sh"], home, PYTHON=sys.executable, WEBSERVICE_PATH_PREFIX="/mytool")
    r = get(server.port, "/")
    assert r.status == 200 and r.text == f"generic port={server.port} prefix=/mytool cwd={home}", r
    server.wait_output("generic serving", stream="stdout")
    code = server.stop()  # the background "sleep 300" must be gone too
    assert server.stop_seconds < 5
    assert code in (0, 143, 128 + signal.SIGTERM)


def test_a_server_ignoring_sigterm_is_killed_after_the_stop_timeout(home, servers):
    make_script(home)
    server = servers.runner(["--type", "generic", "./start.sh"], home, PYTHON=sys.executable, IGNORE_TERM="1", WEBSERVICE_RUNNER_STOP_TIMEOUT="1")
    code = server.stop()
    assert 0.9 < server.stop_seconds < 5, server.stop_seconds
    assert code == 128 + signal.SIGKILL
    assert "killing it" in server.stderr


def test_exit_status_is_the_servers(home):
    result = support.run_runner(["--type", "generic", "--port", "1", "sh", "-c", "echo out; echo err >&2; exit 3"], home)
    assert result.returncode == 3
    assert result.stdout == "out\n" and "err\n" in result.stderr


def test_sigint_and_sighup_are_forwarded(home, servers):
    # SIGHUP is forwarded as is (a reload for uWSGI/lighttpd): a shell trap proves it
    port = support.free_port()
    script = home / "trap.sh"
    script.write_text(
        "#!/bin/sh\n"
        "trap 'echo got HUP' HUP\n"
        "trap 'echo got INT; exit 7' INT\n"
        f'"{sys.executable}" -m http.server --bind 127.0.0.1 {port} >/dev/null 2>&1 &\n'
        "while :; do sleep 0.05; done\n"
    )
    script.chmod(0o755)
    server = servers.runner(["--type", "generic", "./trap.sh"], home, port=port)
    server.proc.send_signal(signal.SIGHUP)
    server.wait_output("got HUP", stream="stdout")
    tree = support.descendants(server.proc.pid)
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(5) == 7
    assert support.wait_gone(tree) == [], "the http.server child of the shell must be stopped too"
    assert "got INT" in server.stdout


def test_closed_stdout_sends_the_access_log_to_stderr(home):
    support.require("lighttpd")
    (home / "public_html").mkdir()
    (home / "public_html" / "index.html").write_text("hi\n")
    port = support.free_port()
    argv = [sys.executable, "-m", "webservice.runner", "--type", "lighttpd-plain", "--port", str(port), "--bind", "127.0.0.1"]
    env = support.runner_env(home)
    server = support.Server(["sh", "-c", 'exec "$@" >&-', "sh", *argv], env, str(home), port)  # stdout closed
    try:
        server.wait_ready()
        assert get(port, "/").text == "hi\n"
        server.wait_output('"GET / HTTP/1.1" 200', stream="stderr")
        assert server.stop() == 0
    finally:
        server.kill()


MASTER_PY = """\
import os, signal, subprocess, sys, time
# a "master" that, like uWSGI's, waits for its worker to stop before it exits; the worker
# ignores SIGTERM, like a uWSGI worker that missed its stop signal
worker = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('worker up', flush=True); time.sleep(300)"])
def stop(signum, frame):
    worker.terminate()
    worker.wait()
    print("master done", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
time.sleep(300)
"""


def test_stragglers_of_the_group_are_killed_after_stop_escalate(tmp_path):
    """process.supervise(stop_escalate=...): what uWSGI runs with."""
    import subprocess

    (tmp_path / "master.py").write_text(MASTER_PY)
    code = (
        "import sys; from webservice.runner import process; "
        f"sys.exit(process.supervise([sys.executable, {str(tmp_path / 'master.py')!r}], cwd='/', env=None, grace=20, stop_escalate=0.5))"
    )
    argv = [sys.executable, "-c", code]
    server = support.Server(argv, {"PYTHONPATH": support.PACKAGE_ROOT, "PATH": support.SBIN_PATH}, str(tmp_path), 0)
    try:
        server.wait_output("worker up")
        assert server.stop() == 0  # the master exits normally once its worker is gone
        assert 0.4 < server.stop_seconds < 3, server.stop_seconds
        assert "killing them" in server.stderr and "master done" in server.stdout
    finally:
        server.kill()
