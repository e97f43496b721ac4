"""Read ``service.template``; read and write ``service.manifest`` safely.

Both files live in the tool's home directory (REFERENCE section 4).

``service.template`` is the maintainer's own file of start options. This module finds
it (``--template PATH``, else one of :data:`TEMPLATE_LOCATIONS`; more than one is an
error), parses it with a safe YAML loader that refuses Python tags, duplicate keys,
files over 64 KiB, deep nesting and alias bombs, and checks the type of every known
key. Every problem is a one-line :class:`~webservice.errors.TemplateError` naming the
file, the key and the expected form; unknown keys are returned as warnings.

``service.manifest`` is Toolforge's record of the running webservice (version 4, read by
other Toolforge tooling). :func:`read_manifest` reads version 1 to 4 files and keeps
every key; :func:`update_manifest` changes it under an exclusive lock and replaces it
atomically (temporary file in the same directory, fsync, rename, fsync of the
directory), so that a crash, a full disk or Ctrl-C never leaves a truncated manifest and
two concurrent runs cannot lose an update. Symlinked manifest or lock files, and files
owned by another user, are refused rather than followed or overwritten.

What this module does *not* do: it does not check quantity syntax (``cpu``/``mem`` are
kept as strings for the spec to parse), it does not know the type catalogue, it does
not merge the template with the command line (that is the spec's precedence rule), and
it prints nothing. It imports only the standard library, ``yaml`` and
``webservice.errors``, because it runs on the ``--help`` and ``--dry-run`` paths.
"""

from __future__ import annotations

import copy
import errno
import fcntl
import functools
import math
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


from webservice.errors import ManifestError, TemplateError
from webservice.yamlbounds import check_bounds

__all__ = [
    "TEMPLATE_LOCATIONS", "TEMPLATE_KEYS", "Template", "find_template", "load_template",
    "MANIFEST_NAME", "MANIFEST_HEADER", "MANIFEST_VERSION", "WEB_KEYS", "Manifest",
    "read_manifest", "update_manifest", "manifest_for_start", "manifest_for_stop",
]

# --- YAML reading, shared by both files -------------------------------------------------

MAX_FILE_BYTES = 64 * 1024
MAX_ALIASES = 100
MAX_DEPTH = 32
MAX_NODES = 10_000


def _oneline(text: object, limit: int = 200) -> str:
    """Make ``text`` safe for a one-line message: escape control characters, truncate."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return out if len(out) <= limit else out[: limit - 3] + "..."


@functools.lru_cache(maxsize=None)
def _strict_loader():
    """A SafeLoader that refuses duplicate mapping keys instead of keeping the last one.

    Built on first use, so that importing this module does not import yaml (``--help``,
    completion and a ``--dry-run`` without state files stay fast)."""
    import yaml

    class DuplicateKey(yaml.constructor.ConstructorError):
        def __init__(self, key: object, mark):
            super().__init__(None, None, f"duplicate key {_oneline(repr(key), 60)}", mark)
            self.key = key

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        if key in seen:
                            raise DuplicateKey(key, key_node.start_mark)
                        seen.add(key)
                    except TypeError:
                        raise yaml.constructor.ConstructorError(
                            None, None, "found an unhashable key (a list or mapping)",
                            key_node.start_mark) from None
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def _read_capped(path: str, *, follow_symlinks: bool) -> bytes:
    """Read a regular file of at most MAX_FILE_BYTES (never blocks on a FIFO)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file")
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _parse_yaml(raw: bytes) -> tuple[object, str | None]:
    """Parse ``raw``; return (value, None) or (None, one-line reason)."""
    if len(raw) > MAX_FILE_BYTES:
        return None, f"file is larger than {MAX_FILE_BYTES // 1024} KiB"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 text (byte offset {exc.start})"
    import yaml

    loader = _strict_loader()
    try:
        # a first, iterative pass bounds what the recursive composer can be made to do
        try:
            check_bounds(text, loader, max_depth=MAX_DEPTH, max_aliases=MAX_ALIASES, max_nodes=MAX_NODES)
        except ValueError as exc:
            return None, str(exc)
        return yaml.load(text, Loader=loader), None  # noqa: S506 (strict safe loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if isinstance(exc, yaml.constructor.ConstructorError) and "constructor for the tag" in problem:
            tag = problem.split("tag", 1)[1].strip().strip("'").replace("tag:yaml.org,2002:", "!!")
            problem = f"the YAML tag {tag!r} is not allowed"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return None, f"invalid YAML{where}: {_oneline(problem)}"
    except yaml.reader.ReaderError as exc:
        return None, f"character {exc.character!r} at position {exc.position} is not allowed in YAML"
    except yaml.YAMLError as exc:
        return None, f"invalid YAML: {_oneline(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}"
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # e.g. PyYAML raises ValueError for an impossible date such as 2024-13-45.
        return None, f"invalid YAML value: {_oneline(exc)}"


