"""The command line: parse, call one core function, hand its result to the renderer.

Both spellings work::

    webservice [OPTIONS] [TYPE] ACTION [-- EXTRA ARGS...]     (the old order)
    webservice ACTION [TYPE] [OPTIONS] [-- EXTRA ARGS...]

``normalise_argv`` rewrites the old order into the new one before click sees it, and
takes everything after ``--`` aside so that it can never be mistaken for the type.
Commands are thin: no logic lives here beyond turning options into a ``Request``.
This module must stay cheap to import (``--help`` and completion): it imports click and
nothing heavy; the core modules are imported inside the commands.
"""

from __future__ import annotations

import os
import sys

import click

from webservice import __version__
from webservice.errors import UsageError

ACTIONS = ("start", "stop", "restart", "status", "logs", "shell", "types")
# options that take a value (so that their value is not taken for the type or action)
VALUE_OPTIONS = {
    "--backend", "--template", "-m", "--mem", "-c", "--cpu", "-r", "--replicas",
    "--buildservice-image", "--health-check-path", "--mount", "--tool", "--timeout",
    "--routing", "-l", "--last", "--since", "--release",
}


def prog_name() -> str:
    from webservice.conventions import program_name

    return program_name()


def normalise_argv(argv: list[str]) -> tuple[list[str], tuple[str, ...] | None]:
    """Return (arguments for click in the new order, extra args after ``--`` or None)."""
    extra = None
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], tuple(argv[cut + 1:])
    options: list[str] = []
    positionals: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token.startswith("-") and token != "-":
            options.append(token)
            if token in VALUE_OPTIONS:
                value = next(tokens, None)
                if value is not None:
                    options.append(value)
        else:
            positionals.append(token)
    actions = [p for p in positionals if p in ACTIONS]
    if not actions:
        if positionals:
            import difflib

            near = [m for p in positionals for m in difflib.get_close_matches(p, ACTIONS, n=1, cutoff=0.6)]
            if near:
                raise UsageError(
                    f"unknown action {positionals[-1][:40]!r}",
                    hint=f"did you mean {near[0]!r}? Actions: {', '.join(ACTIONS)}",
                )
            raise UsageError(
                f"no action given (got {' '.join(positionals)[:60]!r})",
                hint=f"use one of {', '.join(ACTIONS)}, e.g. '{prog_name()} python3.11 start'",
            )
        return options, extra
    action = actions[0]
    others = positionals.copy()
    others.remove(action)
    if len(others) > 1:
        raise UsageError(
            f"too many arguments: {' '.join(others)[:80]!r}",
            hint="give at most one type; put the command's own arguments after '--'",
        )
    return [action, *others, *options], extra


class _Replicas(click.ParamType):
    """A pod count from 1 to 16, refused in this project's words (not click's range text)."""

    name = "N"

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        # ASCII digits only: str.isdigit() and int() also take '٣' and '1_0'
        count = int(text) if text and len(text) <= 6 and all("0" <= c <= "9" for c in text) else None
        if count is None or not 1 <= count <= MAX_REPLICAS:
            shown = text if len(text) <= 20 else text[:17] + "..."
            hint = f"to stop the webservice, run '{prog_name()} stop'" if count == 0 else "e.g. --replicas 2"
            raise UsageError(f"--replicas: {shown!r} is not a number of pods from 1 to {MAX_REPLICAS}", hint=hint)
        return count


MAX_REPLICAS = 16  # as webservice.model.spec.MAX_REPLICAS (not imported: this module stays cheap)
REPLICAS = _Replicas()


def _type_names() -> list[str]:
    try:
        from webservice.model.catalogue import cached_type_names
        from webservice.model.dirs import cache_dir

        return cached_type_names(cache_dir())
    except Exception:  # help must never fail because of the catalogue
        return []


def _complete_types(ctx, param, incomplete):
    return [name for name in _type_names() if name.startswith(incomplete)]


