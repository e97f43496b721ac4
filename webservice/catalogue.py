"""The catalogue of webservice types: which types exist, their image, launcher and needs.

The cluster publishes the Toolforge images in ConfigMap ``tf-public/image-config``, key
``images-v1.yaml``: a mapping from type name to ``{state, aliases, variants: {webservice:
{image, extra: {wstype, resources}}, jobs-framework: {...}}}``. Entries without a
``webservice`` variant are images for jobs only and are not webservice types.
``buildservice`` is always added (its image comes from the build service registry and is
chosen elsewhere, so its ``image`` and ``runner`` are None).

Three sources, in order of preference:

- ``cluster``: the ConfigMap, fetched through the ``fetch`` callable the caller passes
  (this module never talks to the network itself). A successful fetch is stored in the
  cache directory as JSON, atomically.
- ``cache``: that JSON file. Used without asking the cluster while younger than ``ttl``;
  used whatever its age when offline (``fetch=None``) or when the fetch fails.
- ``builtin``: ``webservice/data/images-v1.yaml``, a copy in the cluster's exact format.

Loading must be cheap because ``--help``, shell completion and ``--dry-run`` load the
catalogue: this module imports only the standard library (``yaml`` only when YAML has to
be parsed, ``difflib`` only to suggest a name). The built-in YAML file is parsed once and
its validated content kept in the cache directory as JSON too (``images-v1.builtin.json``,
keyed by the data file's size and mtime), so that a normal run never imports ``yaml`` here.
A corrupt, unreadable or unwritable cache is ignored, never an error.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from webservice.errors import InputError, UnknownTypeError, WebserviceError

#: ``wstype`` kinds of images-v1.yaml -> launcher types (``webservice-runner --type``).
RUNNER_TYPES = {
    "python": "uwsgi-python",
    "js": "nodejs",
    "lighttpd": "lighttpd",
    "lighttpd-plain": "lighttpd-plain",
    "generic": "generic",
}

#: Home-relative paths each launcher type needs before ``start``: a tuple of groups, each
#: group satisfied if ANY of its paths exists.
RUNNER_REQUIREMENTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "uwsgi-python": (("www/python/src/app.py",),),
    "nodejs": (("www/js/package.json",),),
    "lighttpd": (("public_html", ".lighttpd.conf"),),
    "lighttpd-plain": (("public_html", ".lighttpd.conf"),),
    "generic": (),
}

#: Launcher types that cannot start without extra arguments (the command to run).
RUNNERS_NEEDING_EXTRA_ARGS = frozenset({"generic"})

PROFILES = ("default", "jdk")
STATES = ("stable", "deprecated")
IMAGE_TAG = "latest"
BUILDSERVICE = "buildservice"

CLUSTER_SOURCE = "ConfigMap tf-public/image-config (key images-v1.yaml)"
BUILTIN_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "images-v1.yaml")
CACHE_FILE = "images-v1.json"
BUILTIN_SNAPSHOT_FILE = "images-v1.builtin.json"
CACHE_FORMAT = 1
DEFAULT_TTL = 3600.0

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\Z")


@dataclass(frozen=True)
class WebserviceType:
    """One webservice type, as the rest of the program needs it."""

    name: str
    image: str | None  # full reference with tag; None for buildservice
    runner: str | None  # webservice-runner --type; None for buildservice
    profile: str  # resource profile: "default" | "jdk"
    state: str  # "stable" | "deprecated"
    aliases: tuple[str, ...] = ()
    required: tuple[tuple[str, ...], ...] = ()
    needs_extra_args: bool = False

    @property
    def deprecated(self) -> bool:
        return self.state == "deprecated"


BUILDSERVICE_TYPE = WebserviceType(
    name=BUILDSERVICE, image=None, runner=None, profile="default", state="stable"
)


def _natural_key(name: str) -> tuple:
    """Letters ascending, version numbers descending: php8.2 < php7.4, python3.11 < python3.9."""
    parts = re.split(r"(\d+)", name)
    return tuple(-int(p) if i % 2 else p for i, p in enumerate(parts))


def _family(name: str) -> str:
    """The language of a type name: its leading letters (``python3.11`` -> ``python``)."""
    match = re.match(r"[A-Za-z]+", name)
    return match.group(0).lower() if match else ""


def _prog() -> str:
    return "toolforge webservice" if os.environ.get("TOOLFORGE_CLI") else "webservice"


@dataclass(frozen=True)
class Catalogue:
    """The webservice types available, by canonical name (``buildservice`` included)."""

    types: Mapping[str, WebserviceType]
    source: str  # "builtin" | "cache" | "cluster"
    fetched_at: float | None = None  # when the cluster's copy was read (cache, cluster)
    warning: str | None = None  # set when the cluster could not be read and we fell back
    _index: Mapping[str, WebserviceType] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        index: dict[str, WebserviceType] = {}
        for t in self.types.values():
            for alias in t.aliases:
                index.setdefault(alias, t)
        for name, t in self.types.items():  # canonical names win over aliases
            index[name] = t
        object.__setattr__(self, "_index", index)

    def get(self, name: str) -> WebserviceType | None:
        """The type called ``name`` (canonical name or alias, case-sensitive), or None."""
        return self._index.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def resolve(self, name: str) -> WebserviceType:
        """The type called ``name`` (canonical name or alias); UnknownTypeError otherwise."""
        found = self._index.get(name)
        if found is not None:
            return found
        shown = name if len(name) <= 40 else name[:37] + "..."
        suggestion = self.suggest(name)
        listed = ", ".join(
            n + (" (deprecated)" if self.types[n].deprecated else "") for n in self.names()
        )
        hint = f"valid types: {listed} (see '{_prog()} types')"
        if suggestion:
            hint = f"did you mean '{suggestion}'? " + hint[0].upper() + hint[1:]
        raise UnknownTypeError(f"unknown webservice type {shown!r}", hint=hint)

    def suggest(self, name: str) -> str | None:
        """The type ``name`` most likely meant: the same name in another case, else the
        nearest *current* type (the newest of its family, e.g. ``php5`` -> ``php8.2``, or a
        close spelling); never a deprecated one for a name that is not one."""
        if not isinstance(name, str) or not name:
            return None
        folded = {k.lower(): t.name for k, t in self._index.items()}
        if name.lower() in folded:
            return folded[name.lower()]
        current = {k.lower(): t.name for k, t in self._index.items() if not t.deprecated}
        family = _family(name)
        if family:
            newest = [n for n in self.names(include_deprecated=False) if _family(n) == family]
            if newest:
                return newest[0]
        import difflib

        close = difflib.get_close_matches(name.lower(), list(current), n=1, cutoff=0.6)
        return current[close[0]] if close else None

    def suggest_replacement(self, name: str) -> str | None:
        """For a deprecated type, the newest current type of its family (``php7.4`` ->
        ``php8.2``); None when there is none or ``name`` is not deprecated."""
        found = self._index.get(name)
        if found is None or not found.deprecated:
            return None
        newest = [n for n in self.names(include_deprecated=False) if _family(n) == _family(found.name)]
        return newest[0] if newest else None

    def names(self, include_deprecated: bool = True) -> list[str]:
        """Canonical names: stable ones first, then deprecated ones, each naturally sorted
        (newest version first: python3.11 before python3.9)."""
        chosen = [t for t in self.types.values() if include_deprecated or not t.deprecated]
        chosen.sort(key=lambda t: (t.deprecated, _natural_key(t.name)))
        return [t.name for t in chosen]


# --- parsing and validation ---------------------------------------------------------------


def _fail(source: str, what: str) -> InputError:
    return InputError(f"{source}: {what}")


def _parse_yaml(text: object, source: str) -> object:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail(source, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not isinstance(text, str):
        raise _fail(source, f"expected YAML text, got {type(text).__name__}")
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise _fail(source, f"invalid YAML: {problem}{where}") from None


def _normalize(config: object, source: str) -> dict[str, dict]:
    """Validate an images-v1 mapping; return its webservice types in canonical form.

    The result is still in the cluster's format (so the cache and the built-in snapshot
    are re-validated by this same function when read back), reduced to what webservice
    uses: ``{name: {state, aliases, variants: {webservice: {image, extra: {wstype,
    resources}}}}}``. Jobs-only entries are checked to be mappings and then dropped.
    """
    if config is None:
        raise _fail(source, "is empty")
    if not isinstance(config, Mapping):
        raise _fail(source, f"expected a mapping of type names, got {type(config).__name__}")
    result: dict[str, dict] = {}
    owner: dict[str, str] = {BUILDSERVICE: BUILDSERVICE}  # name or alias -> type
    for name, entry in config.items():
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise _fail(source, f"invalid type name {name!r}")
        if not isinstance(entry, Mapping):
            raise _fail(source, f"type '{name}': expected a mapping, got {type(entry).__name__}")
        variants = entry.get("variants")
        if variants is None:
            variants = {}
        if not isinstance(variants, Mapping):
            raise _fail(source, f"type '{name}': 'variants' must be a mapping")
        web = variants.get("webservice")
        if web is None:
            continue  # an image for jobs only
        where = f"type '{name}'"
        if not isinstance(web, Mapping):
            raise _fail(source, f"{where}: 'variants.webservice' must be a mapping")
        if name == BUILDSERVICE:
            raise _fail(source, f"{where}: the name is reserved for build service images")

        state = entry.get("state", "stable")
        if state not in STATES:
            raise _fail(source, f"{where}: 'state' is {state!r}, expected one of: "
                        + ", ".join(STATES))

        aliases = entry.get("aliases")
        if aliases is None:
            aliases = []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise _fail(source, f"{where}: 'aliases' must be a list of names")
        clean_aliases: list[str] = []
        for alias in aliases:
            if not _NAME_RE.match(alias):
                raise _fail(source, f"{where}: invalid alias {alias!r}")
            if alias != name and alias not in clean_aliases:
                clean_aliases.append(alias)

        image = web.get("image")
        if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image):
            raise _fail(source, f"{where}: 'variants.webservice.image' must be an image "
                        f"name, got {image!r}")
        extra = web.get("extra")
        if extra is None:
            extra = {}
        if not isinstance(extra, Mapping):
            raise _fail(source, f"{where}: 'variants.webservice.extra' must be a mapping")
        wstype = extra.get("wstype")
        if wstype not in RUNNER_TYPES:
            raise _fail(source, f"{where}: 'variants.webservice.extra.wstype' is {wstype!r}, "
                        "expected one of: " + ", ".join(sorted(RUNNER_TYPES)))
        resources = extra.get("resources", "default")
        if resources is None:
            resources = "default"
        if resources not in PROFILES:
            raise _fail(source, f"{where}: 'variants.webservice.extra.resources' is "
                        f"{resources!r}, expected one of: " + ", ".join(PROFILES))

        for key in [name, *clean_aliases]:
            other = owner.get(key)
            if other is not None and other != name:
                raise _fail(source, f"{where}: name or alias '{key}' is also used by "
                            f"type '{other}'")
            owner[key] = name
        result[name] = {
            "state": state,
            "aliases": clean_aliases,
            "variants": {
                "webservice": {
                    "image": image,
                    "extra": {"wstype": wstype, "resources": resources},
                }
            },
        }
    if not result:
        raise _fail(source, "defines no webservice types")
    return result


def _with_tag(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last or ":" in last:
        return image  # already tagged or pinned by digest
    return f"{image}:{IMAGE_TAG}"


def _types_from_normalized(normalized: Mapping[str, dict]) -> dict[str, WebserviceType]:
    types: dict[str, WebserviceType] = {}
    for name, entry in normalized.items():
        web = entry["variants"]["webservice"]
        runner = RUNNER_TYPES[web["extra"]["wstype"]]
        types[name] = WebserviceType(
            name=name,
            image=_with_tag(web["image"]),
            runner=runner,
            profile=web["extra"]["resources"],
            state=entry["state"],
            aliases=tuple(entry["aliases"]),
            required=RUNNER_REQUIREMENTS[runner],
            needs_extra_args=runner in RUNNERS_NEEDING_EXTRA_ARGS,
        )
    return types


def parse_image_config(text: str, *, source: str = CLUSTER_SOURCE) -> dict[str, WebserviceType]:
    """The webservice types defined by an images-v1.yaml text (``buildservice`` not
    included). Invalid content raises InputError whose message starts with ``source``."""
    return _types_from_normalized(_normalize(_parse_yaml(text, source), source))


# --- cache -------------------------------------------------------------------------------


def _write_json_atomic(path: str, data: object) -> None:
    """Write JSON to ``path`` via a unique temporary file in the same directory + rename."""
    directory, name = os.path.split(path)
    directory = directory or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)  # never writable by others, whatever the umask
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    payload = json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _store(path: str, data: object) -> None:
    try:
        _write_json_atomic(path, data)
    except (OSError, TypeError, ValueError):
        pass  # a cache we cannot write is only slower next time


def _read_json(path: str) -> dict | None:
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return None
    return data


def _read_cache(cache_dir: str) -> tuple[dict[str, WebserviceType], float] | None:
    """The cluster's list as cached, with when it was fetched; None if absent or bad."""
    data = _read_json(os.path.join(cache_dir, CACHE_FILE))
    if data is None:
        return None
    fetched_at = data.get("fetched_at")
    if (
        isinstance(fetched_at, bool)
        or not isinstance(fetched_at, (int, float))
        or not math.isfinite(fetched_at)
    ):
        return None
    try:
        types = _types_from_normalized(_normalize(data.get("config"), "cache"))
    except WebserviceError:
        return None
    return types, float(fetched_at)