# --- service.template ---------------------------------------------------------------------

TEMPLATE_LOCATIONS = (
    "service.template",
    "www/python/src/service.template",
    "www/js/service.template",
    "public_html/service.template",
)
TEMPLATE_KEYS = (
    "type", "backend", "cpu", "mem", "replicas", "buildservice-image", "extra_args",
    "health-check-path", "mount",
)
_TEMPLATE_HINT = ("fix the file (a YAML mapping of: " + ", ".join(TEMPLATE_KEYS) + "), "
                  "or move it away to start without it")


@dataclass(frozen=True)
class Template:
    """A checked service.template: ``values`` has only known keys, in snake_case."""

    path: str
    values: dict
    warnings: tuple[str, ...] = ()


def _where(path: str) -> str:
    return f"service.template ({_oneline(path)})"


def find_template(home: str | os.PathLike, explicit: str | os.PathLike | None = None) -> str | None:
    """Return the template to use: ``explicit`` (must exist), else the one found in
    :data:`TEMPLATE_LOCATIONS` under ``home``, else None. Two or more found is an error."""
    if explicit is not None and str(explicit) != "":
        path = os.path.abspath(os.path.expanduser(os.fspath(explicit)))
        try:
            ok = stat.S_ISREG(os.stat(path).st_mode)
            what = "is not a regular file"
        except OSError as exc:
            ok, what = False, ("does not exist" if isinstance(exc, FileNotFoundError)
                               else f"cannot be read ({exc.strerror})")
        if not ok:
            raise TemplateError(f"template {_oneline(path)} given with --template {what}",
                                "check the path given to --template")
        return path
    found = []
    for location in TEMPLATE_LOCATIONS:
        candidate = os.path.join(os.fspath(home), location)
        try:
            os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise TemplateError(f"cannot check for {_where(candidate)}: {exc.strerror}") from None
        found.append(candidate)
    if len(found) > 1:
        raise TemplateError(
            "more than one service.template found: " + ", ".join(_oneline(p) for p in found),
            "keep only one of them, or choose one with --template PATH")
    return found[0] if found else None


def _kind(value: object) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, (int, float)):
        return f"a number ({_oneline(value, 40)})"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"the string {_oneline(repr(value), 60)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _check_value(key: str, value: object) -> tuple[object, str | None]:
    """Return (normalised value, None) or (None, 'expected form')."""
    if key in ("type", "backend", "buildservice-image", "health-check-path"):
        examples = {"type": "python3.11", "backend": "kubernetes",
                    "buildservice-image": "tool-mytool/web:latest", "health-check-path": "/healthz"}
        if not isinstance(value, str) or not value.strip():
            return None, f"a non-empty string, e.g. {examples[key]}"
        if key == "health-check-path" and (
                not value.startswith("/") or any(c.isspace() or not c.isprintable() for c in value)):
            return None, "a URL path starting with '/' and without spaces, e.g. /healthz"
        return value.strip() if key != "health-check-path" else value, None
    if key in ("cpu", "mem"):
        form = "a quantity string or a positive number, e.g. " + ("'500m' or 0.5" if key == "cpu" else "'1Gi' or '512Mi'")
        if isinstance(value, str) and value.strip():
            return value.strip(), None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            return str(value), None
        return None, form
    if key == "replicas":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value, None
        return None, "a whole number of at least 1, e.g. 2"
    if key == "extra_args":
        form = "a list of strings, e.g. [--port, '8000']"
        if not isinstance(value, list):
            return None, form
        for index, item in enumerate(value, 1):
            if not isinstance(item, str):
                return None, f"{form} (item {index} is {_kind(item)}; quote it)"
        return list(value), None
    if key == "mount":
        if value in ("all", "none"):
            return value, None
        return None, "'all' or 'none'"
    raise AssertionError(key)  # pragma: no cover


