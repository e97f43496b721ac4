"""``webservice shell``: kubectl's command line and stderr filter, then the real CLI with
the real kubectl against the stand-in (which runs the "container" as a local process).

End-to-end: ``-- echo hello`` (output, exit 0), ``-- sh -c 'exit 7'`` (exit 7, no kubectl
noise), an interactive session under a real pseudo-terminal (prompt, command, exit, pod
gone), Ctrl-C during a command (pod deleted anyway), kubectl missing (one line, exit 8).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import termios
import threading
import time

import pytest

from webservice.errors import MissingProgramError
from webservice.actions.shell import (
    KUBECTL_ENV,
    HeldSignals,
    StderrFilter,
    find_kubectl,
    kubectl_argv,
    kubectl_env,
    pod_name,
    run_kubectl,
    shell_labels,
)

SHELL_LABELS = {"app.kubernetes.io/component": "webservice-interactive"}

# --- pure parts -------------------------------------------------------------------------


def _pod(name="shell-0123456789"):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": shell_labels(name)},
            "spec": {"containers": [{"name": name, "image": "registry/img:latest"}]}}


def test_pod_names_are_random_dns_labels():
    names = {pod_name() for _ in range(200)}
    assert len(names) == 200
    assert all(re.fullmatch(r"shell-[0-9a-f]{10}", name) for name in names)


def test_kubectl_argv_is_a_list_with_explicit_namespace_and_kubeconfig():
    pod = _pod()
    argv = kubectl_argv("/usr/bin/kubectl", pod, command=["sh", "-c", "echo 'a b'; exit 7"], tty=False,
                        namespace="tool-mytool", kubeconfig="/home/x/.kube/config")
    assert argv[:4] == ["/usr/bin/kubectl", "--kubeconfig=/home/x/.kube/config", "--namespace=tool-mytool", "run"]
    assert argv[4] == "shell-0123456789"
    assert {"--attach", "--stdin", "--restart=Never", "--rm", "--quiet", "--pod-running-timeout=1m",
            "--image=registry/img:latest", "--command"} <= set(argv)
    assert "--tty" not in argv
    assert argv[-4:] == ["--", "sh", "-c", "echo 'a b'; exit 7"]  # one argument, never re-parsed
    overrides = next(a for a in argv if a.startswith("--overrides="))
    assert json.loads(overrides.split("=", 1)[1]) == pod
    with_tty = kubectl_argv("kubectl", pod, command=["/bin/bash", "-il"], tty=True, namespace="tool-x",
                            kubeconfig=None)
    assert "--tty" in with_tty and not any(a.startswith("--kubeconfig") for a in with_tty)


def test_kubectl_env_sets_what_the_attach_needs():
    env = kubectl_env({"PATH": "/bin", "GOMAXPROCS": "8"})
    assert env == {"PATH": "/bin", **KUBECTL_ENV}
    assert env["GOMAXPROCS"] == "1" and env["KUBECTL_REMOTE_COMMAND_WEBSOCKETS"] == "true"


def test_missing_kubectl(tmp_path):
    with pytest.raises(MissingProgramError) as error:
        find_kubectl(path=str(tmp_path))
    assert error.value.exit_code == 8 and "kubectl" in error.value.message and "apt install kubectl" in error.value.hint


def test_stderr_filter_leaves_out_only_kubectls_terminated_line():
    written = []
    filt = StderrFilter(written.append)
    filt.feed(b"Enter a value: ")  # a prompt without newline passes at once
    assert b"".join(written) == b"Enter a value: "
    filt.feed(b"err\npod tool-mytool/shell-0123456789 termin")
    assert b"".join(written) == b"Enter a value: err\n"  # the possible kubectl line waits
    filt.feed(b"ated (Error)\npod is a word\n")
    filt.feed(b"po")
    filt.close()
    assert b"".join(written) == b"Enter a value: err\npod is a word\npo"


def test_run_kubectl_returns_the_status_and_filters_stderr(capfd):
    with HeldSignals() as signals:
        code = run_kubectl(["sh", "-c", "echo out; echo err >&2; "
                            "echo 'pod tool-x/shell-0123456789 terminated (Error)' >&2; exit 5"],
                           dict(os.environ), signals)
    assert code == 5 and signals.first is None
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("out\n", "err\n")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_run_kubectl_holds_and_passes_on_termination_signals(signum):
    threading.Timer(0.3, os.kill, (os.getpid(), signum)).start()
    started = time.monotonic()
    with HeldSignals() as signals:
        code = run_kubectl(["sleep", "30"], dict(os.environ), signals)
    assert signals.first == signum  # this process lived on to clean up
    assert code == 128 + signum and time.monotonic() - started < 25  # kubectl got it (not its 30 s sleep)
    assert signal.getsignal(signum) is not signals._handler  # restored afterwards


def test_run_kubectl_passes_sigint_on_after_a_grace():
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    with HeldSignals() as signals:  # (a terminal's Ctrl-C would reach the child by itself)
        code = run_kubectl(["sleep", "30"], dict(os.environ), signals)
    assert signals.first == signal.SIGINT and code == 128 + signal.SIGINT


# --- end to end ------------------------------------------------------------------------


def _shell_pods(standin):
    return standin.pods(**SHELL_LABELS)


@pytest.mark.kubectl
def test_shell_command_prints_and_returns_0(ws_env, standin):
    # webservice must set the attach protocol variable itself (kubectl 1.29 needs it)
    result = ws_env.run("python3.11", "shell", "--", "echo", "hello",
                        env_extra={"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": None})
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello\n", "")
    created = [r for r in standin.requests_for("POST", "/pods") if r.body]
    assert len(created) == 1
    pod = created[0].body
    name = pod["metadata"]["name"]
    assert re.fullmatch(r"shell-[0-9a-f]{10}", name)
    assert pod["metadata"]["labels"].items() >= {**shell_labels(name), "toolforge": "tool"}.items()
    container = pod["spec"]["containers"][0]
    assert container["image"].endswith("toolforge-python311-sssd-web:latest")
    assert container["command"] == ["echo", "hello"]
    assert container["workingDir"] == f"/data/project/{standin.tool}/"
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    assert not container.get("tty")  # not on a terminal: no TTY (kubectl omits false)
    assert _shell_pods(standin) == []


@pytest.mark.kubectl
def test_shell_returns_the_commands_exit_status(ws_env, standin):
    result = ws_env.run("python3.11", "shell", "--", "sh", "-c", "echo oops >&2; exit 7")
    assert result.returncode == 7
    assert result.stderr == "oops\n"  # kubectl's "pod ... terminated (Error)" is left out
    assert _shell_pods(standin) == []


@pytest.mark.kubectl
def test_shell_reads_stdin_when_not_on_a_terminal(ws_env, standin):
    result = ws_env.run("python3.11", "shell", "--", "tr", "a-z", "A-Z", input="piped text\n")
    assert (result.returncode, result.stdout) == (0, "PIPED TEXT\n")


class Terminal:
    """``webservice`` on a real pseudo-terminal."""

    def __init__(self, ws_env, *args):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            # a real terminal has a size; a pty starts at 0x0, which kubectl may pass on as
            # a 1-column terminal, where bash's readline draws its prompt as a bare "\r"
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
            os.chdir(ws_env.home)
            command = ws_env.command(*args)
            env = {**ws_env.env, "TERM": "xterm"}
            os.execvpe(command[0], command, env)
        self.output = b""

    def expect(self, pattern: bytes, timeout: float = 20.0) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match.group(0)
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    break
                self.output += data
        raise AssertionError(f"{pattern!r} not seen; output: {self.output.decode(errors='replace')!r}")

    def send(self, text: bytes) -> None:
        os.write(self.fd, text)

    def wait(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            try:  # keep draining, or the child may block writing
                if select.select([self.fd], [], [], 0.1)[0]:
                    self.output += os.read(self.fd, 4096)
            except OSError:
                time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError("webservice shell did not end")


@pytest.mark.kubectl
def test_interactive_shell_on_a_terminal(ws_env, standin):
    terminal = Terminal(ws_env, "python3.11", "shell")
    try:
        terminal.expect(rb"press Enter if no prompt shows")
        standin.wait_for(lambda: _shell_pods(standin), timeout=20)
        terminal.send(b"\n")
        terminal.expect(rb"[#$] ")
        terminal.send(b"echo \"answer: $((6 * 7))\"; tty\n")
        terminal.expect(rb"answer: 42")
        terminal.expect(rb"/dev/pts/\d+")  # a TTY was requested, as on a terminal it should
        pods = _shell_pods(standin)
        assert len(pods) == 1 and pods[0]["spec"]["containers"][0]["tty"] is True
        terminal.send(b"exit 3\n")
        assert terminal.wait() == 3
    finally:
        try:
            os.kill(terminal.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert _shell_pods(standin) == []


@pytest.mark.kubectl
def test_ctrl_c_during_a_command_still_deletes_the_pod(ws_env, standin):
    process = ws_env.popen("python3.11", "shell", "--", "sleep", "60")
    try:
        def running():
            return [p for p in _shell_pods(standin)
                    if "running" in ((p["status"].get("containerStatuses") or [{}])[0].get("state") or {})]

        standin.wait_for(running, timeout=20)
        time.sleep(0.3)  # attached
        process.send_signal(signal.SIGINT)  # to webservice only: it passes it on to kubectl
        assert process.wait(timeout=30) == 130
        err = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in err
    assert _shell_pods(standin) == []
    assert standin.requests_for("DELETE", "/pods/shell-")


def test_kubectl_missing_is_one_clear_line(ws_env, standin):
    result = ws_env.run("python3.11", "shell", env_extra={"PATH": "/nonexistent"})
    assert result.returncode == 8
    assert result.stderr.count("\n") == 1
    assert "kubectl" in result.stderr and "apt install kubectl" in result.stderr
    assert standin.requests == []  # found out before talking to the cluster


@pytest.mark.kubectl
def test_no_type_anywhere_opens_a_shell_of_the_default_type(ws_env, standin):
    """Like the old command (and like start): no type on the command line, in the
    template or in the manifest means the site's default type, with a warning."""
    result = ws_env.run("shell", "--", "echo", "hello")
    assert result.returncode == 0 and result.stdout == "hello\n", result.stderr
    assert "starting the default type php7.4" in result.stderr
    pod = [r for r in standin.requests_for("POST", "/pods") if r.body][0].body
    assert pod["spec"]["containers"][0]["image"].endswith("toolforge-php74-sssd-web:latest")
