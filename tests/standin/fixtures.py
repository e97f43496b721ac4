"""pytest fixtures around the stand-in (loaded by ``tests/conftest.py`` through
``pytest_plugins = ["tests.standin.fixtures"]``).

``standin``
    The running ``StandIn`` (one HTTPS server per test session, started in a background
    thread), reset before each test: seeded objects only, no events/logs/requests/faults,
    ``scenario = "healthy"``, ``time_scale = 0.01``, default quota and limits.  A test
    fails at teardown if the controller simulation raised (a stand-in bug).
``toolforge`` / ``toolforge_with_job``
    ``standin`` configured as today's Toolforge (``standin.configure("toolforge")``), the
    second with a job ``myjob`` published on the tool's host.  Any test may instead say
    ``@pytest.mark.standin("toolforge", rbac="tools-user-no-httproute", ...)`` (arguments
    of ``StandIn.configure``).
``ws_env``
    An isolated environment to run the real ``webservice`` CLI as a subprocess (see
    ``WsEnv``).
``kubeconfig``
    Path of a kubeconfig for the default tool (absolute certificate paths).
``kube_client``
    Factory ``kube_client(user=None, *, foreign=False, with_cert=True)`` returning a
    ``kubernetes.client.ApiClient`` for the stand-in.
``kubectl``
    Runner ``kubectl(*args, input=None, timeout=60, kubeconfig=None)`` returning a
    ``CompletedProcess`` (text), using ``/usr/bin/kubectl`` (or ``$STANDIN_KUBECTL``).

kubectl notes: ``/usr/bin/kubectl`` is Google Cloud SDK's dispatcher; it asks the server's
``/version`` (``?timeout=5s``, user agent ``kubectl-dispatcher/v1.0``) and runs the matching
``kubectl.1.NN`` (1.27-1.33).  Checked with ``strace -e trace=connect``: the only
connections are to the stand-in; no gcloud configuration is needed
(``CLOUDSDK_CORE_DISABLE_PROMPTS=1`` is set anyway).  kubectl keeps a discovery cache in
``$HOME/.kube/cache``.  kubectl 1.29 needs ``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true`` to
attach/exec over WebSocket (1.30+ do by default; 1.27/1.28 only speak SPDY, which the
stand-in does not, so keep the reported version >= 1.29); both runners here and
``ws_env.env`` set it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .cluster import StandIn

KUBECTL = os.environ.get("STANDIN_KUBECTL") or shutil.which("kubectl") or "/usr/bin/kubectl"
KUBECTL_ENV = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "true", "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}


@pytest.fixture(scope="session")
def standin_server(tmp_path_factory):
    server = StandIn(directory=str(tmp_path_factory.mktemp("standin"))).start()
    yield server
    server.stop()


def pytest_configure(config):
    config.addinivalue_line("markers", "standin(preset=None, published_job=None, **settings): configure the "
                            "Kubernetes API stand-in for this test (see tests/standin/toolforge.py)")


@pytest.fixture
def standin(standin_server, request):
    standin_server.reset()
    marker = request.node.get_closest_marker("standin")
    if marker is not None:
        standin_server.configure(*marker.args, **marker.kwargs)
    yield standin_server
    errors = list(standin_server.controller_errors)
    standin_server.processes.kill_all()
    if errors:
        pytest.fail(f"the stand-in's controller simulation failed: {errors}")


@pytest.fixture
def toolforge(standin):
    """The stand-in as today's Toolforge (preset ``"toolforge"``: tools-user RBAC, Kyverno pod
    policy, a running Gateway controller, no ingress controller, the 2023 quota)."""
    return standin.configure("toolforge")


@pytest.fixture
def toolforge_with_job(toolforge):
    """``toolforge`` plus a continuous job ``myjob`` published on the tool's host (port 8080)."""
    toolforge.publish_job("myjob", 8080)
    return toolforge


