"""Fixtures for the runner tests: a tool home and servers that are always cleaned up."""

from __future__ import annotations

import pytest

from tests.runner import support


@pytest.fixture
def home(tmp_path):
    """An empty tool home, /.../<tool>, named like a tool."""
    path = tmp_path / "mytool"
    path.mkdir()
    return path


@pytest.fixture
def servers():
    """Start servers with ``servers.runner(args, home)``; all are killed at teardown."""

    class Servers:
        def __init__(self):
            self.started = []

        def runner(self, args, home, port=None, **env):
            port = port or support.free_port()
            server = support.start_runner(["--port", str(port), "--bind", "127.0.0.1", *args], home, port, **env)
            self.started.append(server)
            return server

        def fourohfour(self, port=None):
            server = support.start_fourohfour(port or support.free_port())
            self.started.append(server)
            return server

        def add(self, server):
            self.started.append(server)
            return server

    s = Servers()
    yield s
    for server in s.started:
        if server.proc.poll() is None:
            server.kill()