_builtin_memo: dict[tuple, dict[str, WebserviceType]] = {}


def _builtin_types(cache_dir: str | None) -> dict[str, WebserviceType]:
    """The built-in list, from the JSON snapshot in the cache dir when it matches the data
    file, else by parsing the YAML (and then writing the snapshot)."""
    try:
        st = os.stat(BUILTIN_PATH)
        key = [st.st_size, st.st_mtime_ns]
    except OSError:
        key = None
    memo_key = (BUILTIN_PATH, tuple(key) if key else None)
    if memo_key in _builtin_memo:
        return _builtin_memo[memo_key]
    snapshot = os.path.join(cache_dir, BUILTIN_SNAPSHOT_FILE) if cache_dir is not None else None
    types = None
    if snapshot is not None and key is not None:
        data = _read_json(snapshot)
        if data is not None and data.get("key") == key:
            try:
                types = _types_from_normalized(_normalize(data.get("config"), "snapshot"))
            except WebserviceError:
                types = None
    if types is None:
        with open(BUILTIN_PATH, encoding="utf-8") as handle:
            normalized = _normalize(_parse_yaml(handle.read(), BUILTIN_PATH), BUILTIN_PATH)
        types = _types_from_normalized(normalized)
        if snapshot is not None and key is not None:
            _store(snapshot, {"format": CACHE_FORMAT, "key": key, "config": normalized})
    _builtin_memo[memo_key] = types
    return types


