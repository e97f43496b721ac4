"""Signals and the command lock, in one place, for every command that changes a webservice.

- :func:`terminable`: while a command runs, SIGTERM raises ``errors.Terminated`` (a
  KeyboardInterrupt), so that it ends with a word on the state (exit 143) instead of dying
  silently. ``webservice.ui.cli.main`` and the actions use it.
- :func:`shielded`: Ctrl-C and SIGTERM are deferred until a block of changes is done, so
  that changes and the manifest write are never half made.
- :func:`exit_code`: 130 for Ctrl-C, 143 for SIGTERM.
- :class:`CommandLock`: the tool's command lock, held from the first read to the manifest
  write of start, restart and stop.

``webservice shell`` holds signals differently (they are passed on to kubectl):
``webservice.actions.shell.HeldSignals``.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from webservice.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated
from webservice.state.lock import LOCK_TIMEOUT, ToolLock


def exit_code(interruption) -> int:
    """130 for Ctrl-C, 143 for SIGTERM: ``interruption`` is the exception caught or the
    list of signals a :func:`shielded` block deferred."""
    if isinstance(interruption, Terminated) or (isinstance(interruption, list) and signal.SIGTERM in interruption):
        return EXIT_TERMINATED
    return EXIT_INTERRUPTED


@contextlib.contextmanager
def terminable():
    """While a command runs, SIGTERM raises :class:`Terminated` (it would otherwise kill the
    process silently, leaving the user no word on the state)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):  # noqa: ARG001
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class CommandLock:
    """The tool's command lock, held from the first read to the manifest write of start,
    restart and stop (never while waiting), so that two commands on one tool run those
    steps one after the other: each sees the other's result, and the manifest always
    describes the objects last applied.

    It is the one POSIX lock of :mod:`webservice.state.lock` (tool homes are on NFS, where
    an ``flock`` would conflict with it), taken once here and passed down to
    ``update_manifest(..., lock=...)``, which then does not lock again.
    """

    TIMEOUT = LOCK_TIMEOUT

    def __init__(self):
        self.lock: ToolLock | None = None

    def acquire(self, home) -> None:
        self.lock = ToolLock(home, self.TIMEOUT, busy="another webservice command is changing this webservice")
        self.lock.acquire()

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


UNCHANGED = "interrupted before anything was changed: nothing was changed, the webservice is as it was"


@contextlib.contextmanager
def shielded():
    """Defer Ctrl-C (and SIGTERM) until the block is done: changes are never half made.

    Yields a list that holds the signals received meanwhile (empty: none).
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def defer(signum, frame):  # noqa: ARG001
        received.append(signum)

    previous = {sig: signal.signal(sig, defer) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
