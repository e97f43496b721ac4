"""What ``webservice-runner`` makes of every real ``.lighttpd.conf`` and ``uwsgi.ini``.

The corpus (``../shared/corpus`` from the repository's root; see its README) holds the
``.lighttpd.conf`` and ``uwsgi.ini`` files of real Toolforge tools. They are other
people's files: they are read where they are, at run time, and never copied into this
repository. Each one is put into a fresh temporary tool home ``.../mytool`` as a pod has
it, and the real server is started through the runner, as in a pod:

* ``lighttpd.conf/X`` becomes ``~/.lighttpd.conf`` beside ``~/public_html`` (an
  ``index.html`` and an ``index.php``); the runner runs as ``--type lighttpd`` (its
  generated configuration with the tool's file appended, lighttpd and php-cgi);
* ``uwsgi.ini/X`` becomes ``~/www/python/uwsgi.ini`` beside ``~/www/python/src/app.py``
  (a tiny WSGI app); the runner runs as ``--type uwsgi-python``. The app is also written
  where the ini says the tool's code is (``wsgi-file``, ``module``, ``mount``), under the
  ini's ``chdir``: the tool's own code is not in the corpus, a stand-in for it is.
  A ``venv`` (``virtualenv``, ``home``) the ini names in the tool's home is created too
  (``python3 -m venv --without-pip``: uWSGI's Python plugin is the system's Python);
* likewise, a FastCGI program of the tool's own that a ``.lighttpd.conf`` starts
  (``"bin-path"`` in the tool's home) is a stand-in: a script that runs ``php-cgi``.

In both, the tool's home path as the file writes it (``/data/project/<tool>``, the home
in a pod) is the temporary home: that is where those paths lead in the tool's pod.

Each run waits (a bounded wait on a condition: the port accepts a connection, or the
runner exits) and then requests ``/`` over HTTP. The outcome is ``served`` (with the
HTTP status), ``refused`` (the runner said why on one line before starting anything),
``exited`` (the server started and then stopped by itself) or ``hung`` (neither within
the deadline). Every started server is stopped with SIGTERM; ``stopped`` says whether it
and everything it started were gone in time.

Runs go in parallel (a few at a time); files that name a fixed address of their own
(``socket``, ``http-socket``, ``server.port``, a FastCGI socket outside the home, a fixed
``/tmp`` or ``/run`` path) run one after the
other, so that two of them never compete for it.

``python -m tests.runner_corpus_table`` (from the repository's root) writes the table to
``docs/runner-corpus-outcomes.rst``; ``tests/runner/test_runner_corpus.py`` checks every
outcome and that the committed table is the one this module generates now.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests import corpus_table

ROOT = Path(__file__).resolve().parent.parent
CORPUS = corpus_table.CORPUS
TABLE = ROOT / "docs" / "runner-corpus-outcomes.rst"
KINDS = ("lighttpd.conf", "uwsgi.ini")
TOOL = "mytool"
START_TIMEOUT = 60.0  # generous: a loaded 2-core machine; the wait ends as soon as it can
REQUEST_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0
PARALLEL = 4

INDEX_HTML = "<p>index.html of the corpus run</p>\n"
INDEX_PHP = "<?php echo 'php ', 6 * 7, \"\\n\";\n"
WSGI_APP = (
    "def app(environ, start_response):\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    "    return [b'wsgi app of the corpus run\\n']\n"
    "\n"
    "application = app\n"
)

#: why a file may not be served; each is the tool's file's doing, not the runner's (a
#: refusal is one line naming the file and its line, said before anything starts)
JUSTIFIED = {
    "tool file missing": "the file includes another file of the tool's (not in the corpus): "
                         "refused, naming the line",
    "env variable unset": "the file reads an environment variable the tool's pod sets and this run does not: "
                          "refused, naming the line",
    "lighttpd syntax": "not lighttpd syntax (the old lighttpd refused it too): refused, naming the line",
    "user lookup as root": "``server.username``/``server.groupname`` name no such user; lighttpd looks them up "
                           "when started as root (as a test run may be), not as the tool user of a pod: refused, "
                           "naming the line",
    "FastCGI program": "a FastCGI ``bin-path`` lighttpd cannot start (a path of a build-service image, or a "
                       "``VAR=value`` prefix that bookworm's lighttpd, which runs no shell, takes for the program): "
                       "refused, naming the line",
    "virtualenv missing": "the ini names a virtualenv that is not there (a grid-era ini, relative to another "
                          "directory); uWSGI would crash: refused, naming the line",
    "relative rewrite": "a ``url.rewrite`` to a path not starting with ``/``, which lighttpd 1.4.69 rejects per "
                        "request (it closes the connection): the server runs, that request gets no answer",
}
_REASONS = [
    ("tool file missing", re.compile(r"include file not found")),
    ("env variable unset", re.compile(r"Undefined env variable")),
    ("lighttpd syntax", re.compile(r"invalid character in variable name|parser failed|unexpected")),
    ("user lookup as root", re.compile(r"can't find (user|group)name")),
    ("FastCGI program", re.compile(r"cannot start this FastCGI program")),
    ("virtualenv missing", re.compile(r"no such directory .*create the virtualenv there")),
    ("relative rewrite", re.compile(r"invalid result \(not beginning with '/'\)")),
]
_BIN_PATH = re.compile(r'"bin-path"\s*=>\s*"([^"]*)"')
_HOME_PATH = re.compile(r"/data/project/[A-Za-z0-9._<>-]+(?=/|\"|'|\s|$)")
_FIXED_ADDRESS = re.compile(
    r'^\s*(socket|http-socket|uwsgi-socket|server\.port|server\.bind)\s*[:+]?=|/tmp/|/var/run/|/run/|"socket"\s*=>\s*"/(?!data/project/)', re.M)


@dataclass(frozen=True)
class Outcome:
    kind: str  # lighttpd.conf | uwsgi.ini
    name: str  # the file's name in the corpus folder
    outcome: str  # served | refused | exited | no answer | hung
    status: int = 0  # the HTTP status of "/" (served)
    detail: str = ""  # served: what answered; otherwise the runner's (or server's) message
    error_lines: int = 0  # lines "webservice-runner: error: ..." on stderr
    stopped: bool = True  # SIGTERM stopped the runner and all it started in time
    reason: str = ""  # the class of what went wrong (see JUSTIFIED), "" when served


def classify(message: str) -> str:
    return next((name for name, pattern in _REASONS if pattern.search(message)), "other")


def corpus_files() -> list[tuple[str, Path]]:
    """Every (kind, path) of the runner's corpus folders, sorted; [] when absent."""
    return corpus_table.corpus_files(KINDS)


