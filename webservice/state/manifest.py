"""Read and update ``service.manifest``, Toolforge's record of the running webservice.

The file (version 4, read by other Toolforge tooling) lives in the tool's home.
:func:`read_manifest` reads version 1 to 4 files and keeps every key, including what 0.98
and older versions left there (a version 2 ``web::extra_args`` string, ``backend:
gridengine``, ``buildservice-image`` for any type): those are read, and the spec decides
what applies (``webservice.model.spec.manifest_layer``). :func:`update_manifest` changes it
under the tool's lock (:mod:`webservice.state.lock`; pass ``lock=`` when the command
already holds it) and replaces it atomically (:func:`webservice.state.yamlio.write_atomically`),
so that a crash, a full disk or Ctrl-C never leaves a truncated manifest and two
concurrent runs cannot lose an update. Symlinked manifest files, and files owned by another
user, are refused rather than followed or overwritten.

It does not decide which values are stored (``Spec.manifest_values`` does) and prints
nothing.
"""

from __future__ import annotations

import copy
import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

from webservice.errors import ManifestError
from webservice.state.lock import LOCK_NAME, LOCK_TIMEOUT, ToolLock
from webservice.state.template import kind as _kind
from webservice.state.yamlio import directory_of as _directory_of
from webservice.state.yamlio import fsync_dir as _fsync_dir
from webservice.state.yamlio import oneline as _oneline
from webservice.state.yamlio import parse_yaml as _parse_yaml
from webservice.state.yamlio import read_capped as _read_capped
from webservice.state.yamlio import write_atomically

__all__ = ["MANIFEST_NAME", "MANIFEST_HEADER", "MANIFEST_VERSION", "WEB_KEYS", "Manifest",
           "read_manifest", "update_manifest", "manifest_for_start", "manifest_for_stop", "LOCK_NAME",
           "LOCK_TIMEOUT"]

MANIFEST_NAME = "service.manifest"
MANIFEST_HEADER = "# This file is used by Toolforge infrastructure.\n# Please do not edit manually at this time.\n"
MANIFEST_VERSION = 4
TEMP_PREFIX = ".service.manifest."
TEMP_SUFFIX = ".tmp"
# Keys webservice owns, in the order they are written; other keys follow, sorted.
# health-check-path and mount are not in the old format: stored so that a restart keeps
# the probes and the mount choice of the last start; other tooling ignores unknown keys.
WEB_KEYS = ("backend", "web", "cpu", "memory", "replicas", "buildservice-image", "web::extra_args",
            "health-check-path", "mount")
_KEY_ORDER = ("version",) + WEB_KEYS
_MANIFEST_HINT = ("fix the file, or delete it after 'webservice stop' "
                  "(it only records the options of the last start)")


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
        """The stored arguments; a version 2 string is split like a shell would (None if
        its quoting is broken)."""
        value = self.data.get("web::extra_args")
        if isinstance(value, str):
            from webservice.state.template import split_extra_args

            try:
                return split_extra_args(value)
            except ValueError:
                return None
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
    extra = data.get("web::extra_args")  # a single string in version 2 files: read (split) too
    if extra is not None and not isinstance(extra, str) and (
            not isinstance(extra, list) or not all(isinstance(a, str) for a in extra)):
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


def update_manifest(home: str | os.PathLike, change: Callable[[dict], dict], *,
                    lock_timeout: float = LOCK_TIMEOUT, lock: ToolLock | None = None) -> Manifest:
    """Apply ``change`` to the manifest under the tool's lock and save it atomically.

    ``lock``: the tool's lock, already held by the caller (start, restart and stop take
    it once for the whole command); without it this function takes and releases it.
    ``change`` gets a copy of the current data and returns the new data. An empty result
    (or None) means "stop": the web keys are removed, other keys kept, and the file is
    deleted when nothing but ``version`` is left. The saved data always has version 4.
    On any failure the previous manifest is left as it was.
    """
    home = os.fspath(home)
    path = _manifest_path(home)
    if lock is not None:
        if not lock.covers(home):
            raise ValueError(f"the lock passed is not held for {home}")  # a bug of the caller
        return _update_locked(path, change)
    with ToolLock(home, lock_timeout):
        return _update_locked(path, change)


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
        write_atomically(path, text, mode, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    except OSError as exc:
        raise ManifestError(f"cannot save {_oneline(path)}: {_oneline(exc.strerror or exc)}; "
                            f"the previous version was kept", "free some space or fix the "
                            "permissions, then run the command again") from None
    return Manifest(path=path, data=new)