def load_template(path: str | os.PathLike) -> Template:
    """Read and check a service.template; raise TemplateError with a one-line reason."""
    path = os.fspath(path)
    where = _where(path)
    try:
        raw = _read_capped(path, follow_symlinks=True)
    except OSError as exc:
        raise TemplateError(f"cannot read {where}: {_oneline(exc.strerror or exc)}",
                            "check that the file exists and is readable by the tool") from None
    data, problem = _parse_yaml(raw)
    if problem:
        raise TemplateError(f"{where}: {problem}", _TEMPLATE_HINT)
    if data is None:
        raise TemplateError(f"{where}: the file is empty; it must be a YAML mapping such as "
                            f"'type: python3.11'", "add settings to it or delete it")
    if not isinstance(data, dict):
        raise TemplateError(f"{where}: must be a YAML mapping of settings such as "
                            f"'type: python3.11', not {_kind(data)}", _TEMPLATE_HINT)
    values, unknown = {}, []
    for key, value in data.items():
        if key not in TEMPLATE_KEYS:
            unknown.append(key)
            continue
        normalised, expected = _check_value(key, value)
        if expected:
            raise TemplateError(f"{where}: key '{key}' must be {expected}, not {_kind(value)}",
                                _TEMPLATE_HINT)
        values[key.replace("-", "_")] = normalised
    warnings = ()
    if unknown:
        names = ", ".join(_oneline(repr(k) if not isinstance(k, str) else f"'{k}'", 60) for k in unknown)
        warnings = (f"{where}: unknown key(s) {names} ignored; valid keys: {', '.join(TEMPLATE_KEYS)}",)
    return Template(path=path, values=values, warnings=warnings)


# --- service.manifest ----------------------------------------------------------------------

MANIFEST_NAME = "service.manifest"
MANIFEST_HEADER = "# This file is used by Toolforge infrastructure.\n# Please do not edit manually at this time.\n"
MANIFEST_VERSION = 4
LOCK_NAME = ".service.manifest.lock"
TEMP_PREFIX = ".service.manifest."
TEMP_SUFFIX = ".tmp"
LOCK_TIMEOUT = 30.0
# Keys webservice owns, in the order they are written; other keys follow, sorted.
# health-check-path and mount are not in the old format: stored so that a restart keeps
# the probes and the mount choice of the last start; other tooling ignores unknown keys.
WEB_KEYS = ("backend", "web", "cpu", "memory", "replicas", "buildservice-image", "web::extra_args",
            "health-check-path", "mount")
_KEY_ORDER = ("version",) + WEB_KEYS
_MANIFEST_HINT = ("fix the file, or delete it after 'webservice stop' "
                  "(it only records the options of the last start)")
_thread_lock = threading.Lock()  # POSIX locks are per process: also serialise threads


@dataclass
class Manifest:
    """The contents of service.manifest; ``data`` keeps every key, known or not."""

    path: str
    data: dict

    def _str(self, key: str) -> str | None:
        value = self.data.get(key)
        return None if value is None else str(value)

    @property
    def version(self) -> int | None:
        return self.data.get("version")

    @property
    def backend(self) -> str | None:
        return self._str("backend")

    @property
    def web_type(self) -> str | None:
        return self._str("web")

    @property
    def cpu(self) -> str | None:
        return self._str("cpu")

    @property
    def memory(self) -> str | None:
        return self._str("memory")

    @property
    def replicas(self) -> int | None:
        return self.data.get("replicas")

    @property
    def buildservice_image(self) -> str | None:
        return self._str("buildservice-image")

    @property
    def extra_args(self) -> list | None:
        value = self.data.get("web::extra_args")
        return None if value is None else list(value)