def servers_missing() -> list[str]:
    """The programs the runs need and this machine lacks, with their Debian package."""
    from tests.runner import support

    need = {"lighttpd": "lighttpd", "php-cgi": "php-cgi", "uwsgi": "uwsgi-core", "uwsgi-python3": "uwsgi-plugin-python3"}
    return [f"{program} (Debian package {package})" for program, package in need.items() if not support.which(program)]


# --------------------------------------------------------------------------- a tool home


def _in_home(text: str, home: Path) -> str:
    """The file as the tool's pod sees it: its home path is ``home``."""
    return _HOME_PATH.sub(str(home), text)


def _ini_values(text: str) -> dict[str, list[str]]:
    """key -> values of an ini's ``[uwsgi]`` section (or of its section-less lines)."""
    values: dict[str, list[str]] = {}
    section = "uwsgi"
    for line in text.splitlines():  # repeated keys (mount) are all kept
        header = re.match(r"^\s*\[([^]]*)\]", line)
        if header:
            section = header.group(1).strip()
            continue
        m = re.match(r"^\s*([A-Za-z0-9_-]+)\s*=\s*(.*?)\s*$", line)
        if m and section == "uwsgi":
            values.setdefault(m.group(1), []).append(m.group(2))
    return values


def _app_places(ini: dict[str, list[str]], src: Path, home: Path) -> list[Path]:
    """Where the ini says the tool's WSGI code is (files to hold the stand-in app)."""
    chdir = Path(ini["chdir"][-1]) if ini.get("chdir") else src
    if not chdir.is_absolute():
        chdir = home / chdir
    places = []
    targets = list(ini.get("wsgi-file", [])) + [m.split("=", 1)[1] for m in ini.get("mount", []) if "=" in m]
    targets += ini.get("module", []) + ini.get("wsgi", [])
    for target in targets:
        target = target.strip()
        if not target:
            continue
        if target.endswith(".py") or "/" in target:
            path = Path(target)
            places.append(path if path.is_absolute() else chdir / path)
        else:
            module = target.split(":", 1)[0]
            places.append(chdir.joinpath(*module.split(".")).with_suffix(".py"))
    return [p for p in places if str(p).startswith(str(home))]


