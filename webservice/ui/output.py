"""Drawing results and errors, for people (text, tables, progress) or scripts (--json).

The only module that writes a command's outcome to stdout/stderr, and the only importer
of ``rich`` (imported lazily, so that ``--dry-run`` and errors stay fast). Each result
type has one drawing function, registered by the type's name with ``@drawer`` (so that
this module need not import every result module).
Errors are always one line on stderr: ``webservice: error: WHAT; WHAT TO DO``; with
``--json`` a JSON error object is also printed on stdout for scripts.
"""

from __future__ import annotations

import json
import sys
import time

from webservice import errors
from webservice.conventions import CONTAINER, program_name
from webservice.text import one_line


def warn(message: str) -> None:
    print(f"{program_name()}: warning: {message}", file=sys.stderr)


def announce(request, text: str) -> None:
    """A line scripts grep for (``Starting webservice...``): stdout, at once; never with --json."""
    if not request.json:
        print(text, flush=True)


def emit(request, result) -> int:
    """Print warnings gathered while working, then the result; return the exit code."""
    for message in dict.fromkeys(request.warnings):
        warn(message)
    draw(result, request)
    sys.stdout.flush()
    return getattr(result, "exit_code", 0)


_DRAWERS: dict = {}


def drawer(type_name: str):
    """Register the drawing function of the result type called ``type_name``."""

    def register(function):
        _DRAWERS[type_name] = function
        return function

    return register


def draw(result, request) -> None:
    try:
        function = _DRAWERS[type(result).__name__]
    except KeyError:  # pragma: no cover - every result type registers
        raise TypeError(f"no renderer for {type(result).__name__}") from None
    function(result, request)


@drawer("RenderResult")
def _(result: "RenderResult", request) -> None:
    if request.json:
        document = {"apiVersion": "v1", "kind": "List", "items": result.objects}
        print(json.dumps(document, indent=2))
        return
    from webservice.ui.yamlout import dump_all

    print(dump_all(result.objects), end="")


def error(error: errors.WebserviceError, debug: bool = False, json_output: bool | None = None) -> int:
    message = one_line(error.message)
    if error.hint:
        message += "; " + one_line(error.hint)
    print(f"{program_name()}: error: {message}", file=sys.stderr)
    if json_output:
        print(json.dumps({"error": {"kind": type(error).__name__, "message": error.message,
                                     "hint": error.hint, "exit_code": error.exit_code}}))
    if debug and error.__cause__ is not None:
        import traceback

        traceback.print_exception(error.__cause__, file=sys.stderr)
    return error.exit_code


def usage_error(message: str, exc=None) -> int:
    ctx = getattr(exc, "ctx", None)
    command = f"{program_name()} {ctx.info_name}" if ctx is not None and ctx.parent is not None else program_name()
    print(f"{program_name()}: error: {one_line(message)}; see '{command} --help'", file=sys.stderr)
    return errors.EXIT_USAGE