class WebserviceGroup(click.Group):
    def format_epilog(self, ctx, formatter):
        names = _type_names()
        if names:
            with formatter.section("Types"):
                formatter.write_text(", ".join(names))
        examples = [
            "python3.11 start",
            "start php8.2 --cpu 0.5 --mem 1Gi",
            "status --json",
            "logs -f",
            "--dry-run python3.11 start",
            "shell -- ls -l",
            "types",
        ]
        with formatter.section("Examples"):
            for example in examples:
                formatter.write(f"{'':>{formatter.current_indent}}{prog_name()} {example}\n")
        formatter.write_paragraph()
        formatter.write_text(
            "Options of an action: 'webservice ACTION --help'. The old order "
            "[OPTIONS] [TYPE] ACTION also works. Manual: man webservice."
        )

    def format_usage(self, ctx, formatter):
        formatter.write(f"Usage: {ctx.command_path} ACTION [TYPE] [OPTIONS] [-- EXTRA ARGS...]\n")
        formatter.write(f"   or: {ctx.command_path} [OPTIONS] [TYPE] ACTION [-- EXTRA ARGS...]\n")

    def list_commands(self, ctx):
        return list(ACTIONS)


# The options that mean something to each action; the others are still accepted (the old
# command took every option with every action, and scripts pass them) but hidden from its
# --help, and a value given for one of them is reported as ignored.
_MEANINGFUL = {
    "start": None,  # all of them
    "restart": None,
    "stop": {"tool", "backend", "json_output", "debug"},
    "status": {"tool", "backend", "json_output", "debug"},
    "logs": {"tool", "backend", "json_output", "debug"},
    "shell": {"type", "tool", "backend", "template", "mem", "cpu", "buildservice_image", "mount", "debug"},
    "types": {"tool", "json_output", "debug"},
}
_OPTION_NAMES = {"json_output": "--json", "buildservice_image": "--buildservice-image",
                 "health_check_path": "--health-check-path"}


def _common(action: str):
    """Options that every action accepts (as the old command did); shown where they matter."""
    shown = _MEANINGFUL[action]

    def hidden(name: str) -> bool:
        return shown is not None and name not in shown

    def decorate(function):
        decorators = [
            click.argument("type", required=False, metavar="[TYPE]", shell_complete=_complete_types),
            click.option("--tool", metavar="NAME", hidden=hidden("tool"), help="Act for this tool (default: the tool account you are; env WEBSERVICE_TOOL)."),
            click.option("--backend", metavar="BACKEND", hidden=hidden("backend"), help="Only 'kubernetes' (the grid engine is retired)."),
            click.option("--template", metavar="PATH", hidden=hidden("template"), help="Read service.template from PATH."),
            click.option("-m", "--mem", metavar="QUANTITY", hidden=hidden("mem"), help="Memory limit, e.g. 1Gi or 1.5Gi (request: half)."),
            click.option("-c", "--cpu", metavar="QUANTITY", hidden=hidden("cpu"), help="CPU limit, e.g. 0.5 or 500m (request: half)."),
            click.option("-r", "--replicas", type=REPLICAS, metavar="N", hidden=hidden("replicas"), help="Number of pods (1-16)."),
            click.option("--buildservice-image", metavar="IMAGE", hidden=hidden("buildservice_image"), help="Image for the buildservice type (default tool-<tool>/tool-<tool>:latest)."),
            click.option("--health-check-path", metavar="PATH", hidden=hidden("health_check_path"), help="HTTP path probed for startup, readiness and liveness."),
            click.option("--mount", type=click.Choice(["all", "none"]), hidden=hidden("mount"), help="Mount the tool's NFS storage (default all)."),
            click.option("--routing", type=click.Choice(["ingress", "legacy-path", "httproute"]), hidden=hidden("routing"), help="Routing object to create (default from config)."),
            click.option("--json", "json_output", is_flag=True, hidden=hidden("json_output"), help="Machine-readable output."),
            click.option("--debug", is_flag=True, help="Show API requests and details of errors."),
            click.option("--canonical", is_flag=True, hidden=True, help="Ignored (kept for old scripts)."),
            click.option("--release", metavar="RELEASE", hidden=True, help="Ignored (kept for old scripts)."),
        ]
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return decorate


