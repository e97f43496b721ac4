"""Find, read and check ``service.template``, the maintainer's own file of start options.

It is looked up via ``--template PATH``, else in one of :data:`TEMPLATE_LOCATIONS` under
the tool's home (more than one found is an error), and parsed with the safe reader of
:mod:`webservice.state.yamlio`. Templates are taken as users write them (REFERENCE
section 8, Toolforge's acceptance tests): key order does not matter; unknown keys give
the warning ``Your template file (service.template) contains unknown keys: ...`` (with a
did-you-mean for near misses) and are ignored; ``extra_args: ""``, ``[]`` or ``null``
mean no arguments; a string ``extra_args`` is split like a shell would, with a warning
suggesting the list form. Wrong types of known keys, and a file that is not a mapping,
are one-line :class:`~webservice.errors.TemplateError` naming the file and the key.

It does not check quantity syntax (the spec does), know the type catalogue, or merge the
template with the command line (that is the spec's precedence rule); it prints nothing.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass

from webservice.errors import TemplateError
from webservice.state.yamlio import oneline, parse_yaml, read_capped

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
UNKNOWN_KEYS_WARNING = "Your template file (service.template) contains unknown keys: "
# near misses difflib does not find on its own (or finds the wrong key for)
_NEAR_MISSES = {"memory": "mem", "replica": "replicas", "image": "buildservice-image",
                "args": "extra_args", "extra-args": "extra_args", "extraargs": "extra_args",
                "health-check": "health-check-path", "healthcheck": "health-check-path",
                "mounts": "mount", "web": "type"}
_TEMPLATE_HINT = ("fix the file (a YAML mapping of: " + ", ".join(TEMPLATE_KEYS) + "), "
                  "or move it away to start without it")


@dataclass(frozen=True)
class Template:
    """A checked service.template: ``values`` has only known keys, in snake_case."""

    path: str
    values: dict
    warnings: tuple[str, ...] = ()


def _where(path: str) -> str:
    return f"service.template ({oneline(path)})"


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
            raise TemplateError(f"template {oneline(path)} given with --template {what}",
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
            "more than one service.template found: " + ", ".join(oneline(p) for p in found),
            "keep only one of them, or choose one with --template PATH")
    return found[0] if found else None


def kind(value: object) -> str:
    """A value's kind in words, for messages (``a number (3.11)``)."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, (int, float)):
        return f"a number ({oneline(value, 40)})"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"the string {oneline(repr(value), 60)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def split_extra_args(text: str) -> list[str]:
    """Split a string of arguments like a shell would; ValueError on bad quoting."""
    import shlex

    return shlex.split(text)


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
        if value is None:
            return [], None
        if not isinstance(value, list):
            return None, form
        for index, item in enumerate(value, 1):
            if not isinstance(item, str):
                return None, f"{form} (item {index} is {kind(item)}; quote it)"
        return list(value), None
    if key == "mount":
        if value in ("all", "none"):
            return value, None
        return None, "'all' or 'none'"
    raise AssertionError(key)  # pragma: no cover


def suggest_key(key: object) -> str | None:
    """The known template key ``key`` was probably meant to be, if one is close."""
    if not isinstance(key, str):
        return None
    folded = key.strip().lower()
    if folded in _NEAR_MISSES:
        return _NEAR_MISSES[folded]
    for known in TEMPLATE_KEYS:  # another spelling of a known key: health_check_path
        if folded.replace("_", "-") == known.replace("_", "-"):
            return known
    import difflib

    close = difflib.get_close_matches(folded, TEMPLATE_KEYS, n=1, cutoff=0.75)
    return close[0] if close else None


def unknown_keys_warning(keys: list) -> str:
    """``Your template file (service.template) contains unknown keys: replica (did you
    mean 'replicas'?), foo``."""
    names = []
    for key in keys:
        name = oneline(key if isinstance(key, str) else repr(key), 60)
        suggestion = suggest_key(key)
        names.append(f"{name} (did you mean '{suggestion}'?)" if suggestion else name)
    return UNKNOWN_KEYS_WARNING + ", ".join(names)


def load_template(path: str | os.PathLike) -> Template:
    """Read and check a service.template; raise TemplateError with a one-line reason."""
    path = os.fspath(path)
    where = _where(path)
    try:
        raw = read_capped(path, follow_symlinks=True)
    except OSError as exc:
        raise TemplateError(f"cannot read {where}: {oneline(exc.strerror or exc)}",
                            "check that the file exists and is readable by the tool") from None
    data, problem = parse_yaml(raw)
    if problem:
        raise TemplateError(f"{where}: {problem}", _TEMPLATE_HINT)
    if data is None:
        raise TemplateError(f"{where}: the file is empty; it must be a YAML mapping such as "
                            f"'type: python3.11'", "add settings to it or delete it")
    if not isinstance(data, dict):
        raise TemplateError(f"{where}: must be a YAML mapping of settings such as "
                            f"'type: python3.11', not {kind(data)}", _TEMPLATE_HINT)
    values, unknown, warnings = {}, [], []
    for key in sorted(data, key=lambda k: (not isinstance(k, str), str(k))):  # order never matters
        value = data[key]
        if key not in TEMPLATE_KEYS:
            unknown.append(key)
            continue
        if key == "extra_args" and isinstance(value, str):
            try:
                split = split_extra_args(value)
            except ValueError as exc:
                raise TemplateError(f"{where}: key 'extra_args' cannot be split into arguments "
                                    f"({oneline(exc, 60)}): {oneline(repr(value), 80)}",
                                    "write it as a YAML list, e.g. extra_args: [--port, '8000']") from None
            if split:
                listed = "[" + ", ".join(oneline(repr(a), 40) for a in split[:8]) + (", ..." if len(split) > 8 else "") + "]"
                warnings.append(f"{where}: key 'extra_args' is a string; it was split like a shell "
                                f"would into {listed}; write it as a YAML list to say exactly what you mean")
            value = split
        normalised, expected = _check_value(key, value)
        if expected:
            raise TemplateError(f"{where}: key '{key}' must be {expected}, not {kind(value)}",
                                _TEMPLATE_HINT)
        values[key.replace("-", "_")] = normalised
    if unknown:
        unknown.sort(key=lambda k: list(data).index(k))  # in the file's order
        warnings.insert(0, unknown_keys_warning(unknown))
    return Template(path=path, values=values, warnings=tuple(warnings))