def make_home(kind: str, path: Path, root: Path) -> tuple[Path, list[str]]:
    """A fresh tool home under ``root`` with the corpus file in place; (home, runner args)."""
    home = root / TOOL
    home.mkdir()
    text = _in_home(path.read_text(encoding="utf-8", errors="replace"), home)
    if kind == "lighttpd.conf":
        (home / "public_html").mkdir()
        (home / "public_html" / "index.html").write_text(INDEX_HTML)
        (home / "public_html" / "index.php").write_text(INDEX_PHP)
        (home / ".lighttpd.conf").write_text(text, encoding="utf-8")
        for command in _BIN_PATH.findall(text):
            words = [w for w in command.split() if w.startswith(str(home) + "/")]
            for i, word in enumerate(words):
                stand_in = Path(word)
                if stand_in.exists():
                    continue
                stand_in.parent.mkdir(parents=True, exist_ok=True)
                if i == 0:  # the program: a FastCGI responder
                    stand_in.write_text(f"#!/bin/sh\nexec {shutil.which('php-cgi') or '/usr/bin/php-cgi'}\n")
                    stand_in.chmod(0o755)
                else:  # what it is given (a script)
                    stand_in.write_text("")
        return home, ["--type", "lighttpd"]
    src = home / "www" / "python" / "src"
    src.mkdir(parents=True)
    (src / "app.py").write_text(WSGI_APP)
    (home / "www" / "python" / "uwsgi.ini").write_text(text, encoding="utf-8")
    callables = {"app", "application", *_ini_values(text).get("callable", [])}
    app = WSGI_APP + "".join(f"{name} = app\n" for name in sorted(callables) if name.isidentifier())
    ini = _ini_values(text)
    for key in ("venv", "virtualenv", "home", "pyhome"):
        for value in ini.get(key, []):
            if value.startswith(str(home) + "/") and not os.path.exists(value):
                subprocess.run([_system_python(), "-m", "venv", "--without-pip", value], check=True, capture_output=True, timeout=120)
    for place in _app_places(ini, src, home):
        place.parent.mkdir(parents=True, exist_ok=True)  # a dotted module: namespace packages
        if not place.exists():
            place.write_text(app)
    return home, ["--type", "uwsgi-python"]


def _system_python() -> str:
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


# --------------------------------------------------------------------------- one run

_PORTS: set[int] = set()
_PORTS_LOCK = threading.Lock()


def _port() -> int:
    """A free port not handed out before in this process."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with _PORTS_LOCK:
            if port not in _PORTS:
                _PORTS.add(port)
                return port


def _normalize(line: str, home: Path, runtime: Path, port: int) -> str:
    line = re.sub(re.escape(str(runtime)) + r"/webservice-runner-[A-Za-z0-9_]+", "<runtime>", line)
    line = line.replace(str(home), "~").replace(str(runtime), "<runtime>")
    line = re.sub(rf"\b{port}\b", "<port>", line)
    line = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: \([a-z_]+\.c\.\d+\) ", "", line)  # lighttpd's stamp
    return line.strip()


def _first_error(stderr: str) -> tuple[str, int]:
    errors = [line for line in stderr.splitlines() if line.startswith("webservice-runner: error: ")]
    if errors:
        return errors[0].removeprefix("webservice-runner: error: "), len(errors)
    meaningful = [line for line in stderr.splitlines() if line.strip() and not line.startswith("webservice-runner: ")]
    return (meaningful[-1] if meaningful else "(no message)"), 0


def _server_reason(stderr: str) -> str:
    """The server's first complaint after it started."""
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("webservice-runner: ")]
    lines = [line for line in lines if not re.search(r"server started|graceful shutdown|server stopped", line)]
    return lines[0] if lines else "(no message)"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def run_one(kind: str, path: Path) -> Outcome:
    """Start the runner with one corpus file, request ``/``, stop it; the outcome."""
    from tests.runner import support

    root = Path(tempfile.mkdtemp(prefix="runner-corpus-"))
    try:
        home, args = make_home(kind, path, root)
        runtime = root / "run"
        runtime.mkdir()
        port = _port()
        argv = [sys.executable, "-m", "webservice.runner", *args, "--port", str(port), "--bind", "127.0.0.1"]
        env = support.runner_env(home, XDG_RUNTIME_DIR=str(runtime), TMPDIR=str(runtime))
        server = support.Server(argv, env, str(home), port)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while server.proc.poll() is None and not _listening(port) and time.monotonic() < deadline:
                time.sleep(0.05)
            if server.proc.poll() is not None:
                for t in server._threads:
                    t.join(5)
                message, count = _first_error(server.stderr)
                outcome = "refused" if server.proc.returncode == 2 and count else "exited"
                message = _normalize(message, home, runtime, port)
                return Outcome(kind, path.name, outcome, 0, message, count, reason=classify(message))
            if not _listening(port):
                return Outcome(kind, path.name, "hung", 0, f"not listening within {START_TIMEOUT:g}s", 0, _stop(server), "hung")
            try:
                r = support.get(port, "/", timeout=REQUEST_TIMEOUT)
            except TimeoutError:
                return Outcome(kind, path.name, "hung", 0, f"no HTTP answer within {REQUEST_TIMEOUT:g}s", 0, _stop(server), "hung")
            except OSError as error:
                stopped = _stop(server)
                for t in server._threads:  # the server's whole output, to say why
                    t.join(5)
                message = _server_reason(server.stderr)
                message = _normalize(message, home, runtime, port)
                return Outcome(kind, path.name, "no answer", 0, f"{type(error).__name__}: {message}", 0, stopped, classify(message))
            return Outcome(kind, path.name, "served", r.status, _answer(r), 0, _stop(server))
        finally:
            if server.proc.poll() is None:
                server.kill()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _answer(r) -> str:
    """What answered ``/``, in short."""
    text = r.text
    if "index.html of the corpus run" in text:
        return "index.html"
    if "php 42" in text:
        return "index.php (PHP)"
    if "wsgi app of the corpus run" in text:
        return "the WSGI app"
    if r.status in (301, 302, 303, 307, 308):
        return "redirect to " + re.sub(r"^http://127\.0\.0\.1:\d+", "", r.headers.get("location", ""))
    return "lighttpd's own page" if "<title>" in text or not text else "other content"


