"""Helpers for the tests that start real servers through ``webservice-runner``.

Everything runs on 127.0.0.1 with free ports, needs no network, and leaves nothing
behind: each server is started in a session of its own, and ``Server.stop()`` checks
that SIGTERM ends the runner and every process it started (recorded before the stop by
walking the process tree) within a few seconds.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import webservice

# the webservice package the tests import (the tree, or the installed package in CI)
PACKAGE_ROOT = str(Path(webservice.__file__).resolve().parent.parent)

# program -> Debian package that provides it (CI installs them all)
PACKAGES = {
    "lighttpd": "lighttpd",
    "php-cgi": "php-cgi",
    "uwsgi": "uwsgi-core",
    "uwsgi-python3": "uwsgi-plugin-python3",
    "node": "nodejs",
    "npm": "npm",
    "nginx": "nginx-light (or nginx)",
    "python3-venv": "python3-venv",
    "mod_deflate": "lighttpd-mod-deflate",
}
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
SYSTEM_PYTHON = "/usr/bin/python3"


def which(program: str) -> str | None:
    if program == "uwsgi-python3":
        return "/usr/lib/uwsgi/plugins/python3_plugin.so" if os.path.exists("/usr/lib/uwsgi/plugins/python3_plugin.so") else None
    if program == "mod_deflate":
        return "/usr/lib/lighttpd/mod_deflate.so" if os.path.exists("/usr/lib/lighttpd/mod_deflate.so") else None
    if program == "python3-venv":
        if not os.path.exists(SYSTEM_PYTHON):
            return None
        ok = subprocess.run([SYSTEM_PYTHON, "-c", "import venv, ensurepip"], capture_output=True).returncode == 0
        return SYSTEM_PYTHON if ok else None
    return shutil.which(program, path=SBIN_PATH)


def require(*programs: str) -> None:
    """Skip the test, naming the Debian package, when a program is missing."""
    for program in programs:
        if not which(program):
            pytest.skip(f"needs {program} (Debian package {PACKAGES.get(program, program)})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runner_env(home: Path, **extra: str) -> dict:
    """A small, explicit environment for the runner: the tool home, PATH, our package."""
    env = {
        "HOME": str(home),
        "PATH": SBIN_PATH,
        "LANG": "C.UTF-8",
        "PYTHONPATH": PACKAGE_ROOT,
        "TOOL_NAME": home.name,
        "NPM_CONFIG_CACHE": str(home / ".npm"),
        "NPM_CONFIG_OFFLINE": "true",
    }
    env.update(extra)
    return env


def run_runner(args: list[str], home: Path, timeout: float = 30, **env: str) -> subprocess.CompletedProcess:
    """Run the runner to completion (for failures and dry runs)."""
    return subprocess.run(
        [sys.executable, "-m", "webservice.runner", *args],
        env=runner_env(home, **env),
        cwd=str(home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --------------------------------------------------------------------------- processes


def _stat(pid: int):
    """(ppid, pgrp, session, state) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[1]), int(fields[2]), int(fields[3]), fields[0].decode()


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def all_pids() -> list[int]:
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` (by parent links), and every process of its session."""
    children: dict[int, list[int]] = {}
    same_session = set()
    for pid in all_pids():
        st = _stat(pid)
        if st is None:
            continue
        children.setdefault(st[0], []).append(pid)
        if st[2] == root and pid != root:
            same_session.add(pid)
    below: set[int] = set()
    todo = [root, *same_session]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in below:
                below.add(child)
                todo.append(child)
    return below | same_session


def alive(pids) -> list[int]:
    """The pids that are still running (zombies do not count)."""
    result = []
    for pid in pids:
        st = _stat(pid)
        if st is not None and st[3] not in ("Z", "X"):
            result.append(pid)
    return result


def wait_gone(pids, timeout: float = 30) -> list[int]:
    """Wait until none of ``pids`` runs any more (generous deadline, returns as soon as
    they are gone); the ones still running at the deadline."""
    deadline = time.monotonic() + timeout
    left = alive(pids)
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = alive(left)
    return left


class Server:
    """A ``webservice-runner`` (or any command) running in the background."""

    def __init__(self, argv: list[str], env: dict, cwd: str, port: int, **popen):
        self.port = port
        self.argv = argv
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **popen)
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for t in self._threads:
            t.start()
        self.stop_seconds: float | None = None

    @staticmethod
    def _drain(stream, sink):
        for chunk in iter(lambda: stream.read1(65536), b""):
            sink.append(chunk)

    @property
    def stdout(self) -> str:
        return b"".join(self._out).decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return b"".join(self._err).decode("utf-8", "replace")

    def output(self) -> str:
        return f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"

    def wait_ready(self, timeout: float = 20) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                for t in self._threads:  # its whole output, for the message
                    t.join(5)
                pytest.fail(f"{self.argv} exited with {self.proc.returncode} before serving\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        pytest.fail(f"{self.argv} did not listen on {self.port} within {timeout}s\n{self.output()}")

    def wait_output(self, text: str, timeout: float = 5, stream: str = "any") -> None:
        """Wait until ``text`` shows up in the output (logs are written asynchronously)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = {"stdout": self.stdout, "stderr": self.stderr, "any": self.stdout + self.stderr}[stream]
            if text in got:
                return
            time.sleep(0.05)
        pytest.fail(f"{text!r} not on {stream} within {timeout}s\n{self.output()}")

    def stop(self, timeout: float = 8, check_orphans: bool = True) -> int:
        """SIGTERM the runner; assert it and all it started are gone within ``timeout`` s."""
        tree = descendants(self.proc.pid)
        assert tree or not check_orphans, f"no child processes of {self.proc.pid}?\n{self.output()}"
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the runner did not exit within {timeout}s of SIGTERM\n{self.output()}")
        self.stop_seconds = time.monotonic() - start
        for t in self._threads:
            t.join(2)
        if check_orphans:
            # the runner waits for them, but the kernel may still be tearing them down
            left = wait_gone(tree | descendants(self.proc.pid), timeout=10)
            if left:
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                pytest.fail(f"processes left after the runner exited: {left}\n{self.output()}")
        return code

    def kill(self) -> None:
        """Teardown: stop the whole tree, whatever state it is in.

        SIGTERM first, so that the runner cleans up (a SIGKILL race is not safe: lighttpd
        respawns a php-cgi killed before it, and the new one outlives everything); then
        SIGKILL for whatever is left, servers before their children.
        """
        tree = descendants(self.proc.pid) if self.proc.poll() is None else set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for _ in range(3):
            left = alive([self.proc.pid, *tree]) if self.proc.poll() is None else alive(tree)
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGSTOP)  # freeze first: nobody respawns anybody
                except OSError:
                    pass
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.1)
            tree |= {p for pid in left for p in descendants(pid)}
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


def start_runner(args: list[str], home: Path, port: int, **env: str) -> Server:
    argv = [sys.executable, "-m", "webservice.runner", *args]
    return Server(argv, runner_env(home, **env), str(home), port).wait_ready()


def start_fourohfour(port: int) -> Server:
    argv = [sys.executable, "-m", "webservice.fourohfour", "--port", str(port), "--bind", "127.0.0.1"]
    env = {"PATH": SBIN_PATH, "PYTHONPATH": PACKAGE_ROOT, "LANG": "C.UTF-8"}
    return Server(argv, env, "/", port).wait_ready()


# --------------------------------------------------------------------------- HTTP


class Response:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.headers} {self.text[:300]!r}>"


def get(port: int, path: str, host: str | None = None, method: str = "GET", timeout: float = 10) -> Response:
    """One HTTP request to 127.0.0.1:port, redirects not followed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Host": host} if host else {}
        conn.request(method, path, headers=headers)
        r = conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()