def interrupted(terminated: bool = False) -> int:
    print(f"\n{program_name()}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
    return errors.EXIT_TERMINATED if terminated else errors.EXIT_INTERRUPTED


def internal_error(exc: BaseException, debug: bool = False) -> int:
    if debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(
        f"{program_name()}: error: internal error ({type(exc).__name__}: {one_line(exc)[:200]}); "
        "this is a bug: please report it with the output of --debug",
        file=sys.stderr,
    )
    return errors.EXIT_INTERNAL


# --- logs and shell (issue 5) ---



def _silence_stdout() -> None:
    """The reader went away (``| head``): send what is left to /dev/null, quietly."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


class LogPrinter:
    """Prints log lines as they come: ``TIME [pod] message`` or one JSON object a line.

    ``TIME`` is UTC to the second (``2026-11-26T10:00:00``); the JSON ``time`` keeps the
    kubelet's full timestamp. The container is shown (``[pod/container]``) only when it
    is not the usual ``webservice``. Notes go to stderr, so that stdout is only lines.
    """

    def __init__(self, json_output: bool, flush: bool):
        self.json = json_output
        self.flush = flush

    def format(self, line) -> str:
        if self.json:
            return json.dumps(line.as_json(), ensure_ascii=False)
        where = line.pod if line.container == CONTAINER else f"{line.pod}/{line.container}"
        return f"{line.second} [{where}] {line.message}"

    def line(self, line) -> None:
        text = self.format(line) + "\n"
        try:
            try:
                sys.stdout.write(text)
            except UnicodeEncodeError:
                encoding = sys.stdout.encoding or "ascii"
                sys.stdout.write(text.encode(encoding, "backslashreplace").decode(encoding))
            if self.flush:
                sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            raise

    def note(self, text: str) -> None:
        note(text)


def note(text: str) -> None:
    """A progress note on stderr (``webservice: TEXT``), shown at once."""
    print(f"{program_name()}: {text}", file=sys.stderr, flush=True)


def log_printer(request) -> LogPrinter:
    return LogPrinter(json_output=request.json, flush=request.follow)


@drawer("LogsResult")
def _(result: "LogsResult", request) -> None:
    printer = log_printer(request)
    for note in result.notes:
        printer.note(note)
    if result.lines or result.follow:
        return
    what = "previous containers" if result.previous else "pod" + ("s" if len(result.pods) != 1 else "")
    window = f" in the last {request.since}" if request.since else ""
    if result.pods:
        printer.note(f"no log lines from the {what} {', '.join(result.pods)}{window}")
    elif not result.notes:
        printer.note(f"no log lines{window}")


@drawer("ShellResult")
def _(result: "ShellResult", request) -> None:
    if result.cleanup_problem:
        warn(result.cleanup_problem)


@drawer("TypesResult")
def _(result: "TypesResult", request) -> None:
    if request.json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("TYPE", "RUNNER", "IMAGE", "STATE"):
        table.add_column(column, no_wrap=True)
    for t in result.types:
        state = "stable"
        if t.deprecated:
            state = "deprecated" + (f": use {t.replacement}" if t.replacement else "")
        table.add_row(t.name, t.runner or "-", t.image or "the tool's own image (toolforge build)", state)
    # a pipe or a file gets whole lines (scripts cut columns), a terminal its own width
    import io

    width = Console().width if sys.stdout.isatty() else 400
    buffer = io.StringIO()
    Console(file=buffer, highlight=False, width=width, color_system=None).print(table)
    for line in buffer.getvalue().splitlines():
        print(line.rstrip())
    where = {"cluster": "the cluster's image catalogue", "cache": "the cluster's image catalogue (cached)",
             "builtin": "the built-in list (the cluster's catalogue was not read)"}[result.source]
    when = ""
    if result.fetched_at:
        when = time.strftime(", read %Y-%m-%d %H:%M UTC", time.gmtime(result.fetched_at))
    print(f"From {where}{when}. Start one with '{program_name()} TYPE start'.")


# --- start / stop / restart / status (issue 4) ----------------------------------------------


_STATE_WORDS = {
    "running": "running",
    "starting": "starting",
    "degraded": "degraded (not every pod serves)",
    "crashing": "crashing (no pod serves)",
    "stopped": "not running",
}


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _since_iso(text: str | None) -> str:
    if not text:
        return ""
    from webservice.text import parse_time

    import time as _time

    when = parse_time(text)
    return f"{text} ({_ago(_time.time() - when)} ago)" if when else text


def _resources_text(resources: dict | None) -> str:
    if not resources:
        return "?"
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    return (f"cpu {limits.get('cpu', '?')} (request {requests.get('cpu', '?')}), "
            f"memory {limits.get('memory', '?')} (request {requests.get('memory', '?')})")


def _problem_lines(problems, out) -> None:
    for problem in problems:
        word = "problem" if problem.certain else "seen"
        count = f" ({problem.count} pods)" if problem.count > 1 else ""
        print(f"  {word}: {one_line(problem.message)}{count}", file=out)
        if problem.hint:
            print(f"    hint: {one_line(problem.hint)}", file=out)
        if problem.log_lines:
            where = problem.pod + (f"/{problem.container}" if problem.container and problem.container != CONTAINER else "")
            print(f"    last log lines of {where}:", file=out)
            for line in problem.log_lines:
                print(f"    | {line}", file=out)


def status_headline(result) -> str:
    """The first line of ``status``, worded as the old command did (scripts grep it)."""
    if result.state == "stopped":
        return "Your webservice is not running"
    return f"Your webservice of type {result.type} is running" if result.type else "Your webservice is running"


def _status_text(result: StatusResult, out) -> None:
    what = f" ({result.type})" if result.type else ""
    print(status_headline(result), file=out)
    if result.state == "stopped":
        print(f"{result.tool}: not running{what}", file=out)
        return
    replicas = result.replicas
    print(f"{result.tool}: {_STATE_WORDS.get(result.state, result.state)}, "
          f"{replicas['ready']}/{replicas['desired']} pods ready", file=out)
    if result.type:
        print(f"  {'type:':<11}{result.type}", file=out)
    rows = [("URL", ", ".join(result.urls) or "none (no routing object)"),
            *(("route", r.line()) for r in result.routes),
            ("image", result.image or "?"),
            ("resources", _resources_text(result.resources)),
            ("started", _since_iso(result.started_at) or "?")]
    for key, value in rows:
        print(f"  {key + ':':<11}{value}", file=out)
    if result.pods:
        table = [("NAME", "READY", "STATE", "RESTARTS", "AGE", "LAST EXIT")]
        for pod in result.pods:
            state = pod.state + (" (terminating)" if pod.terminating else "")
            table.append((pod.name, "yes" if pod.ready else "no", state, str(pod.restarts), _ago(pod.age),
                          pod.last_termination or "-"))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        print("  pods:", file=out)
        for row in table:
            print("    " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip(), file=out)
    _problem_lines(result.problems, out)
    if result.events:
        print("  recent warnings:", file=out)
        for event in result.events:
            when = (event.get("time") or "")[11:19]
            count = f" (x{event['count']})" if event.get("count", 1) > 1 else ""
            print(f"    {when}  {event['object']}  {event['reason']}: {one_line(event['message'])[:200]}{count}",
                  file=out)


@drawer("StatusResult")
def _(result: "StatusResult", request) -> None:
    if request.json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    _status_text(result, sys.stdout)


@drawer("StartResult")
def _(result: "StartResult", request) -> None:
    if request.json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    done = "restarted" if result.action == "restart" else "started"
    if result.changes:
        done += f" with {', '.join(result.changes)}"
    if result.outcome == "ready":
        replicas = result.status.replicas if result.status else {"ready": result.replicas, "desired": result.replicas}
        print(f"{result.tool}: {done} ({result.type}), {replicas['ready']}/{replicas['desired']} pods ready "
              f"after {result.elapsed:.1f} s")
        print(f"  URL: {result.url}")
        for route in (result.status.routes if result.status else []):
            if route.attached:
                print(f"  route: {route.line()}")
        return
    if result.outcome == "submitted":
        print(f"{result.tool}: {done} ({result.type}) without waiting; 'webservice status' shows when it serves")
        print(f"  URL: {result.url}")
        return
    if result.changes:
        print(f"{result.tool}: applied {', '.join(result.changes)}", file=sys.stderr)
    if result.outcome == "interrupted":
        print(f"{program_name()}: {result.message}", file=sys.stderr)
        return
    certain = next((p for p in result.problems if p.certain), None)
    if result.outcome == "timeout":
        headline = f"{result.tool} is {result.message}"
        if result.problems:
            headline += f": {one_line(result.problems[0].message)}"
        hint = "wait with 'webservice status', or give it longer with --timeout"
    elif certain is not None:
        headline = f"{result.tool} cannot start: {one_line(certain.message)}"
        hint = certain.hint
    else:
        headline = f"{result.tool} did not start: {result.message}"
        hint = None
    print(f"{program_name()}: error: {headline}" + (f"; {one_line(hint)}" if hint else ""), file=sys.stderr)
    shown = [p for p in result.problems if p is not certain] if certain is not None else list(result.problems)
    if certain is not None and certain.log_lines:
        where = certain.pod + (f"/{certain.container}" if certain.container and certain.container != CONTAINER else "")
        print(f"  last log lines of {where}:", file=sys.stderr)
        for line in certain.log_lines:
            print(f"  | {line}", file=sys.stderr)
    if result.outcome == "timeout":
        shown = result.problems[1:]
    _problem_lines(shown, sys.stderr)
    print("  the objects stay in place: fix the cause and run 'webservice restart', or 'webservice stop'",
          file=sys.stderr)


@drawer("StopResult")
def _(result: "StopResult", request) -> None:
    if request.json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    if result.exit_code in (errors.EXIT_INTERRUPTED, errors.EXIT_TERMINATED):
        print(f"{program_name()}: {result.message}", file=sys.stderr)
        return
    if not result.was_running and not result.deleted:
        print(f"{result.tool}: {result.message}")
        return
    print(f"{result.tool}: {result.message} ({', '.join(result.deleted) or 'nothing'} deleted) "
          f"in {result.elapsed:.1f} s")


class _Progress:
    """Shows what a wait is doing: a spinner on a terminal, plain lines otherwise."""

    def __init__(self, request, title: str):
        import time as _time

        self.title = title
        self.text = "submitted"
        self.started = _time.monotonic()
        self._time = _time
        self.enabled = not request.json
        self.live = None
        self.tty = self.enabled and sys.stderr.isatty()

    def elapsed(self) -> str:
        return f"{self._time.monotonic() - self.started:.0f}s"

    def __rich__(self):
        return f"{self.title}: {self.text} ({self.elapsed()})"

    def __enter__(self):
        if self.tty:
            from rich.console import Console

            self.live = Console(stderr=True).status(self, spinner="dots")
            self.live.__enter__()
        return self

    def __call__(self, text: str) -> None:
        self.text = text
        if not self.enabled:
            return
        if self.live is not None:
            self.live.update(self)
        else:
            print(f"{program_name()}: {self.title}: {text} ({self.elapsed()})", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)
        return False


def progress(request, title: str) -> _Progress:
    """A context manager; calling it with a text shows that text as the wait's progress."""
    return _Progress(request, title)
