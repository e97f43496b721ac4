"""``uwsgi-python`` and ``uwsgi-plain``.

``uwsgi-python``: the WSGI callable ``app`` of ``~/www/python/src/app.py``, served by
uWSGI on an HTTP socket; ``~/www/python/venv`` is used when it exists and
``~/www/python/uwsgi.ini`` is loaded (after the runner's options, so it can override
them) when it exists. ``uwsgi-plain``: uWSGI with ``~/uwsgi.ini``.

The options are given on the command line, not in a generated file: no quoting issues
and nothing written at all. uWSGI logs (requests included) to stderr, and points the
application's stdout there too.

``--manage-script-name`` is always given (as the old launcher did), so that apps mounted
with ``mount = /x=app.py`` in ``uwsgi.ini`` are routed by path. In legacy-path mode (a
prefix ``/<tool>``) the app is mounted at ``/<tool>``: a request for ``/<tool>/x?y`` reaches it with
``SCRIPT_NAME=/<tool>``, ``PATH_INFO=/x``, ``REQUEST_URI=/<tool>/x?y`` (so Flask's
``url_for`` builds prefixed links), and uWSGI's internal routing answers ``/<tool>`` and
``/<tool>?q`` with a 302 redirect to ``/<tool>/`` and ``/<tool>/?q``. For
``uwsgi-plain`` the runner adds only that redirect: mounting the app under ``/<tool>``
is the job of ``~/uwsgi.ini``.
"""

from __future__ import annotations

import os
import re
import signal

from webservice.runner.context import Context, Launch, RunnerError, missing

PLUGIN_DIRS = ("/usr/lib/uwsgi/plugins",)
# How the runner stops uWSGI: SIGTERM to the master (with --die-on-term it stops the
# workers, which takes about a second), and SIGKILL after 3 s for any worker still there:
# under load a worker sometimes misses the master's signal (Python's own SIGINT handler in
# the worker swallows it while it waits in epoll), and the master would wait the 60 s
# "worker-reload-mercy" for it. uWSGI's stop is not graceful anyway: workers are ended, not
# drained.
# If the runner itself dies (SIGKILL), the kernel SIGKILLs the master (PR_SET_PDEATHSIG):
# its workers die with it (uWSGI sets their own death signal to SIGKILL), whereas a
# master told to stop with SIGTERM would wait those 60 s for a worker that missed it.
STOP = {"stop_escalate": 3.0, "death_signal": signal.SIGKILL}


def _has_plugin(name: str) -> bool:
    return any(os.path.exists(os.path.join(d, f"{name}_plugin.so")) for d in PLUGIN_DIRS)


def _plugins(python: bool, prefix: bool) -> list[str]:
    """Debian's uWSGI is a core with plugins; a pip-built one has Python built in."""
    names = []
    if python and _has_plugin("python3"):
        names.append("python3")
    if prefix and _has_plugin("router_redirect"):
        names.append("router_redirect")
    return ["--plugins", ",".join(names)] if names else []


def _common(ctx: Context) -> list[str]:
    return [
        "--http-socket", f"{ctx.bind}:{ctx.port}",
        "--master",
        "--die-on-term",  # SIGTERM stops uWSGI (without it, uWSGI 2.0 reloads)
        "--buffer-size", "32768",  # the wiki cookies outgrow the default 4 KiB
        # always, as the old launcher did: apps mounted with "mount = /x=app.py" in
        # uwsgi.ini are chosen by SCRIPT_NAME, which uWSGI sets only with it
        "--manage-script-name",
    ]


def _redirect(prefix: str) -> list[str]:
    # REQUEST_URI is the raw path and query: "/tool" or "/tool?q" -> "/tool/" or "/tool/?q"
    return ["--route-uri", f"^{re.escape(prefix)}(\\?.*)?$ redirect-302:{prefix}/$1"]


VENV_KEYS = ("venv", "virtualenv", "home", "pyhome")


