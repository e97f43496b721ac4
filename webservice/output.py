"""Drawing results and errors, for people (text, tables, progress) or scripts (--json).

The only module that writes a command's outcome to stdout/stderr, and the only importer
of ``rich`` (imported lazily, so that ``--dry-run`` and errors stay fast). Each result
type has one drawing function, registered with ``functools.singledispatch``.
Errors are always one line on stderr: ``webservice: error: WHAT; WHAT TO DO``; with
``--json`` a JSON error object is also printed on stdout for scripts.
"""

from __future__ import annotations

import json
import sys
from functools import singledispatch

from webservice import errors
from webservice.results import RenderResult


def _prog() -> str:
    from webservice.cli import prog_name

    return prog_name()


def warn(message: str) -> None:
    print(f"{_prog()}: warning: {message}", file=sys.stderr)


def emit(request, result) -> int:
    """Print warnings gathered while working, then the result; return the exit code."""
    for message in dict.fromkeys(request.warnings):
        warn(message)
    draw(result, request)
    sys.stdout.flush()
    return getattr(result, "exit_code", 0)


@singledispatch
def draw(result, request) -> None:  # pragma: no cover - every result type registers
    raise TypeError(f"no renderer for {type(result).__name__}")


@draw.register
def _(result: RenderResult, request) -> None:
    if request.json:
        document = {"apiVersion": "v1", "kind": "List", "items": result.objects}
        print(json.dumps(document, indent=2))
        return
    import yaml

    print(yaml.safe_dump_all(result.objects, sort_keys=False, default_flow_style=False), end="")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def error(error: errors.WebserviceError, debug: bool = False, json_output: bool | None = None) -> int:
    message = _one_line(error.message)
    if error.hint:
        message += "; " + _one_line(error.hint)
    print(f"{_prog()}: error: {message}", file=sys.stderr)
    if json_output is None:
        json_output = "--json" in sys.argv[1:]
    if json_output:
        print(json.dumps({"error": {"kind": type(error).__name__, "message": error.message,
                                     "hint": error.hint, "exit_code": error.exit_code}}))
    if debug and error.__cause__ is not None:
        import traceback

        traceback.print_exception(error.__cause__, file=sys.stderr)
    return error.exit_code


def usage_error(message: str, exc=None) -> int:
    ctx = getattr(exc, "ctx", None)
    command = f"{_prog()} {ctx.info_name}" if ctx is not None and ctx.parent is not None else _prog()
    print(f"{_prog()}: error: {_one_line(message)}; see '{command} --help'", file=sys.stderr)
    return errors.EXIT_USAGE


def interrupted() -> int:
    print(f"\n{_prog()}: interrupted", file=sys.stderr)
    return errors.EXIT_INTERRUPTED


def internal_error(exc: BaseException, debug: bool = False) -> int:
    if debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(
        f"{_prog()}: error: internal error ({type(exc).__name__}: {_one_line(exc)[:200]}); "
        "this is a bug: please report it with the output of --debug",
        file=sys.stderr,
    )
    return errors.EXIT_INTERNAL