class WsEnv:
    """A tool's isolated world for running ``webservice`` as a subprocess.

    Attributes: ``home`` (the tool's home, also ``HOME``), ``tmp`` (the test's temp dir),
    ``kubeconfig`` (``~/.kube/config`` with relative ``../.toolskube/client.{crt,key}``
    paths and namespace ``tool-<tool>``), ``env`` (the environment dict: outer environment
    less ``KUBECONFIG`` and ``WEBSERVICE_*``, plus ``HOME``, ``XDG_CONFIG_HOME``,
    ``XDG_CACHE_HOME``, ``XDG_STATE_HOME``, ``WEBSERVICE_TOOL``,
    ``WEBSERVICE_SITE_CONFIG`` (a non-existent file), ``NO_COLOR=1``, ``COLUMNS=100``,
    ``TERM=dumb``, and the kubectl variables above), ``tool``, ``standin``.
    """

    def __init__(self, standin: StandIn, tmp, tool: str | None = None):
        self.standin = standin
        self.tool = tool or standin.tool
        self.tmp = str(tmp)
        self.home = os.path.join(self.tmp, "project", self.tool)
        os.makedirs(self.home)
        self.kubeconfig = standin.kubeconfig(os.path.join(self.home, ".kube", "config"), user=self.tool,
                                             relative_to_toolskube=True)
        env = {k: v for k, v in os.environ.items()
               if k != "KUBECONFIG" and not k.startswith("WEBSERVICE_") and not k.startswith("PYTEST_")}
        xdg = os.path.join(self.tmp, "xdg")
        env.update({
            "HOME": self.home,
            "XDG_CONFIG_HOME": os.path.join(xdg, "config"),
            "XDG_CACHE_HOME": os.path.join(xdg, "cache"),
            "XDG_STATE_HOME": os.path.join(xdg, "state"),
            "WEBSERVICE_TOOL": self.tool,
            "WEBSERVICE_SITE_CONFIG": os.path.join(self.tmp, "etc", "webservice.yaml"),
            "NO_COLOR": "1", "COLUMNS": "100", "TERM": "dumb",
            **KUBECTL_ENV,
        })
        env.pop("FORCE_COLOR", None)
        env.pop("CLICOLOR_FORCE", None)
        self.env = env

    def command(self, *args) -> list[str]:
        script = os.path.join(os.path.dirname(sys.executable), "webservice")
        if os.path.exists(script):
            return [script, *map(str, args)]
        return [sys.executable, "-m", "webservice", *map(str, args)]

    def _env(self, env_extra):
        env = dict(self.env)
        for k, v in (env_extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def run(self, *args, input: str | None = None, timeout: float = 60, env_extra: dict | None = None,
            cwd: str | None = None) -> subprocess.CompletedProcess:
        """Run ``webservice *args`` to completion (text mode, stdout and stderr captured)."""
        return subprocess.run(self.command(*args), input=input, capture_output=True, text=True,
                              timeout=timeout, env=self._env(env_extra), cwd=cwd or self.home,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def popen(self, *args, env_extra: dict | None = None, cwd: str | None = None, **kw) -> subprocess.Popen:
        """Start ``webservice *args`` (text mode, pipes) for tests that signal or stream."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("text", True)
        return subprocess.Popen(self.command(*args), env=self._env(env_extra), cwd=cwd or self.home, **kw)


def deliver(process: subprocess.Popen, sig: int, timeout: float = 30.0) -> None:
    """Send ``sig`` to ``process`` and return once the kernel has delivered it (it is no
    longer pending in /proc/<pid>/status), so that a test can then release a held request
    knowing the handler runs first. Returns at once if the process has exited."""
    import time

    process.send_signal(sig)
    bit = 1 << (sig - 1)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with open(f"/proc/{process.pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            return
        if not any(int(fields.get(k, "0").strip() or "0", 16) & bit for k in ("SigPnd", "ShdPnd")):
            return
        time.sleep(0.005)


@pytest.fixture
def ws_env(standin, tmp_path):
    return WsEnv(standin, tmp_path)


@pytest.fixture
def python_env(ws_env):
    """``ws_env`` for a python3.11 tool: its home has ``www/python/src/app.py`` (what the
    preflight looks for)."""
    src = Path(ws_env.home) / "www" / "python" / "src"
    src.mkdir(parents=True)
    (src / "app.py").write_text("app = None\n")
    return ws_env


@pytest.fixture
def kubeconfig(standin, tmp_path):
    return standin.kubeconfig(str(tmp_path / "kube" / "config"))


@pytest.fixture
def kube_client(standin, tmp_path):
    from kubernetes import config

    made = []

    def make(user: str | None = None, *, foreign: bool = False, with_cert: bool = True):
        path = tmp_path / "kube" / f"config-{user or standin.tool}-{len(made)}"
        standin.kubeconfig(str(path), user=user, foreign=foreign, with_cert=with_cert)
        client = config.new_client_from_config(str(path))
        made.append(client)
        return client

    yield make
    for c in made:
        try:
            c.close()
        except Exception:
            pass


@pytest.fixture
def kubectl(standin, kubeconfig):
    def run(*args, input: str | None = None, timeout: float = 60, kubeconfig_path: str | None = None,
            env_extra: dict | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env.update(KUBECTL_ENV)
        env["HOME"] = os.path.dirname(os.path.dirname(kubeconfig))
        env.update(env_extra or {})
        return subprocess.run([KUBECTL, "--kubeconfig", kubeconfig_path or kubeconfig, *map(str, args)],
                              input=input, capture_output=True, text=True, timeout=timeout, env=env,
                              stdin=None if input is not None else subprocess.DEVNULL)
    return run
