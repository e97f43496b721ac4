"""The tool's one lock: a POSIX record lock (``fcntl.lockf``) on ``~/.service.manifest.lock``.

Tool homes are on NFS, where Linux emulates ``flock`` with POSIX byte-range locks; a
``flock`` and a ``lockf`` on the same file then conflict (and closing any descriptor of a
file drops every POSIX lock the process holds on it). So there is exactly one mechanism,
``lockf``, and a command takes the lock once (:class:`ToolLock`) and passes it down to
:func:`webservice.state.manifest.update_manifest`, which then does not lock again. POSIX
locks belong to the process, so a per-path :class:`threading.Lock` also serialises
threads of one process.

The lock file is opened without following symlinks and must be a regular file owned by
the running user. The holder writes ``pid N on HOST`` into it, shown when another command
gives up waiting. This module does not read or write the manifest itself.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading
import time

from webservice.errors import ManifestError
from webservice.state.yamlio import oneline

LOCK_NAME = ".service.manifest.lock"
LOCK_TIMEOUT = 30.0

_registry_guard = threading.Lock()
_thread_locks: dict[str, threading.Lock] = {}


def lock_path(home: str | os.PathLike) -> str:
    return os.path.join(os.fspath(home), LOCK_NAME)


def _thread_lock(path: str) -> threading.Lock:
    key = os.path.abspath(path)
    with _registry_guard:
        return _thread_locks.setdefault(key, threading.Lock())


def _open(path: str) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ManifestError(f"{oneline(path)} is a symbolic link; refusing to follow it",
                                "delete it; it is only a lock file") from None
        raise ManifestError(f"cannot create the lock file {oneline(path)}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise ManifestError(f"lock file {oneline(path)} is not a regular file owned by "
                                f"this user; refusing to use it", "delete it; it is only a lock file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _busy_error(fd: int, home: str, timeout: float, busy: str | None) -> ManifestError:
    if busy:
        return ManifestError(f"{busy}; gave up waiting for it after {timeout:g} s",
                             "wait for it to finish and run this command again")
    try:
        holder = oneline(os.pread(fd, 200, 0).decode("utf-8", "replace").strip(), 80)
    except OSError:
        holder = ""
    manifest = os.path.join(home, "service.manifest")
    return ManifestError(
        f"another webservice command is updating {oneline(manifest)} "
        f"(lock held by {holder or 'an unknown process'}?); gave up after {timeout:g} s",
        "wait for it to finish and run this command again")


class ToolLock:
    """The tool's exclusive lock; ``acquire`` once, pass the object down, ``release`` (or
    use it as a context manager). Releasing twice is harmless."""

    def __init__(self, home: str | os.PathLike, timeout: float = LOCK_TIMEOUT, busy: str | None = None):
        self.home = os.fspath(home)
        self.path = lock_path(self.home)
        self.timeout = timeout
        self.busy = busy
        self.fd: int | None = None
        self._thread: threading.Lock | None = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def covers(self, home: str | os.PathLike) -> bool:
        """Whether this held lock is the lock of ``home``."""
        return self.held and os.path.abspath(lock_path(home)) == os.path.abspath(self.path)

    def acquire(self) -> "ToolLock":
        if self.fd is not None:
            return self
        deadline = time.monotonic() + self.timeout
        thread_lock = _thread_lock(self.path)
        if not thread_lock.acquire(timeout=max(self.timeout, 0)):
            raise ManifestError(
                (self.busy or f"another webservice command is updating "
                 f"{oneline(os.path.join(self.home, 'service.manifest'))} (in this process)")
                + f"; gave up waiting for it after {self.timeout:g} s",
                "wait for it to finish and run this command again")
        try:
            fd = _open(self.path)
            try:
                delay = 0.01
                while True:
                    try:
                        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except OSError as exc:
                        if exc.errno not in (errno.EACCES, errno.EAGAIN):
                            raise ManifestError(f"cannot lock {oneline(self.path)}: {exc.strerror}") from None
                    if time.monotonic() >= deadline:
                        raise _busy_error(fd, self.home, self.timeout, self.busy)
                    time.sleep(delay)
                    delay = min(delay * 2, 0.2)
                import socket  # here, not at the top: keep --help and --dry-run imports small

                try:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
                except OSError:
                    pass  # only informative
            except BaseException:
                os.close(fd)
                raise
        except BaseException:
            thread_lock.release()
            raise
        self.fd, self._thread = fd, thread_lock
        return self

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            try:
                os.close(fd)  # closing releases the POSIX lock
            finally:
                thread_lock, self._thread = self._thread, None
                if thread_lock is not None:
                    thread_lock.release()

    def __enter__(self) -> "ToolLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def take_lock(home: str | os.PathLike, timeout: float = LOCK_TIMEOUT, *, busy: str | None = None) -> ToolLock:
    """Take the tool's lock and return it held (``release()`` frees it)."""
    return ToolLock(home, timeout, busy).acquire()
