"""Shared helpers of the hardening tests, and the recorder of the results table.

Every hardening test asks for the ``row`` fixture and says which row of the table it
is (``row.describe(family, case)``) and counts the cases it tries (``row.case()``,
called once per generated hypothesis example or per concrete attack). After the run,
the rows (with each test's outcome) are written as JSON to
``<pytest basetemp>/hardening-results.json`` (and its parent folder); ``python -m tests.hardening.results``
turns that into ``HARDENING.md``.

The in-process helpers (``run_cli``, ``isolated``, ``snapshot``) call
``webservice.ui.cli.main`` directly (no subprocess), which keeps hundreds of generated
examples fast. This conftest adds fixtures only; it defines none that
``tests/conftest.py`` defines.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

RESULTS_NAME = "hardening-results.json"
# generated examples per family (moderate: the whole hardening set must stay fast)
EXAMPLES = int(os.environ.get("HARDENING_EXAMPLES", "30"))
# no shrinking: a failure shows its (unshrunk) example, and a known bug does not cost a
# minute of shrinking on every run
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])
# a traceback of ours (or of a library we call) on stderr
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]*/(webservice|urllib3|kubernetes|click|yaml)/")


# --- the results table -------------------------------------------------------------------


@dataclass
class Row:
    nodeid: str
    family: str = ""
    case_name: str = ""
    cases: int = 0
    outcome: str = "not run"
    detail: str = ""
    notes: list = field(default_factory=list)

    def describe(self, family: str, case_name: str) -> "Row":
        self.family, self.case_name = family, case_name
        return self

    def case(self, n: int = 1) -> None:
        self.cases += n

    def note(self, text: str) -> None:
        self.notes.append(text)


_ROWS: dict[str, Row] = {}


@pytest.fixture
def row(request) -> Row:
    entry = _ROWS.setdefault(request.node.nodeid, Row(request.node.nodeid))
    return entry


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    entry = _ROWS.get(item.nodeid)
    if entry is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if hasattr(report, "wasxfail"):
            entry.outcome, entry.detail = "xfail", report.wasxfail
        elif report.skipped:
            entry.outcome = "skipped"
            entry.detail = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        elif report.passed:
            entry.outcome = "pass"
        else:
            entry.outcome = "FAIL"
            crash = getattr(report.longrepr, "reprcrash", None)
            entry.detail = " ".join(str(getattr(crash, "message", "") or report.longreprtext or "").split())[:300]
    elif report.when == "teardown" and report.failed and entry.outcome == "pass":
        entry.outcome = "FAIL"
        entry.detail = "teardown failed"


def pytest_sessionfinish(session, exitstatus):
    if not _ROWS:
        return
    try:
        base = session.config._tmp_path_factory.getbasetemp()
    except Exception:  # noqa: BLE001 - no tmp path factory (e.g. -p no:tmpdir)
        base = Path(tempfile.gettempdir())
    started = getattr(session.config, "_hardening_started", None)
    document = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "examples_per_family": EXAMPLES,
        "seconds": round(time.monotonic() - started, 1) if started else None,
        "rows": [vars(r) for r in _ROWS.values() if r.family],
    }
    text = json.dumps(document, indent=1, ensure_ascii=False)
    Path(base, RESULTS_NAME).write_text(text, encoding="utf-8")
    # and beside the numbered base folders, where ``results.py`` looks by default (other
    # pytest runs on this machine may move ``pytest-current`` meanwhile)
    if base.parent.name.startswith("pytest-of-"):
        Path(base.parent, RESULTS_NAME).write_text(text, encoding="utf-8")
    extra = os.environ.get("HARDENING_RESULTS")
    if extra:
        Path(extra).write_text(text, encoding="utf-8")


def pytest_collection_finish(session):
    session.config._hardening_started = time.monotonic()


# --- in-process runs of the CLI ----------------------------------------------------------


class Hang(Exception):
    pass


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


@contextlib.contextmanager
def _alarm(seconds: float):
    def ring(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(argv: list[str], limit: float = 10.0) -> CliResult:
    """``webservice.ui.cli.main(argv)`` in this process: exit code, stdout, stderr."""
    from webservice.ui.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = None
    saved_argv = sys.argv
    sys.argv = ["webservice", *argv]
    try:
        with _alarm(limit), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(argv))
                code = 0
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        sys.argv = saved_argv
    return CliResult(code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def isolated(env: dict | None = None, tool: str = "mytool"):
    """A fresh tool home and XDG dirs in a temporary folder, as the environment of
    in-process runs; yields the root folder (home is ``root/home``)."""
    root = Path(tempfile.mkdtemp(prefix="hardening-"))
    home = root / "home"
    home.mkdir()
    saved = dict(os.environ)
    try:
        for key in list(os.environ):
            if key.startswith("WEBSERVICE_") or key in ("KUBECONFIG", "TOOLFORGE_CLI"):
                del os.environ[key]
        os.environ.update({
            "HOME": str(home),
            "WEBSERVICE_TOOL": tool,
            "XDG_CONFIG_HOME": str(root / "xdg" / "config"),
            "XDG_CACHE_HOME": str(root / "xdg" / "cache"),
            "XDG_STATE_HOME": str(root / "xdg" / "state"),
            "WEBSERVICE_SITE_CONFIG": str(root / "etc" / "webservice.yaml"),
            "KUBECONFIG": str(root / "no-kubeconfig"),
            "NO_COLOR": "1",
        })
        for key, value in (env or {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield root
    finally:
        os.environ.clear()
        os.environ.update(saved)
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def snapshot(root: Path) -> dict:
    """Every file and link under ``root``: relative path -> (mode, bytes or link target)."""
    found = {}
    for path in sorted(Path(root).rglob("*")):
        st = os.lstat(path)
        rel = str(path.relative_to(root))
        if stat.S_ISLNK(st.st_mode):
            found[rel] = ("link", os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            found[rel] = (stat.S_IMODE(st.st_mode), path.read_bytes())
        else:
            found[rel] = (stat.S_IFMT(st.st_mode), None)
    return found


def assert_clean(result: CliResult) -> None:
    """Whatever the verdict: never a traceback or an internal error; a success says at most
    warnings on stderr, a refusal exactly ONE line ``webservice: error: ...``."""
    assert not TRACEBACK.search(result.err), result.err
    assert "internal error" not in result.err, result.err
    assert result.code != 1, result.err
    if result.code == 0:
        assert all(line.startswith("webservice: warning: ") for line in result.err_lines), result.err
        return
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("webservice: error: "), result.err


def assert_verdict(result: CliResult, expected: str, what: object = "") -> None:
    """The bad-input property with its oracle (``tests/hardening/oracles.py``): the input
    must be accepted (exit 0), refused (one error line, non-zero), or, only where no simple
    rule decides, either of the two cleanly."""
    from tests.hardening import oracles

    assert_clean(result)
    if expected == oracles.ACCEPT:
        assert result.code == 0, f"{what!r} must be accepted: {result.err}"
    elif expected == oracles.REFUSE:
        assert result.code != 0, f"{what!r} must be refused, was accepted: {result.out[:300]}"
    else:
        assert expected == oracles.EITHER, expected


# --- end-to-end -------------------------------------------------------------------------------


@pytest.fixture
def tool_env(python_env, monkeypatch):
    """``python_env`` (tests/standin/fixtures.py: ``ws_env`` with a python3.11 app, what start's
    preflight looks for). The stand-in's HTTPS server is kept from printing tracebacks of
    connections it could not handle (refused TLS handshakes): in-process runs share its
    stderr, and those lines are the stand-in's, not webservice's."""
    monkeypatch.setattr(python_env.standin.server, "handle_error", lambda request, address: None)
    return python_env


_STANDIN_NOISE = re.compile(r"-{40}\nException occurred during processing of request from .*?\n-{40}\n", re.S)


def run_in(tool_env, *args, env_extra: dict | None = None, limit: float = 60.0) -> CliResult:
    """Run ``webservice *args`` in this process against the stand-in (the environment of
    ``tool_env``): much faster than a subprocess, same code paths but the interpreter's
    start. Restores the environment and the working directory afterwards."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    try:
        os.environ.clear()
        os.environ.update(tool_env.env)
        for key, value in (env_extra or {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.chdir(tool_env.home)
        result = run_cli(list(args), limit=limit)
        # the stand-in's server threads share this process's stderr: leave out what
        # socketserver prints about a request it failed to handle (a stand-in matter)
        result.err = _STANDIN_NOISE.sub("", result.err)
        return result
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)


# --- fault helpers: cut streams, a restartable TCP proxy -------------------------------------


def cut_streams(standin, monkeypatch, *, path: str, how: str = "end", after: int = 0, times: int = 1,
                query: str | None = "watch", hold_after_write: str | None = None):
    """Make the stand-in end (``how="end"``) or drop (``"drop"``) the next ``times`` streamed
    answers (watches, log follows) whose path contains ``path``, after ``after`` chunks.
    Returns a list that gets one entry per stream cut.

    ``hold_after_write``: a path fragment (e.g. ``"/deployments"``). The simulation pauses at
    the first write (POST/PUT/PATCH/DELETE) to such a path and resumes only once the first
    stream to be cut is open. So the change the client waits for cannot complete before its
    watch is there to be cut: the fault applies however loaded the machine is."""
    original = standin.api.handle
    state = {"left": times, "held": False}
    cut: list = []

    def handle(req):
        if (hold_after_write and not state["held"] and hold_after_write in req.path
                and req.method.upper() in ("POST", "PUT", "PATCH", "DELETE")):
            state["held"] = True
            standin.pause()
        resp = original(req)
        if (resp.stream is not None and path in req.path and state["left"] > 0
                and (query is None or query in req.query)):
            if state["left"] == times and state["held"]:
                standin.resume()  # the watch exists: now let the change happen
            state["left"] -= 1
            inner = resp.stream

            def stream():
                try:
                    sent = 0
                    while sent < after:
                        chunk = next(inner, None)
                        if chunk is None:
                            return
                        if chunk:
                            sent += 1
                            yield chunk
                    cut.append(req.path)
                    if how == "drop":
                        raise ConnectionResetError("injected: connection dropped mid-stream")
                finally:
                    inner.close()

            resp.stream = stream()
        return resp

    monkeypatch.setattr(standin.api, "handle", handle)
    monkeypatch.setattr(standin.controller, "paused", standin.controller.paused)  # never left paused
    return cut


def fake_kubectl(monkeypatch, tool_env, seen: list | None = None) -> None:
    """Make ``webservice shell`` (called in this process) start a fake kubectl that exits 0
    at once, recording ``(argv, kwargs)`` in ``seen``; point the environment at ``tool_env``.
    Only webservice.actions.shell's view of subprocess changes: the stand-in's kubelet keeps the real one."""
    import subprocess as sp
    from types import SimpleNamespace

    from webservice.actions import shell as shell_mod

    class FakeKubectl:
        def __init__(self, argv, **kwargs):
            if seen is not None:
                seen.append((argv, kwargs))
            self.stderr, self.returncode, self.pid = io.BytesIO(b""), 0, 0

        def wait(self, timeout=None):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(shell_mod, "subprocess", SimpleNamespace(Popen=FakeKubectl, PIPE=sp.PIPE,
                                                                 TimeoutExpired=sp.TimeoutExpired))
    # webservice.actions.shell's own view of os reads nothing from kubectl; os itself stays whole
    os_view = SimpleNamespace(**{name: getattr(os, name) for name in dir(os) if not name.startswith("__")})
    os_view.read = lambda fd, n: b""
    monkeypatch.setattr(shell_mod, "os", os_view)
    for key, value in tool_env.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KUBECONFIG", tool_env.kubeconfig)


class Proxy:
    """A TCP proxy in front of the stand-in (TLS passes through untouched) that can
    "restart" the API server: every connection is cut and new ones are refused for a
    moment, as when kube-apiserver restarts."""

    def __init__(self, target_port: int):
        import socket
        import threading

        self.target = ("127.0.0.1", target_port)
        self.lock = threading.Lock()
        self.sockets: list = []
        self.restarts = 0
        self._listen(0)
        self.port = self.listener.getsockname()[1]
        self._socket = socket
        self._threading = threading

    def _listen(self, port: int) -> None:
        import socket
        import threading

        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for attempt in range(50):  # the old listener may take a moment to let go of the port
            try:
                listener.bind(("127.0.0.1", port))
                break
            except OSError:
                if attempt == 49 or not port:
                    raise
                time.sleep(0.02)
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b) -> None:
        import socket

        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def restart(self, outage: float = 0.3) -> None:
        """Cut every connection, refuse new ones for ``outage`` seconds, then serve again."""
        import socket

        self.restarts += 1
        try:  # wakes the thread blocked in accept(), so that the port is really released
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        time.sleep(outage)
        self._listen(self.port)

    def close(self) -> None:
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                s.close()