def _catalogue(types: Mapping[str, WebserviceType], source: str, fetched_at: float | None,
               warning: str | None = None) -> Catalogue:
    every = dict(types)
    every[BUILDSERVICE] = BUILDSERVICE_TYPE
    return Catalogue(MappingProxyType(every), source, fetched_at, warning)


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def load_catalogue(
    cache_dir: str | os.PathLike,
    *,
    ttl: float = DEFAULT_TTL,
    fetch: Callable[[], str] | None = None,
    now: float | None = None,
) -> Catalogue:
    """The catalogue to use.

    Offline (``fetch`` None): the cached cluster list whatever its age, else the built-in
    one; never the network. Online: a cache younger than ``ttl`` is used without calling
    ``fetch``; otherwise ``fetch()`` (returning the ConfigMap's images-v1.yaml text) is
    called, its content validated and cached. If ``fetch`` raises a WebserviceError or
    returns invalid content, the stale cache or the built-in list is used and
    ``Catalogue.warning`` says why.
    """
    cache_dir = os.fspath(cache_dir)
    now = time.time() if now is None else now
    cached = _read_cache(cache_dir)
    if fetch is None:
        if cached is not None:
            return _catalogue(cached[0], "cache", cached[1])
        return _catalogue(_builtin_types(cache_dir), "builtin", None)
    if cached is not None and 0 <= now - cached[1] < ttl:
        return _catalogue(cached[0], "cache", cached[1])
    try:
        normalized = _normalize(_parse_yaml(fetch(), CLUSTER_SOURCE), CLUSTER_SOURCE)
    except WebserviceError as exc:
        if cached is not None:
            fallback = f"the list cached on {_when(cached[1])}"
        else:
            fallback = "the built-in list"
        warning = f"could not read the webservice types from the cluster ({exc}); using {fallback}"
        if cached is not None:
            return _catalogue(cached[0], "cache", cached[1], warning)
        return _catalogue(_builtin_types(cache_dir), "builtin", None, warning)
    _store(os.path.join(cache_dir, CACHE_FILE),
           {"format": CACHE_FORMAT, "fetched_at": now, "config": normalized})
    return _catalogue(_types_from_normalized(normalized), "cluster", now)


def cached_type_names(cache_dir: str | os.PathLike) -> list[str]:
    """Type names for shell completion, from the cache or the built-in list; never fails
    and never touches the network."""
    try:
        return load_catalogue(cache_dir).names()
    except Exception:  # noqa: BLE001 (completion must never break the shell)
        return [BUILDSERVICE]
