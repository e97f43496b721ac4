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
BUILTIN_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "images-v1.yaml")
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


#: launcher and grid-era type names -> the family of catalogue types that replaced them
_FAMILY_OF = {"lighttpd": "php", "lighttpd-plain": "php", "uwsgi-python": "python",
              "uwsgi-plain": "python", "uwsgi": "python", "nodejs": "node", "js": "node",
              "tomcat": "jdk", "golang": "golang"}


def _family(name: str) -> str:
    """``php8.2`` -> ``php``, ``python39`` -> ``python``, ``lighttpd`` -> ``php``."""
    lowered = name.lower()
    if lowered in _FAMILY_OF:
        return _FAMILY_OF[lowered]
    match = re.match(r"[a-z]+", lowered)
    letters = match.group(0) if match else ""
    return _FAMILY_OF.get(letters, letters)


def _prog() -> str:
    from webservice.conventions import program_name

    return program_name()


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
        if name.lower() in folded:  # another case of a real name or alias
            return folded[name.lower()]
        # "python", "php", "node": the newest stable type of that family.
        family = [n for n in self.names(include_deprecated=False) if n.lower().startswith(name.lower())]
        if family:
            return family[0]
        # a retired version or a typo: the nearest current type, never a deprecated one
        return self.suggest_replacement(name)

    def suggest_replacement(self, name: str) -> str | None:
        """The current (not deprecated) type nearest to ``name``: for a deprecated or retired
        type the newest stable type of its family (php7.4 -> php8.4, python3.7 -> the newest
        python, grid-era ``lighttpd`` -> the newest php); for a typo the closest stable name.
        None for a current type itself, or when nothing is near."""
        if not isinstance(name, str) or not name:
            return None
        found = self._index.get(name)
        if found is not None and not found.deprecated:
            return None
        current = self.names(include_deprecated=False)
        if found is not None:
            family = _family(found.name)
        else:
            family = _family(name)
        if family:
            same = [n for n in current if n != BUILDSERVICE and _family(n) == family]
            if same:
                return same[0]  # names() puts the newest version first
        import difflib

        close = difflib.get_close_matches(name.lower(), [n.lower() for n in current], n=1, cutoff=0.6)
        return next((n for n in current if close and n.lower() == close[0]), None)

    def names(self, include_deprecated: bool = True) -> list[str]:
        """Canonical names: stable ones first, then deprecated ones, each naturally sorted
        (newest version first: python3.11 before python3.9)."""
        chosen = [t for t in self.types.values() if include_deprecated or not t.deprecated]
        chosen.sort(key=lambda t: (t.deprecated, _natural_key(t.name)))
        return [t.name for t in chosen]


@dataclass(frozen=True)
class TypeInfo:
    """One line of ``webservice types``: what :func:`list_types` returns."""

    name: str
    runner: str | None  # webservice-runner --type; None for buildservice
    image: str | None  # full image reference with tag; None for buildservice
    deprecated: bool
    aliases: tuple[str, ...]
    profile: str  # resource profile: "default" | "jdk"
    replacement: str | None  # the current type suggested instead (deprecated types only)

    def as_dict(self) -> dict:
        """For ``--json``."""
        return {"name": self.name, "runner": self.runner, "image": self.image,
                "deprecated": self.deprecated, "aliases": list(self.aliases),
                "profile": self.profile, "replacement": self.replacement}


def list_types(catalogue: Catalogue, include_deprecated: bool = True) -> list[TypeInfo]:
    """The types of ``catalogue`` in the order of :meth:`Catalogue.names` (stable first,
    newest version first), each with runner, image, deprecated mark and, for a deprecated
    type, the suggested replacement. This is what a ``webservice types`` command shows;
    ``catalogue.source`` says where the list came from (cluster, cache, builtin)."""
    out = []
    for name in catalogue.names(include_deprecated=include_deprecated):
        t = catalogue.types[name]
        out.append(TypeInfo(name=t.name, runner=t.runner, image=t.image, deprecated=t.deprecated,
                            aliases=t.aliases, profile=t.profile,
                            replacement=catalogue.suggest_replacement(name) if t.deprecated else None))
    return out