@pytest.fixture
def proxy(tool_env):
    """A :class:`Proxy` in front of the stand-in; ``tool_env``'s kubeconfig points at it."""
    import yaml

    p = Proxy(tool_env.standin.server.server_address[1])
    path = Path(tool_env.kubeconfig)
    data = yaml.safe_load(path.read_text())
    data["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{p.port}"
    path.write_text(yaml.safe_dump(data))
    yield p
    p.close()


def manifest_state(home) -> object:
    """The manifest's data (None if absent); fails if it is not a valid manifest."""
    import yaml

    path = Path(home) / "service.manifest"
    if not path.exists():
        return None
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# This file is used by Toolforge"), text[:200]
    data = yaml.safe_load(text)
    assert isinstance(data, dict) and data.get("version") == 4, text
    return data


WEB = {"app.kubernetes.io/component": "web", "app.kubernetes.io/managed-by": "webservice"}


def web_objects(standin) -> dict:
    """Names of the webservice's own Deployment, Service, Ingress and HTTPRoute in the stand-in."""
    out = {}
    for kind in ("Deployment", "Service", "Ingress", "HTTPRoute"):
        out[kind] = sorted(o["metadata"]["name"] for o in standin.objects(kind, standin.namespace)
                           if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in WEB.items()))
    return out


# --- NFS lock semantics ----------------------------------------------------------------------
# On NFS, Linux emulates flock() with a whole-file POSIX byte-range lock owned by the open
# file (not the process), so an flock and a lockf on the same file conflict even inside one
# process. Open-file-description locks (F_OFD_SETLK) have exactly that owner: the emulation
# below makes fcntl.flock behave as on NFS.


def nfs_flock(calls: list):
    """A stand-in for ``fcntl.flock`` with NFS semantics; records each call in ``calls``."""
    import fcntl
    import struct

    def flock(fd, operation):
        calls.append(operation)
        kind = fcntl.F_UNLCK if operation & fcntl.LOCK_UN else (
            fcntl.F_WRLCK if operation & fcntl.LOCK_EX else fcntl.F_RDLCK)
        command = fcntl.F_OFD_SETLK if operation & fcntl.LOCK_NB else fcntl.F_OFD_SETLKW
        # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)
        fcntl.fcntl(fd, command, struct.pack("hhqqi4x", kind, 0, 0, 0, 0))

    return flock