def _stop(server) -> bool:
    """SIGTERM; True when the runner and everything it started are gone in time."""
    from tests.runner import support

    tree = support.descendants(server.proc.pid)
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False
    return support.wait_gone(tree, timeout=STOP_TIMEOUT) == []


# --------------------------------------------------------------------------- all runs


def _fixed_address(path: Path) -> bool:
    return bool(_FIXED_ADDRESS.search(path.read_text(encoding="utf-8", errors="replace")))


@functools.lru_cache(maxsize=None)
def outcomes() -> tuple[Outcome, ...]:
    """Every corpus file's outcome, in corpus order (computed once per process)."""
    files = corpus_files()
    serial = [f for f in files if _fixed_address(f[1])]
    results: dict[tuple[str, str], Outcome] = {}

    def lane():
        for kind, path in serial:
            results[kind, path.name] = run_one(kind, path)

    with ThreadPoolExecutor(PARALLEL) as pool:
        jobs = [pool.submit(lane)]
        jobs += [pool.submit(lambda f=f: results.__setitem__((f[0], f[1].name), run_one(*f))) for f in files if f not in serial]
        for job in jobs:
            job.result()
    return tuple(results[kind, path.name] for kind, path in files)


def table(rows) -> str:
    counts = {name: sum(r.outcome == name for r in rows) for name in ("served", "refused", "exited", "no answer", "hung")}
    lines = [
        "Real Toolforge server settings: what webservice-runner makes of them",
        "=" * 68,
        "",
        "Generated by ``python -m tests.runner_corpus_table`` from the ``.lighttpd.conf`` and",
        "``uwsgi.ini`` files in ``../shared/corpus`` (read at run time, never copied here);",
        "``tests/runner/test_runner_corpus.py`` checks every outcome and that this table is",
        "current. Each file is put in a fresh tool home as a pod has it (``~/.lighttpd.conf``",
        "beside ``~/public_html`` with ``index.html`` and ``index.php``; ``~/www/python/uwsgi.ini``",
        "beside a tiny WSGI app, also where the ini says the app is); the real lighttpd (with",
        "php-cgi) or uWSGI is started through the runner and ``/`` is requested over HTTP.",
        "",
        f"{len(rows)} files: " + ", ".join(f"{n} {name}" for name, n in counts.items()) + ".",
        "A file not served is so for one of these reasons (files of each in brackets):",
        "",
    ]
    lines += [f"- *{name}* ({sum(r.reason == name for r in rows)}): {why}" for name, why in JUSTIFIED.items()]
    lines += ["", ".. list-table::", "   :header-rows: 1", "   :widths: 45 8 6 41", "",
              "   * - file", "     - outcome", "     - status", "     - answer / message"]
    for r in rows:
        lines += [f"   * - {corpus_table.cell(r.kind + '/' + r.name)}", f"     - {r.outcome}",
                  f"     - {r.status or '-'}", f"     - {corpus_table.cell(r.detail)}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    if not corpus_files():
        print(f"no corpus at {CORPUS}", file=sys.stderr)
        return 1
    missing = servers_missing()
    if missing:
        print("missing: " + ", ".join(missing), file=sys.stderr)
        return 1
    start = time.monotonic()
    rows = outcomes()
    TABLE.parent.mkdir(exist_ok=True)
    TABLE.write_text(table(rows), encoding="utf-8")
    print(f"wrote {TABLE.relative_to(ROOT)} ({len(rows)} files, {time.monotonic() - start:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