def _manifest_problem(data: dict) -> str | None:
    """Return why a parsed manifest mapping is unusable, or None."""
    version = data.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        return f"key 'version' must be a whole number such as 4, not {_kind(version)}"
    for key in ("backend", "web", "buildservice-image", "health-check-path", "mount"):
        if key in data and data[key] is not None and not isinstance(data[key], str):
            return f"key '{key}' must be a string, not {_kind(data[key])}"
    for key in ("cpu", "memory"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
            return f"key '{key}' must be a quantity such as '500m', not {_kind(value)}"
    replicas = data.get("replicas")
    if replicas is not None and (isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0):
        return f"key 'replicas' must be a whole number, not {_kind(replicas)}"
    extra = data.get("web::extra_args")
    if extra is not None and (not isinstance(extra, list) or not all(isinstance(a, str) for a in extra)):
        return "key 'web::extra_args' must be a list of strings"
    return None


def _manifest_path(home: str | os.PathLike) -> str:
    return os.path.join(os.fspath(home), MANIFEST_NAME)


def _load_manifest(path: str) -> tuple[dict, os.stat_result | None]:
    """Read and check the manifest at ``path``; missing means empty."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        raise ManifestError(f"cannot read {_oneline(path)}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise ManifestError(f"{_oneline(path)} is a symbolic link; refusing to follow it",
                            "replace it with a regular file, or delete it after 'webservice stop'")
    try:
        raw = _read_capped(path, follow_symlinks=False)
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        reason = "it is not a regular file" if exc.errno in (errno.EISDIR, errno.ELOOP) else exc.strerror
        raise ManifestError(f"cannot read {_oneline(path)}: {_oneline(reason)}", _MANIFEST_HINT) from None
    data, problem = _parse_yaml(raw)
    if problem is None and data is not None and not isinstance(data, dict):
        problem = f"must be a YAML mapping, not {_kind(data)}"
    if problem is None and data:
        problem = _manifest_problem(data)
    if problem:
        raise ManifestError(f"{_oneline(path)} is damaged: {problem}", _MANIFEST_HINT)
    return (data or {}), st


def read_manifest(home: str | os.PathLike) -> Manifest:
    """Read ``home/service.manifest`` (versions 1 to 4); a missing file gives empty data."""
    path = _manifest_path(home)
    data, _ = _load_manifest(path)
    return Manifest(path=path, data=data)


def manifest_for_start(data: dict, *, web_type, backend="kubernetes", cpu=None, memory=None,
                       replicas=None, buildservice_image=None, extra_args=None,
                       health_check_path=None, mount=None) -> dict:
    """Return a copy of ``data`` with the web keys set for a start (None removes a key)."""
    new = copy.deepcopy(dict(data or {}))
    wanted = {"backend": backend, "web": web_type, "cpu": cpu, "memory": memory,
              "replicas": replicas, "buildservice-image": buildservice_image,
              "web::extra_args": list(extra_args) if extra_args is not None else None,
              "health-check-path": health_check_path, "mount": mount}
    for key, value in wanted.items():
        if value is None:
            new.pop(key, None)
        else:
            new[key] = value
    new["version"] = MANIFEST_VERSION
    return new


def manifest_for_stop(data: dict) -> dict:
    """Return a copy of ``data`` without the web keys; keys webservice does not own stay."""
    return {k: copy.deepcopy(v) for k, v in (data or {}).items() if k not in WEB_KEYS}


def _ordered(data: dict) -> dict:
    known = [k for k in _KEY_ORDER if k in data]
    others = sorted((k for k in data if k not in _KEY_ORDER), key=lambda k: (str(type(k)), str(k)))
    return {k: data[k] for k in known + others}


def _directory_of(path: str) -> str:
    return os.path.dirname(path) or "."


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the rename is still atomic
    finally:
        os.close(fd)


def take_lock(home: str | os.PathLike, timeout: float, *, flock: bool = False, busy: str | None = None) -> int:
    """Take an exclusive lock on the lock file next to the manifest; return its fd
    (closing it releases the lock).

    The manifest update uses a POSIX record lock (``lockf``, which NFS supports); the
    lifecycle's tool-wide lock uses ``flock`` on the same file (``flock=True``), so that
    the two never block each other inside one process. ``busy`` replaces the message
    given when another command holds the lock for longer than ``timeout``."""
    path = os.path.join(os.fspath(home), LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ManifestError(f"{_oneline(path)} is a symbolic link; refusing to follow it",
                                "delete it; it is only a lock file") from None
        raise ManifestError(f"cannot create the lock file {_oneline(path)}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise ManifestError(f"lock file {_oneline(path)} is not a regular file owned by "
                                f"this user; refusing to use it", "delete it; it is only a lock file")
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                (fcntl.flock if flock else fcntl.lockf)(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    raise ManifestError(f"cannot lock {_oneline(path)}: {exc.strerror}") from None
            if time.monotonic() >= deadline:
                if busy:
                    raise ManifestError(f"{busy}; gave up waiting for it after {timeout:g} s",
                                        "wait for it to finish and run this command again")
                try:
                    holder = _oneline(os.pread(fd, 200, 0).decode("utf-8", "replace").strip(), 80)
                except OSError:
                    holder = ""
                raise ManifestError(
                    f"another webservice command is updating {_oneline(_manifest_path(home))} "
                    f"(lock held by {holder or 'an unknown process'}?); gave up after {timeout:g} s",
                    "wait for it to finish and run this command again")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        import socket  # here, not at the top: keep --help and --dry-run imports small

        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        except OSError:
            pass  # only informative
        return fd
    except BaseException:
        os.close(fd)
        raise


def _remove_stale_temps(home: str) -> None:
    """Remove temporary files of crashed runs (safe: every writer holds the lock)."""
    try:
        names = os.listdir(home)
    except OSError:
        return
    for name in names:
        if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
            try:
                os.unlink(os.path.join(home, name))
            except OSError:
                pass


def _write_atomically(path: str, text: str, mode: int) -> None:
    import tempfile  # here, not at the top: keep --help and --dry-run imports small

    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=_directory_of(path))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            fd = -1
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd != -1:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(_directory_of(path))


def update_manifest(home: str | os.PathLike, change: Callable[[dict], dict], *,
                    lock_timeout: float = LOCK_TIMEOUT) -> Manifest:
    """Apply ``change`` to the manifest under an exclusive lock and save it atomically.

    ``change`` gets a copy of the current data and returns the new data. An empty result
    (or None) means "stop": the web keys are removed, other keys kept, and the file is
    deleted when nothing but ``version`` is left. The saved data always has version 4.
    On any failure the previous manifest is left as it was.
    """
    home = os.fspath(home)
    path = _manifest_path(home)
    if not _thread_lock.acquire(timeout=lock_timeout):
        raise ManifestError(f"another webservice command is updating {_oneline(path)} "
                            f"(in this process); gave up after {lock_timeout:g} s")
    try:
        lock_fd = take_lock(home, lock_timeout)
        try:
            return _update_locked(path, change)
        finally:
            os.close(lock_fd)
    finally:
        _thread_lock.release()


def _update_locked(path: str, change: Callable[[dict], dict]) -> Manifest:
    old, st = _load_manifest(path)
    if st is not None and st.st_uid != os.geteuid():
        raise ManifestError(f"{_oneline(path)} is owned by another user (uid {st.st_uid}); "
                            f"refusing to replace it", "run webservice as the tool user ('become <tool>')")
    if isinstance(old.get("version"), int) and old["version"] > MANIFEST_VERSION:
        raise ManifestError(f"{_oneline(path)} has version {old['version']}, newer than this "
                            f"webservice understands ({MANIFEST_VERSION}); refusing to downgrade it",
                            "use the newer webservice, or delete the file after 'webservice stop'")
    new = change(copy.deepcopy(old))
    if not new:
        new = manifest_for_stop(old)
    if not isinstance(new, dict):
        raise TypeError(f"change() must return a dict, not {type(new).__name__}")
    new = dict(new)
    new.pop("version", None)
    _remove_stale_temps(_directory_of(path))
    if not new:
        if st is not None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise ManifestError(f"cannot remove {_oneline(path)}: {exc.strerror}") from None
            _fsync_dir(_directory_of(path))
        return Manifest(path=path, data={})
    new["version"] = MANIFEST_VERSION
    problem = _manifest_problem(new)
    if problem:  # never write a file that the next run would call damaged
        raise ManifestError(f"refusing to save an invalid {_oneline(path)}: {problem}",
                            "this is a bug in webservice; please report it with --debug")
    new = _ordered(new)
    import yaml

    text = MANIFEST_HEADER + yaml.safe_dump(new, sort_keys=False, default_flow_style=False,
                                            allow_unicode=True)
    mode = ((stat.S_IMODE(st.st_mode) & 0o644) | 0o600) if st is not None else 0o644
    try:
        _write_atomically(path, text, mode)
    except OSError as exc:
        raise ManifestError(f"cannot save {_oneline(path)}: {_oneline(exc.strerror or exc)}; "
                            f"the previous version was kept", "free some space or fix the "
                            "permissions, then run the command again") from None
    return Manifest(path=path, data=new)
