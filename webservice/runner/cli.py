"""The ``webservice-runner`` command line.

    webservice-runner --type TYPE --port PORT [--prefix /TOOL] [--bind ADDR] [--dry-run]
                      [--] [EXTRA ARGS...]

The runner's own options come first; the first argument that is not one of them (or
everything after ``--``) starts the extra arguments, which are never parsed as runner
options (so ``--type generic --port 8000 node app.js --port 9`` runs ``node app.js
--port 9``). Exit status: the server's (128 + N if it died of signal N); 2 for a bad
command line or tool layout, reported on one line before anything starts; 1 for an
internal error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from webservice.runner import process
from webservice.runner.context import PREFIX_ENV, Context, RunnerError, normalize_prefix, tool_home, tool_name
from webservice.runner.types import ALIASES, TYPES, canonical

PROG = "webservice-runner"
# options taking a value, and flags; everything else starts the extra arguments
VALUED = {"--type", "--port", "--prefix", "--bind"}
FLAGS = {"--dry-run", "--help", "-h", "--version"}


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(runner options, extra arguments)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return argv[:i], argv[i + 1 :]
        if arg in FLAGS or (arg.startswith("--") and arg.split("=", 1)[0] in VALUED and "=" in arg):
            i += 1
        elif arg in VALUED:
            i += 2
        else:
            break
    return argv[:i], argv[i:]


def build_parser() -> argparse.ArgumentParser:
    names = ", ".join([*TYPES, *(f"{a} (= {t})" for a, t in ALIASES.items())])
    parser = argparse.ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        usage=f"{PROG} --type TYPE --port PORT [--prefix /TOOL] [--bind ADDR] [--dry-run] [--] [EXTRA ARGS...]",
        description=(
            "Run a Toolforge tool's web server in the foreground (the command of a webservice's "
            "container). Server and application output go to stdout/stderr; SIGTERM stops the "
            "server and everything it started."
        ),
        epilog=(
            f"Types: {names}. The tool home is $HOME (else the current directory); the tool name "
            "is $TOOL_NAME, else the user name without its 'tools.' prefix, else the home's name. "
            f"The child gets PORT; {PREFIX_ENV}=/TOOL is the same as --prefix /TOOL (legacy path "
            "routing: lighttpd and uWSGI serve the site under /TOOL/ and redirect /TOOL there, "
            f"keeping the query string; nodejs and generic apps get {PREFIX_ENV} and must do "
            "both themselves). Generated "
            "configuration goes to a fresh directory in $XDG_RUNTIME_DIR (else the temporary "
            "directory), never the tool home."
        ),
    )
    parser.add_argument("--type", required=True, metavar="TYPE", help="runner type (see below)")
    parser.add_argument("--port", type=int, metavar="PORT", help="TCP port to serve on (default: $PORT, else 8000)")
    parser.add_argument("--prefix", metavar="/TOOL", help=f"serve under /TOOL/ (legacy path routing; default: ${PREFIX_ENV})")
    parser.add_argument("--bind", default="", metavar="ADDR", help="address to listen on (default: all IPv4 interfaces)")
    parser.add_argument("--dry-run", action="store_true", help="check the layout, print the command and generated files, start nothing")
    from webservice import __version__

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def make_context(args: argparse.Namespace, extra: list[str], environ: dict) -> Context:
    type_name = canonical(args.type)
    if type_name is None:
        raise RunnerError(f"unknown type {args.type!r}: choose from {', '.join([*TYPES, *ALIASES])}")
    port = args.port
    if port is None:
        raw = environ.get("PORT", "8000")
        try:
            port = int(raw)
        except ValueError:
            raise RunnerError(f"PORT={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise RunnerError(f"port {port} is out of range (1-65535)")
    if args.prefix is not None:
        prefix = normalize_prefix(args.prefix, "--prefix")
    else:
        prefix = normalize_prefix(environ.get(PREFIX_ENV), f"${PREFIX_ENV}")
    if any(c in args.bind for c in " \n\"\\"):
        raise RunnerError(f"invalid --bind address {args.bind!r}")
    home = tool_home(environ)
    return Context(
        type=type_name,
        port=port,
        home=home,
        tool=tool_name(environ, home),
        prefix=prefix,
        bind=args.bind,
        extra_args=list(extra),
        environ=dict(environ),
    )


def stop_timeout(environ: dict) -> float:
    raw = environ.get("WEBSERVICE_RUNNER_STOP_TIMEOUT", "")
    try:
        value = float(raw) if raw else 25.0
    except ValueError:
        raise RunnerError(f"WEBSERVICE_RUNNER_STOP_TIMEOUT={raw!r} is not a number of seconds") from None
    return value if value > 0 else 25.0


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _write_files(files: dict[str, str]) -> None:
    for path, content in files.items():
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)


def run(argv: list[str] | None = None, environ: dict | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = dict(os.environ if environ is None else environ)
    own, extra = split_argv(argv)
    args = build_parser().parse_args(own)  # exits 2 with usage on a bad command line
    ctx = make_context(args, extra, environ)
    ctx.dry_run = args.dry_run
    grace = stop_timeout(environ)
    keep = False
    try:
        launch = TYPES[ctx.type](ctx)
        for warning in launch.warnings:
            _say(f"warning: {warning}")
        where = f", under {ctx.prefix}/" if ctx.prefix else ""
        if args.dry_run:
            print(f"# {ctx.type} for the tool {ctx.tool} on port {ctx.port}{where}: {launch.description}")
            print(f"# cwd: {launch.cwd}")
            print("# command: " + " ".join(launch.argv))
            for path, content in launch.files.items():
                print(f"# ---- {path} ----")
                print(content, end="" if content.endswith("\n") else "\n")
            return 0
        _write_files(launch.files)
        if launch.preflight:
            check = subprocess.run(launch.preflight, cwd=launch.cwd, env=launch.env, capture_output=True, text=True, errors="replace", pass_fds=launch.pass_fds)
            if check.returncode != 0:
                keep = True  # the message names a generated file: leave it there
                raise RunnerError(launch.explain(check.stderr) if launch.explain else f"{launch.preflight[0]} refused: {check.stderr.strip()}")
        _say(f"{ctx.type} for the tool {ctx.tool} on port {ctx.port}{where}: {launch.description}")
        _say("running: " + " ".join(launch.argv))
        return process.supervise(launch.argv, cwd=launch.cwd, env=launch.env, pass_fds=launch.pass_fds, grace=grace, stop_signal=launch.stop_signal, stop_escalate=launch.stop_escalate, death_signal=launch.death_signal)
    finally:
        if ctx.runtime_dir and not keep:
            shutil.rmtree(ctx.runtime_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    try:
        code = run(argv)
    except RunnerError as error:
        _say(f"error: {error}")
        code = error.exit_code
    except KeyboardInterrupt:
        code = 130
    except Exception as error:  # a bug: one line, the traceback only on request
        if os.environ.get("WEBSERVICE_RUNNER_DEBUG"):
            raise
        _say(f"internal error: {type(error).__name__}: {error} (set WEBSERVICE_RUNNER_DEBUG=1 for a traceback)")
        code = 1
    sys.exit(code)