def check_ini(ini: str, cwd: str) -> None:
    """Refuse, naming the line, an ini whose virtualenv directory does not exist.

    uWSGI would start Python with that directory as its home and crash ("Fatal Python
    error: ... <no Python frame>") after pages of output. Only plain values are checked
    (``%`` magic variables, ``$(VAR)`` and ``@(file)`` are uWSGI's to expand); a relative
    one is taken from the ini's ``chdir`` (else the runner's directory), as uWSGI does.
    """
    try:
        with open(ini, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as error:
        raise RunnerError(f"cannot read {ini}: {error.strerror}") from None
    section, chdir, found = "uwsgi", None, []
    for number, line in enumerate(lines, 1):
        header = re.match(r"^\s*\[([^]]*)\]", line)
        if header:
            section = header.group(1).strip()
            continue
        m = re.match(r"^\s*([A-Za-z0-9_-]+)\s*=\s*(.*?)\s*$", line)
        if not m or section != "uwsgi" or any(c in m.group(2) for c in "%$@"):
            continue
        if m.group(1) == "chdir":
            chdir = m.group(2)
        elif m.group(1) in VENV_KEYS and m.group(2):
            found.append((number, line.strip(), m.group(1), m.group(2)))
    base = os.path.join(cwd, chdir) if chdir else cwd
    for number, text, key, value in found:
        path = os.path.join(base, value)
        if not os.path.isdir(path):
            raise RunnerError(f"{ini} line {number}: {text}  (no such directory {os.path.normpath(path)}: "
                              f"create the virtualenv there, or fix or remove the '{key}' line)")


def prepare_python(ctx: Context) -> Launch:
    src = ctx.path("www", "python", "src")
    app = os.path.join(src, "app.py")
    if not os.path.isdir(src):
        raise missing(src, "create it with an app.py defining the WSGI callable 'app'")
    if not os.path.isfile(app):
        raise missing(app, "create it, defining the WSGI callable 'app' (e.g. app = flask.Flask(__name__))")
    uwsgi = ctx.need_program("uwsgi", "this image has no uWSGI; use a Python type")
    argv = [uwsgi, *_plugins(True, bool(ctx.prefix)), *_common(ctx), "--chdir", src, "--processes", "4", "--need-app", "--callable", "app"]
    venv = ctx.path("www", "python", "venv")
    if os.path.isdir(venv):
        argv += ["--virtualenv", venv]
    if ctx.prefix:
        argv += ["--mount", f"{ctx.prefix}=app.py", *_redirect(ctx.prefix)]
    else:
        argv += ["--wsgi-file", "app.py"]
    ini = ctx.path("www", "python", "uwsgi.ini")
    if os.path.isfile(ini):
        check_ini(ini, src)
        argv += ["--ini", ini]
    argv += ctx.extra_args
    where = f" under {ctx.prefix}/" if ctx.prefix else ""
    extras = ", ".join(x for x in (f"venv {venv}" if os.path.isdir(venv) else "", f"{ini}" if os.path.isfile(ini) else "") if x)
    return Launch(argv=argv, cwd=src, env=ctx.child_env(), description=f"uWSGI: {app}:app{where}" + (f" ({extras})" if extras else ""), **STOP)


def prepare_plain(ctx: Context) -> Launch:
    ini = ctx.path("uwsgi.ini")
    if not os.path.isfile(ini):
        raise missing(ini, "create it with your uWSGI settings (the http socket and port are set by the runner)")
    uwsgi = ctx.need_program("uwsgi", "this image has no uWSGI")
    check_ini(ini, ctx.home)
    argv = [uwsgi, *_plugins(True, bool(ctx.prefix)), *_common(ctx)]
    if ctx.prefix:
        argv += _redirect(ctx.prefix)
    argv += ["--ini", ini, *ctx.extra_args]
    return Launch(argv=argv, cwd=ctx.home, env=ctx.child_env(), description=f"uWSGI with {ini}", **STOP)