# --- parsing and validation ---------------------------------------------------------------


def _fail(source: str, what: str) -> InputError:
    return InputError(f"{source}: {what}")


MAX_CONFIG_BYTES = 1024 * 1024


def _parse_yaml(text: object, source: str) -> object:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail(source, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not isinstance(text, str):
        raise _fail(source, f"expected YAML text, got {type(text).__name__}")
    from webservice.state.yamlio import parse_yaml

    value, problem = parse_yaml(text, max_bytes=MAX_CONFIG_BYTES, max_nodes=200_000, duplicates_ok=True)
    if problem:
        raise _fail(source, problem)
    return value


def _infer_wstype(name: str) -> str:
    """The launcher kind of an entry that has no ``extra`` (older catalogue entries)."""
    for prefix, kind in (("php", "lighttpd"), ("python", "python"), ("node", "js")):
        if name.startswith(prefix):
            return kind
    return "generic"


def _entry(name: object, entry: object, owner: dict[str, str]) -> dict | None:
    """One catalogue entry in canonical form, None for a jobs-only image; an InputError
    (its message naming the entry) when it is broken. ``owner`` maps names and aliases
    already taken to their type and is updated only for a good entry."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InputError(f"invalid type name {name!r}")
    if not isinstance(entry, Mapping):
        raise InputError(f"type '{name}': expected a mapping, got {type(entry).__name__}")
    variants = entry.get("variants")
    if variants is None:
        variants = {}
    if not isinstance(variants, Mapping):
        raise InputError(f"type '{name}': 'variants' must be a mapping")
    web = variants.get("webservice")
    if web is None:
        return None  # an image for jobs only
    where = f"type '{name}'"
    if not isinstance(web, Mapping):
        raise InputError(f"{where}: 'variants.webservice' must be a mapping")
    if name == BUILDSERVICE:
        raise InputError(f"{where}: the name is reserved for build service images")

    state = entry.get("state", "stable")
    if state not in STATES:
        raise InputError(f"{where}: 'state' is {state!r}, expected one of: " + ", ".join(STATES))

    aliases = entry.get("aliases")
    if aliases is None:
        aliases = []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise InputError(f"{where}: 'aliases' must be a list of names")
    clean_aliases: list[str] = []
    for alias in aliases:
        if not _NAME_RE.match(alias):
            raise InputError(f"{where}: invalid alias {alias!r}")
        if alias != name and alias not in clean_aliases:
            clean_aliases.append(alias)

    image = web.get("image")
    if image is None and "image" not in web:
        image = entry.get("image")  # newer entries also carry a top-level image (jobs-api reads it)
    if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image):
        raise InputError(f"{where}: 'variants.webservice.image' must be an image name, got {image!r}")
    extra = web.get("extra")
    if extra is None:
        extra = {}
    if not isinstance(extra, Mapping):
        raise InputError(f"{where}: 'variants.webservice.extra' must be a mapping")
    wstype = extra.get("wstype")
    if wstype is None:
        wstype = _infer_wstype(name)
    if wstype not in RUNNER_TYPES:
        raise InputError(f"{where}: 'variants.webservice.extra.wstype' is {wstype!r}, "
                         "expected one of: " + ", ".join(sorted(RUNNER_TYPES)))
    resources = extra.get("resources", "default")
    if resources is None:
        resources = "default"
    if resources not in PROFILES:
        raise InputError(f"{where}: 'variants.webservice.extra.resources' is "
                         f"{resources!r}, expected one of: " + ", ".join(PROFILES))

    for key in [name, *clean_aliases]:
        other = owner.get(key)
        if other is not None and other != name:
            raise InputError(f"{where}: name or alias '{key}' is also used by type '{other}'")
    for key in [name, *clean_aliases]:
        owner[key] = name
    return {
        "state": state,
        "aliases": clean_aliases,
        "variants": {"webservice": {"image": image, "extra": {"wstype": wstype, "resources": resources}}},
    }


def _normalize(config: object, source: str, skipped: list | None = None) -> dict[str, dict]:
    """Validate an images-v1 mapping; return its webservice types in canonical form.

    The result is still in the cluster's format (so the cache and the built-in snapshot
    are re-validated by this same function when read back), reduced to what webservice
    uses: ``{name: {state, aliases, variants: {webservice: {image, extra: {wstype,
    resources}}}}}``. Jobs-only entries are checked to be mappings and then dropped.

    With ``skipped`` (a list), the mapping is read entry by entry: a broken entry is left
    out and a one-line reason naming it appended to ``skipped``; without, the first broken
    entry raises. Content that is not a mapping, or defines no usable webservice type,
    always raises.
    """
    if config is None:
        raise _fail(source, "is empty")
    if not isinstance(config, Mapping):
        raise _fail(source, f"expected a mapping of type names, got {type(config).__name__}")
    result: dict[str, dict] = {}
    owner: dict[str, str] = {BUILDSERVICE: BUILDSERVICE}  # name or alias -> type
    for name, entry in config.items():
        try:
            normalized = _entry(name, entry, owner)
        except InputError as exc:
            if skipped is None:
                raise _fail(source, exc.message) from None
            skipped.append(exc.message)
            continue
        if normalized is not None:
            result[name] = normalized
    if not result:
        raise _fail(source, "defines no webservice types"
                    + (f" that can be used ({'; '.join(skipped)[:300]})" if skipped else ""))
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
    included), strictly: any broken entry raises InputError whose message starts with
    ``source`` (used for the built-in copy, which must be perfect)."""
    return _types_from_normalized(_normalize(_parse_yaml(text, source), source))