def _ignored(action: str, kwargs: dict) -> list[str]:
    """Options given to an action that has no use for them (accepted, as the old command did)."""
    shown = _MEANINGFUL[action]
    if shown is None:
        return []
    # --template is passed by many scripts to every action: accepted without a word
    names = ("mem", "cpu", "replicas", "buildservice_image", "health_check_path", "mount", "routing")
    return [_OPTION_NAMES.get(n, "--" + n) for n in names
            if n not in shown and kwargs.get(n) not in (None, False)]


def _waiting(function):
    function = click.option("--timeout", type=click.IntRange(1, 3600), metavar="SECONDS", help="How long to wait (default 180).")(function)
    function = click.option("--wait/--no-wait", default=True, help="Wait until it serves (default) or return at once.")(function)
    return function


def _dry_run(function):
    return click.option("--dry-run", is_flag=True, help="Print the objects that would be applied; touch nothing.")(function)


@click.group(cls=WebserviceGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="webservice", message="%(prog)s %(version)s")
def cli():
    """Run your tool's website on Toolforge Kubernetes.

    ACTION is one of start, stop, restart, status, logs, shell, types.
    """


def _request(action: str, ctx: click.Context, **kwargs) -> "Request":
    from webservice.model.request import Request
    from webservice.model.spec import check_backend

    check_backend(kwargs.get("backend"))
    ignored = _ignored(action, kwargs)
    kwargs.pop("canonical", None)
    kwargs.pop("release", None)
    kwargs["json"] = kwargs.pop("json_output", False)
    kwargs["type"] = kwargs.pop("type", None)
    request = Request(action=action, extra_args=(ctx.obj or {}).get("extra"), **kwargs)
    if ignored:
        request.warnings.append(f"{', '.join(ignored)} {'has' if len(ignored) == 1 else 'have'} no effect "
                                f"on '{action}'; ignored")
    return request


def _run(request, check: bool = True) -> int:
    from webservice.ui import output

    code = output.emit(request, _dispatch(request))
    if not check and not request.json and code in _STATE_CODES:
        return 0  # plain status: it found out the state, so it succeeded
    return code


# the exit codes of ``status --check`` (and of ``status --json``): 0 ready, 3 stopped, 4 unhealthy
_STATE_CODES = (0, 3, 4)


def _dispatch(request):
    """Call the one core function of the action (imported here: only what it needs)."""
    if request.action in ("start", "restart") and request.dry_run:
        from webservice.actions.render import dry_run

        return dry_run(request)
    if request.action == "logs":
        from webservice.actions.logs import logs

        return logs(request)
    if request.action == "shell":
        from webservice.actions.shell import shell

        return shell(request)
    if request.action == "types":
        from webservice.actions.typelist import list_types

        return list_types(request)
    if request.action == "stop":
        from webservice.actions.stop import stop

        return stop(request)
    from webservice.actions import lifecycle

    return getattr(lifecycle, request.action)(request)


@cli.command("start")
@_common("start")
@_waiting
@_dry_run
@click.pass_context
def start_command(ctx, **kwargs):
    """Start the webservice and wait until it serves."""
    return _run(_request("start", ctx, **kwargs))


@cli.command("restart")
@_common("restart")
@_waiting
@_dry_run
@click.pass_context
def restart_command(ctx, **kwargs):
    """Roll new pods in (applying changed options), or start it if it is not running."""
    return _run(_request("restart", ctx, **kwargs))


@cli.command("stop")
@_common("stop")
@_waiting
@click.pass_context
def stop_command(ctx, **kwargs):
    """Stop the webservice: remove its routing, Service and Deployment."""
    return _run(_request("stop", ctx, **kwargs))


