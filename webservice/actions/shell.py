"""``webservice shell``: an interactive container like the webservice's, through kubectl.

The pod (``objects.build_shell_pod``: the type's image, the webservice's resources and
working directory, the labels that get the tool's storage mounted) is started by::

    kubectl --kubeconfig K --namespace tool-T run shell-<random> --attach --stdin [--tty]
        --restart=Never --rm --quiet --pod-running-timeout=1m --image=IMAGE
        --overrides=POD_JSON --command -- CMD...      (default CMD: /bin/bash -il)

as an argument list (never a shell string), with ``GOMAXPROCS=1`` (the bastion is shared)
and ``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true`` (kubectl 1.29 attaches over WebSocket only
with it; later versions do by default) in kubectl's environment.

- ``--quiet`` drops kubectl's ``If you don't see a command prompt...`` and ``pod "..."
  deleted`` lines (the output of ``-- CMD`` is CMD's alone); on a terminal webservice says
  itself which pod starts and to press Enter if the prompt came before the attach.
- The name is ``shell-`` and 10 random hex digits (``secrets``), checked unused first:
  two shells started in the same second do not collide.
- A TTY is requested only when stdin and stdout are both terminals, so ``webservice
  shell -- CMD`` works in scripts and pipes; the exit status is CMD's (kubectl passes the
  container's exit code on). kubectl's own ``pod NS/NAME terminated (Error)`` line, which
  repeats what that exit status says, is left out of stderr.
- Afterwards the pod is deleted through the API (by name, only if it carries the shell
  labels), whether kubectl succeeded, failed or was interrupted: ``--rm`` alone leaks the
  pod when kubectl dies. SIGINT, SIGTERM and SIGHUP (a dropped ssh session) are held
  while kubectl runs and passed on to it, then the pod is deleted, then the command
  exits with 128+signal.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import replace

from webservice.errors import ClusterError, MissingProgramError
from webservice.ui.results import ShellResult

DEFAULT_COMMAND = ["/bin/bash", "-il"]
KUBECTL_ENV = {"GOMAXPROCS": "1", "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "true"}
POD_RUNNING_TIMEOUT = "1m"
SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
INT_GRACE = 1.0  # a terminal's Ctrl-C reaches kubectl itself; pass it on only if still running
STOP_GRACE = 10.0  # then SIGKILL
# kubectl's "pod NS/NAME terminated (REASON)" after a non-zero exit (the status says it)
_TERMINATED = re.compile(rb"^pod [a-z0-9.-]+/shell-[0-9a-f]+ terminated \([^)]*\)\r?$")


def pod_name() -> str:
    return f"shell-{secrets.token_hex(5)}"


def shell_labels(name: str) -> dict:
    """The labels a shell pod must carry for webservice to delete it."""
    from webservice.builders.objects import COMPONENT, MANAGED_BY, SHELL_COMPONENT

    return {"name": name, COMPONENT: SHELL_COMPONENT, MANAGED_BY: "webservice"}


def find_kubectl(path: str | None = None) -> str:
    found = shutil.which("kubectl", path=path)
    if not found:
        raise MissingProgramError(
            "'webservice shell' needs kubectl, which is not installed (or not on PATH)",
            hint="install the 'kubectl' package (apt install kubectl); on a Toolforge bastion, "
            "ask the Toolforge admins (#wikimedia-cloud)",
        )
    return found


def kubectl_argv(kubectl: str, pod: dict, *, command: list[str], tty: bool, namespace: str,
                 kubeconfig: str | None) -> list[str]:
    """The kubectl command line (a list: no shell ever parses it)."""
    container = pod["spec"]["containers"][0]
    argv = [kubectl]
    if kubeconfig:
        argv.append(f"--kubeconfig={kubeconfig}")
    argv += [
        f"--namespace={namespace}", "run", pod["metadata"]["name"],
        "--attach", "--stdin", *(["--tty"] if tty else []),
        "--restart=Never", "--rm", "--quiet", f"--pod-running-timeout={POD_RUNNING_TIMEOUT}",
        f"--image={container['image']}",
        "--overrides=" + json.dumps(pod, separators=(",", ":"), sort_keys=True),
        "--command", "--", *command,
    ]
    return argv


def kubectl_env(environ=None) -> dict:
    env = dict(os.environ if environ is None else environ)
    env.update(KUBECTL_ENV)
    return env


class StderrFilter:
    """Copies kubectl's stderr through, leaving out its ``pod NS/NAME terminated`` line.

    Text is passed on at once; only a line that may turn out to be that one (it starts
    with ``pod ``) waits for its end.
    """

    def __init__(self, write):
        self.write = write
        self.pending = b""

    def feed(self, data: bytes) -> None:
        self.pending += data
        while self.pending:
            newline = self.pending.find(b"\n")
            if newline >= 0:
                line, self.pending = self.pending[:newline], self.pending[newline + 1:]
                if not _TERMINATED.match(line):
                    self.write(line + b"\n")
                continue
            if len(self.pending) < 200 and (b"pod "[: len(self.pending)] == self.pending[:4]):
                return  # maybe the line to leave out: wait for its end
            self.write(self.pending)
            self.pending = b""

    def close(self) -> None:
        if self.pending and not _TERMINATED.match(self.pending):
            self.write(self.pending)
        self.pending = b""


def _relay(pipe, filt: StderrFilter) -> None:
    try:
        while True:
            data = os.read(pipe.fileno(), 65536)
            if not data:
                break
            filt.feed(data)
    except OSError:
        pass
    finally:
        filt.close()


def _write_stderr(data: bytes) -> None:
    try:
        os.write(sys.stderr.fileno(), data)
    except (OSError, ValueError):
        pass


class HeldSignals:
    """While active, SIGINT/SIGTERM/SIGHUP do not stop this process: they are recorded
    (``received``) and passed on to ``child`` if one runs (SIGINT only by ``run_kubectl``
    after a grace, since a terminal's Ctrl-C reaches kubectl by itself)."""

    def __init__(self):
        self.received: list[int] = []
        self.child: subprocess.Popen | None = None
        self._previous: dict = {}

    def _handler(self, signum, frame):  # noqa: ARG002
        self.received.append(signum)
        child = self.child
        if child is not None and signum != signal.SIGINT and child.poll() is None:
            try:
                child.send_signal(signum)
            except OSError:
                pass

    def __enter__(self) -> "HeldSignals":
        for name in SIGNALS:
            if hasattr(signal, name):
                sig = getattr(signal, name)
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)

    @property
    def first(self) -> int | None:
        return self.received[0] if self.received else None