def read_image_config(text: str, *, source: str = CLUSTER_SOURCE) -> tuple[dict[str, WebserviceType], str | None]:
    """The webservice types of the cluster's images-v1.yaml, read entry by entry: a broken
    entry is skipped, and the second value is then a one-line warning naming each one
    skipped (None when all were read). Raises InputError only when the text is not a
    YAML mapping or no entry at all can be used."""
    skipped: list[str] = []
    types = _types_from_normalized(_normalize(_parse_yaml(text, source), source, skipped))
    return types, _skipped_warning(source, skipped)


def _skipped_warning(source: str, skipped: list[str]) -> str | None:
    if not skipped:
        return None
    shown = "; ".join(skipped[:5]) + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else "")
    return f"{source}: skipped {len(skipped)} broken entr{'y' if len(skipped) == 1 else 'ies'} ({shown})"


# --- cache -------------------------------------------------------------------------------


def _write_json_atomic(path: str, data: object) -> None:
    """Write JSON to ``path`` atomically (``webservice.state.yamlio.write_atomically``: a
    unique temporary file in the same directory, fsync, rename, fsync of the directory)."""
    from webservice.state.yamlio import write_atomically

    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)  # never writable by others, whatever the umask
    payload = json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")
    write_atomically(path, payload, 0o644)


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
    skipped: list[str] = []
    try:
        normalized = _normalize(_parse_yaml(fetch(), CLUSTER_SOURCE), CLUSTER_SOURCE, skipped)
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
    return _catalogue(_types_from_normalized(normalized), "cluster", now, _skipped_warning(CLUSTER_SOURCE, skipped))


def cached_type_names(cache_dir: str | os.PathLike) -> list[str]:
    """Type names for shell completion, from the cache or the built-in list; never fails
    and never touches the network."""
    try:
        return load_catalogue(cache_dir).names()
    except Exception:  # noqa: BLE001 (completion must never break the shell)
        return [BUILDSERVICE]