@cli.command("status")
@_common("status")
@click.option("--check", is_flag=True,
              help="Exit with the state, like 'systemctl is-active': 0 ready, 3 stopped, 4 unhealthy.")
@click.pass_context
def status_command(ctx, check, **kwargs):
    """Show whether it runs and serves.

    Exits 0 whenever it could find out the state (running, stopped or unhealthy), non-zero
    only when it could not (no credentials, API down, bad input). With --check (and with
    --json) the exit code is the state: 0 ready, 3 stopped, 4 unhealthy.
    """
    return _run(_request("status", ctx, **kwargs), check=check)


@cli.command("logs")
@_common("logs")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C ends).")
@click.option("-l", "--last", type=click.IntRange(0, 100000), metavar="N", help="Only the last N lines (all pods merged).")
@click.option("--since", metavar="DURATION", help="Only lines newer than DURATION (30s, 5m, 2h, 1d).")
@click.option("--previous", is_flag=True, help="The output of the previous (crashed) container.")
@click.pass_context
def logs_command(ctx, **kwargs):
    """Show the logs of every pod of the webservice, merged in time order."""
    return _run(_request("logs", ctx, **kwargs))


@cli.command("shell")
@_common("shell")
@click.pass_context
def shell_command(ctx, **kwargs):
    """Open a shell (or run '-- CMD...') in a container like the webservice's."""
    return _run(_request("shell", ctx, **kwargs))


@cli.command("types")
@_common("types")
@click.pass_context
def types_command(ctx, **kwargs):
    """List the webservice types: runner, image, and which are deprecated (and their successor)."""
    return _run(_request("types", ctx, **kwargs))


def _terminate(signum, frame):  # noqa: ARG001
    from webservice.errors import Terminated

    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``webservice`` and ``toolforge-webservice``; exits with the code.

    SIGTERM raises ``errors.Terminated`` (a KeyboardInterrupt) while it runs, so that every
    command ends with a word on the state and exit 143 rather than dying silently."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        _main(argv)
    except SystemExit as done:
        if argv is None and threading.active_count() > 1:
            # A command interrupted while waiting can leave a watch thread blocked in a TLS
            # read; finalising the interpreter under it crashed Python 3.11.2 (bookworm)
            # with SIGSEGV. The outcome is decided and printed: leave without finalising.
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None = None) -> None:
    """Parse, dispatch and turn every outcome into output and an exit code."""
    from webservice.errors import WebserviceError

    args = sys.argv[1:] if argv is None else list(argv)
    ours = args[:args.index("--")] if "--" in args else args  # after '--': the command's own
    debug, json_output = "--debug" in ours, "--json" in ours
    if os.environ.get("_WEBSERVICE_COMPLETE"):
        cli.main(args=args, prog_name="webservice", complete_var="_WEBSERVICE_COMPLETE")
        return
    try:
        click_args, extra = normalise_argv(args)
        if not click_args:
            click_args = ["--help"]
        code = cli.main(args=click_args, prog_name=prog_name(), obj={"extra": extra}, standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except WebserviceError as error:
        from webservice.ui import output

        sys.exit(output.error(error, debug=debug, json_output=json_output))
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort as abort:  # click's wrapping of a KeyboardInterrupt
        from webservice.ui import output
        from webservice.errors import Terminated

        sys.exit(output.interrupted(terminated=isinstance(abort.__context__, Terminated)))
    except click.ClickException as error:
        from webservice.ui import output

        sys.exit(output.usage_error(error.format_message(), error))
    except KeyboardInterrupt as interruption:
        from webservice.ui import output
        from webservice.errors import Terminated

        sys.exit(output.interrupted(terminated=isinstance(interruption, Terminated)))
    except BrokenPipeError:
        sys.exit(0)
    except Exception as error:  # noqa: BLE001 - the last line of defence: never a traceback
        from webservice.ui import output

        sys.exit(output.internal_error(error, debug=debug))
