"""What the runner knows about the tool it serves, and the ``Launch`` it produces.

Environment contract (all optional):

``HOME``                    the tool home (else the current directory)
``TOOL_NAME``               the tool name (else the Unix user ``<project>.<tool>``, else
                            the name of the home directory)
``PORT``                    set by the runner for the child to the ``--port`` value
``WEBSERVICE_PATH_PREFIX``  ``/<tool>``: legacy path routing (same as ``--prefix``)
``XDG_RUNTIME_DIR``         where the runtime directory is created (else ``$TMPDIR``/tmp)
``WEBSERVICE_RUNNER_STOP_TIMEOUT``  seconds between a stop signal and SIGKILL (default 25:
                            below Kubernetes' default 30 s termination grace period)
"""

from __future__ import annotations

import os
import re
import signal
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Callable

PREFIX_ENV = "WEBSERVICE_PATH_PREFIX"

# one path segment of unreserved URL characters: safe in every config file we write
_SEGMENT = re.compile(r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class RunnerError(Exception):
    """A failure shown as one line ``webservice-runner: error: ...``, exit code 2."""

    exit_code = 2


def missing(path: str, what_to_do: str) -> RunnerError:
    return RunnerError(f"{path} not found: {what_to_do}")


def normalize_prefix(value: str | None, origin: str) -> str | None:
    """``/<tool>`` from ``--prefix`` or the environment; ``None`` for no prefix.

    Lenient about form (``tool``, ``/tool/``), strict about content: one path segment
    of unreserved URL characters, because it ends up in server configuration files.
    """
    if value is None:
        return None
    segment = value.strip().strip("/")
    if not segment:
        return None
    if not _SEGMENT.match(segment):
        raise RunnerError(
            f"invalid path prefix {value!r} ({origin}): expected /<tool>, "
            "one path segment of letters, digits, '-', '_', '.', '~'"
        )
    return "/" + segment


def tool_home(environ: dict) -> str:
    home = environ.get("HOME")
    if home and os.path.isdir(home):
        return os.path.abspath(home)
    return os.getcwd()


def tool_name(environ: dict, home: str) -> str:
    """The tool name, leniently: ``$TOOL_NAME``, the user ``tools.<name>``, the home's name."""
    name = environ.get("TOOL_NAME", "").strip()
    if name:
        return name
    try:
        import pwd

        user = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        user = environ.get("USER", "")
    if "." in user:
        project, _, rest = user.partition(".")
        if project and rest:
            return rest
    return os.path.basename(home.rstrip("/")) or "tool"


def is_dns_label(name: str) -> bool:
    return bool(_DNS_LABEL.match(name))


@dataclass
class Context:
    """Everything a runner type needs to prepare its ``Launch``."""

    type: str
    port: int
    home: str
    tool: str
    prefix: str | None = None
    bind: str = ""
    extra_args: list[str] = field(default_factory=list)
    environ: dict = field(default_factory=dict)
    runtime_dir: str | None = None
    dry_run: bool = False
    pass_fds: list[int] = field(default_factory=list)

    def path(self, *parts: str) -> str:
        return os.path.join(self.home, *parts)

    def which(self, program: str) -> str | None:
        """``program`` on the child's ``PATH``, else in /usr/sbin or /sbin (lighttpd lives
        there and a tool user's ``PATH`` may lack them)."""
        path = self.environ.get("PATH", os.defpath)
        return shutil.which(program, path=path) or shutil.which(program, path="/usr/sbin:/sbin")

    def need_program(self, program: str, hint: str) -> str:
        found = self.which(program)
        if not found:
            raise RunnerError(f"{program} not found on PATH: {hint}")
        return found

    def output_fd(self) -> int | None:
        """A duplicate of the runner's stdout (else stderr) for the child to inherit.

        For servers that open their log "files" themselves: reopening /proc/self/fd/1 or
        /dev/stdout fails for a non-root user when the pipe belongs to someone else (and
        lighttpd points its own stdout at /dev/null). ``None`` when neither is open.
        """
        if self.dry_run:
            return 1
        import fcntl

        for fd in (1, 2):
            try:  # >= 3, so that it is not taken for a standard stream when one is closed
                new = fcntl.fcntl(fd, fcntl.F_DUPFD, 3)
            except OSError:
                continue
            self.pass_fds.append(new)
            return new
        return None

    def make_runtime_dir(self) -> str:
        """A fresh private directory for generated configuration and sockets.

        Inside ``$XDG_RUNTIME_DIR`` when that is a writable directory, else in the
        temporary directory; never in the tool home (NFS). Removed by the CLI on exit.
        """
        if self.runtime_dir is None:
            base = self.environ.get("XDG_RUNTIME_DIR")
            if not (base and os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK)):
                base = None
            self.runtime_dir = tempfile.mkdtemp(prefix="webservice-runner-", dir=base)
        return self.runtime_dir

    def child_env(self) -> dict:
        """The child's environment: ours, plus ``PORT`` and a few logging defaults."""
        env = dict(self.environ)
        env["PORT"] = str(self.port)
        # application output straight to the log, not held in a pipe buffer
        env.setdefault("PYTHONUNBUFFERED", "1")
        if self.prefix:
            env[PREFIX_ENV] = self.prefix
        else:
            env.pop(PREFIX_ENV, None)
        return env


@dataclass
class Launch:
    """What to run: argv (a list, never a shell string), where, with which environment.

    ``files`` are generated files (path -> content) written before the start;
    ``pass_fds`` are file descriptors the child inherits (see ``Context.output_fd``);
    ``stop_signal`` is what the server gets when the runner gets SIGTERM;
    ``stop_escalate``: seconds after which the server's other processes still running are
    killed (see ``process.supervise``);
    ``death_signal``: what the kernel sends the server if the runner dies (see
    ``process.supervise``);
    ``preflight``: a check run (output captured) before the start: when it fails the
    runner does not start, says ``explain(check's stderr)`` and keeps the generated files.
    """

    argv: list[str]
    cwd: str
    env: dict
    description: str
    files: dict[str, str] = field(default_factory=dict)
    pass_fds: tuple = ()
    warnings: list[str] = field(default_factory=list)
    stop_signal: int = signal.SIGTERM
    stop_escalate: float | None = None
    death_signal: int = signal.SIGTERM
    preflight: list[str] | None = None
    explain: Callable[[str], str] | None = None