def run_kubectl(argv: list[str], env: dict, signals: HeldSignals) -> int:
    """Run kubectl on this terminal (stderr through :class:`StderrFilter`); return its
    exit status (128+N if a signal N ended it). Call it inside ``signals``."""
    import time

    try:
        process = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE)
    except OSError as exc:
        raise MissingProgramError(
            f"cannot run {argv[0]}: {exc.strerror or exc}",
            hint="install the 'kubectl' package (apt install kubectl) or ask the Toolforge admins",
        ) from None
    signals.child = process
    relay = threading.Thread(target=_relay, args=(process.stderr, StderrFilter(_write_stderr)),
                             daemon=True, name="kubectl-stderr")
    relay.start()
    first_signal_at = None
    passed_int = False
    while True:
        try:
            code = process.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            pass
        if not signals.received:
            continue
        now = time.monotonic()
        first_signal_at = first_signal_at or now
        try:
            if now - first_signal_at > INT_GRACE + STOP_GRACE:
                process.kill()
            elif now - first_signal_at > INT_GRACE and not passed_int and signal.SIGINT in signals.received:
                passed_int = True
                process.send_signal(signal.SIGINT)
        except OSError:
            pass
    signals.child = None
    relay.join(timeout=2)
    return 128 - code if code < 0 else code


def _delete(cluster, name: str) -> tuple[bool, str | None]:
    """Delete the shell pod if it is still there; (gone, problem)."""
    try:
        cluster.delete_pod(name, expect_labels=shell_labels(name))
        return True, None
    except ClusterError as exc:
        return False, (f"the shell pod {name} may be left behind ({exc.message}); "
                       f"delete it with 'kubectl delete pod {name}'")


def shell(request) -> ShellResult:
    """Run the shell (or ``-- CMD...``) in a new pod; delete the pod afterwards."""
    from webservice.kube.cluster import Cluster, kubeconfig_paths
    from webservice.model.context import Context
    from webservice.actions.connect import catalogue_fetch
    from webservice.builders.objects import build_shell_pod

    kubectl = find_kubectl()
    command = list(request.extra_args) if request.extra_args else list(DEFAULT_COMMAND)
    # the words after "--" are the shell's command, not the webservice's extra args
    ctx = Context.load(replace(request, extra_args=None))
    cluster = Cluster.connect(ctx.tool, debug=request.debug)
    try:
        # no type anywhere: the site's default type, with a warning (like start)
        spec = ctx.spec(ctx.catalogue(fetch=catalogue_fetch(cluster)))
        name = pod_name()
        while cluster.get("Pod", name) is not None:  # practically never: 40 random bits
            name = pod_name()
        tty = sys.stdin.isatty() and sys.stdout.isatty()
        pod = build_shell_pod(spec, name, command, tty)
        paths = kubeconfig_paths()
        argv = kubectl_argv(kubectl, pod, command=command, tty=tty, namespace=cluster.namespace,
                            kubeconfig=str(paths[0]) if len(paths) == 1 else None)
        from webservice.ui import output

        for message in dict.fromkeys(request.warnings):  # before the session, not after it
            output.warn(message)
        request.warnings.clear()
        if request.debug:
            output.note("debug: " + shlex.join(argv))
        if tty:
            output.note(f"starting a {spec.type_name} shell in pod {name}; press Enter if no prompt shows")
        code = 1
        with HeldSignals() as signals:  # also while cleaning up: Ctrl-C must not skip it
            try:
                code = run_kubectl(argv, kubectl_env(), signals)
            finally:
                gone, problem = _delete(cluster, name)
        if signals.first is not None:
            code = 128 + signals.first
        return ShellResult(pod=name, exit_code=code, deleted=gone, cleanup_problem=problem,
                           interrupted=signals.first is not None)
    finally:
        cluster.close()
