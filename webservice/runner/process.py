"""The supervisor: run one server in its own process group and leave nothing behind.

Why not ``exec``: ``npm start`` runs ``sh -c "node server.js"``; on SIGTERM npm signals
the shell, the shell exits and node lives on as an orphan. lighttpd starts php-cgi in a
session of its own. A container's PID 1 that is not a server ignores SIGTERM unless it
installs a handler. So the runner:

* makes itself a child subreaper (Linux ``prctl``), so that orphaned descendants are
  re-parented to it and reaped by it, never left as zombies or strays;
* starts the server as the leader of a new process group (same session);
* forwards SIGTERM/SIGINT/SIGQUIT/SIGHUP/SIGUSR1/SIGUSR2 to the leader, SIGTERM as the
  server's own stop signal (``stop_signal``: SIGINT for lighttpd, whose SIGTERM drops
  open connections);
* after a termination signal: with ``stop_escalate`` set, SIGKILLs the *other* members of
  the group still there that many seconds later (uWSGI: under load a worker sometimes
  misses the master's stop signal and the master would wait 60 s for it); if the leader
  has not exited within ``grace`` seconds, kills the whole group;
* when the leader exits (for any reason), sends SIGTERM to what is left of the group and
  to any re-parented orphan, waits up to ``linger`` seconds, then SIGKILLs them;
* exits with the leader's exit status (128 + N when it died of signal N);
* asks the kernel (Linux ``PR_SET_PDEATHSIG``, set in the child between fork and exec)
  to send the leader ``death_signal`` (SIGTERM; uWSGI: SIGKILL) if the runner dies, even of
  SIGKILL: the server then stops the processes it started itself (lighttpd its
  php-cgi, uWSGI's master its workers), so nothing is left running. This covers only
  what the server stops on SIGTERM: a grandchild that outlives its own parent's SIGTERM
  (a shell script's background job, with the runner already gone) is beyond it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
TERMINATING = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1


def _prctl():
    """libc's ``prctl`` (Linux only), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None


def set_child_subreaper() -> bool:
    """Make orphaned descendants our children (Linux >= 3.4); False where unsupported."""
    prctl = _prctl()
    return prctl is not None and prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def death_signal_setter(sig: int):
    """A ``preexec_fn`` for the server: the kernel sends it ``sig`` when the runner dies.

    Runs in the child between fork and exec (the runner is single-threaded, so that is
    safe); the signal survives the exec (not of a set-uid program). If the runner died
    before the call (the parent is no longer the one that forked), the child exits
    instead of running unsupervised. None where ``prctl`` is unavailable.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def set_death_signal():
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(128 + int(sig))

    return set_death_signal


def _processes():
    """(pid, ppid, pgrp, state) of every process, from /proc; None without /proc."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    result = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = data[data.rfind(b")") + 2 :].split()
        try:
            result.append((int(name), int(fields[1]), int(fields[2]), fields[0].decode()))
        except (IndexError, ValueError):
            continue
    return result


def _leftovers(pgid: int) -> list[int]:
    """Live processes of the child's group, and live children of ours (re-parented orphans)."""
    me = os.getpid()
    procs = _processes()
    if procs is None:
        try:
            os.killpg(pgid, 0)
            return [-pgid]
        except (ProcessLookupError, PermissionError):
            return []
    return [pid for pid, ppid, pgrp, state in procs if state not in ("Z", "X") and pid != me and (pgrp == pgid or ppid == me)]


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _signal_all(pgid: int, pids: list[int], sig: int) -> None:
    """Signal the process group ``pgid`` (if > 0) and each of ``pids``."""
    if pgid > 0:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in pids:
        if pid > 0:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def cleanup(pgid: int, linger: float) -> None:
    """Stop whatever the leader left behind: SIGTERM, up to ``linger`` s, then SIGKILL."""
    _reap()
    left = _leftovers(pgid)
    if not left:
        return
    _signal_all(pgid, left, signal.SIGTERM)
    deadline = time.monotonic() + linger
    while time.monotonic() < deadline:
        _reap()
        left = _leftovers(pgid)
        if not left:
            return
        time.sleep(0.02)
    _signal_all(pgid, left, signal.SIGKILL)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        _reap()
        if not _leftovers(pgid):
            return
        time.sleep(0.02)


def exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _group_members(pgid: int) -> list[int]:
    procs = _processes() or []
    return [pid for pid, ppid, pgrp, state in procs if pgrp == pgid and pid != pgid and state not in ("Z", "X")]


def supervise(
    argv: list[str],
    *,
    cwd: str,
    env: dict,
    pass_fds: tuple = (),
    grace: float = 25.0,
    linger: float = 3.0,
    stop_signal: int = signal.SIGTERM,
    stop_escalate: float | None = None,
    death_signal: int = signal.SIGTERM,
) -> int:
    """Run ``argv`` and supervise it as described in the module docstring; its exit status."""
    set_child_subreaper()
    state: dict = {"leader": None, "pending": [], "stopping": None, "escalated": False}

    def on_alarm(signum, frame):  # a deadline after the stop signal has passed
        leader = state["leader"]
        if leader is None:
            return
        elapsed = time.monotonic() - state["stopping"]
        if stop_escalate is not None and not state["escalated"] and elapsed < grace:
            state["escalated"] = True
            stragglers = _group_members(leader)
            if stragglers:
                print(f"webservice-runner: {len(stragglers)} process(es) of the server still running {stop_escalate:g}s after the stop signal: killing them", file=sys.stderr, flush=True)
                _signal_all(-1, stragglers, signal.SIGKILL)
            signal.setitimer(signal.ITIMER_REAL, max(grace - elapsed, 0.01))
            return
        print(f"webservice-runner: still running {grace:g}s after the stop signal: killing it", file=sys.stderr, flush=True)
        _signal_all(leader, [leader], signal.SIGKILL)

    def forward(signum, frame):
        leader = state["leader"]
        if leader is None:
            state["pending"].append(signum)
            return
        if signum in TERMINATING and state["stopping"] is None:
            state["stopping"] = time.monotonic()
            first = stop_escalate if stop_escalate is not None and stop_escalate < grace else grace
            signal.setitimer(signal.ITIMER_REAL, first)
        try:
            os.kill(leader, stop_signal if signum == signal.SIGTERM else signum)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, on_alarm)
    try:
        stops = [sig for sig in state["pending"] if sig in TERMINATING]
        if stops:  # told to stop before anything started: start nothing
            return 128 + stops[0]
        try:
            child = subprocess.Popen(argv, cwd=cwd, env=env, pass_fds=pass_fds, process_group=0, preexec_fn=death_signal_setter(death_signal))
        except OSError as error:
            print(f"webservice-runner: error: cannot run {argv[0]}: {error.strerror}", file=sys.stderr, flush=True)
            return 127 if isinstance(error, FileNotFoundError) else 126
        state["leader"] = child.pid
        for signum in state["pending"]:
            forward(signum, None)
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:  # cannot happen before the leader is reaped
                status = 0
                break
            if pid == child.pid:
                break
        returncode = os.waitstatus_to_exitcode(status)
        child.returncode = returncode  # reaped here, not by Popen
        signal.setitimer(signal.ITIMER_REAL, 0)
        state["leader"] = None
        cleanup(child.pid, linger)
        return exit_status(returncode)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
