"""One safe YAML reader and one atomic writer, for every file webservice reads or keeps.

:func:`parse_yaml` turns bytes into a value with a loader that refuses Python tags (it is
a ``SafeLoader``), duplicate mapping keys, files over a size cap, deep nesting, alias bombs
and more than one document; every problem is a one-line reason for the caller to put in
its own error (it raises nothing itself). :func:`read_capped` reads a regular file of
bounded size without blocking on a FIFO. :func:`write_atomically` replaces a file so that
a crash, a full disk or Ctrl-C never leaves it truncated: a temporary file in the same
directory, fsync, rename, then fsync of the directory.

It does not know what the files mean (``webservice.state.template``,
``webservice.state.manifest``, ``webservice.model.catalogue`` and ``webservice.model.config`` do), and
imports ``yaml`` only when something has to be parsed.
"""

from __future__ import annotations

import errno
import functools
import os
import stat

from webservice.state.yamlbounds import check_bounds

MAX_FILE_BYTES = 64 * 1024
MAX_ALIASES = 100
MAX_DEPTH = 32
MAX_NODES = 10_000


def oneline(text: object, limit: int = 200) -> str:
    """Make ``text`` safe for a one-line message: escape control characters, truncate."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return out if len(out) <= limit else out[: limit - 3] + "..."


@functools.lru_cache(maxsize=None)
def strict_loader():
    """A SafeLoader that refuses duplicate mapping keys instead of keeping the last one.

    Built on first use, so that importing this module does not import yaml."""
    import yaml

    class DuplicateKey(yaml.constructor.ConstructorError):
        def __init__(self, key: object, mark):
            super().__init__(None, None, f"duplicate key {oneline(repr(key), 60)}", mark)
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


def read_capped(path: str, *, follow_symlinks: bool, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Read a regular file, at most ``max_bytes + 1`` bytes (never blocks on a FIFO)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def parse_yaml(raw: bytes | str, *, max_bytes: int = MAX_FILE_BYTES, max_nodes: int = MAX_NODES,
               duplicates_ok: bool = False) -> tuple[object, str | None]:
    """Parse ``raw``; return (value, None) or (None, one-line reason).

    ``duplicates_ok``: a repeated mapping key keeps the last value instead of being an
    error (for the cluster's catalogue, where one odd line must not discard the rest)."""
    if isinstance(raw, str):
        text = raw
        if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
            return None, f"file is larger than {max_bytes // 1024} KiB"
    else:
        if len(raw) > max_bytes:
            return None, f"file is larger than {max_bytes // 1024} KiB"
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return None, f"not valid UTF-8 text (byte offset {exc.start})"
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if duplicates_ok else strict_loader()
    try:
        # a first, iterative pass bounds what the recursive composer can be made to do
        try:
            check_bounds(text, loader, max_depth=MAX_DEPTH, max_aliases=MAX_ALIASES, max_nodes=max_nodes)
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
        return None, f"invalid YAML{where}: {oneline(problem)}"
    except yaml.reader.ReaderError as exc:
        return None, f"character {exc.character!r} at position {exc.position} is not allowed in YAML"
    except yaml.YAMLError as exc:
        return None, f"invalid YAML: {oneline(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}"
    except (ValueError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
        # e.g. PyYAML raises ValueError for an impossible date such as 2024-13-45, and
        # bookworm's PyYAML 6.0 AttributeError for one with an explicit !!timestamp tag.
        return None, f"invalid YAML value: {oneline(exc)}"


def directory_of(path: str) -> str:
    return os.path.dirname(path) or "."


def fsync_dir(directory: str) -> None:
    """fsync a directory, so that a rename in it survives a crash (best effort)."""
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


def write_atomically(path: str, data: str | bytes, mode: int = 0o644, *, prefix: str | None = None,
                     suffix: str = ".tmp") -> None:
    """Replace ``path`` with ``data``: temporary file in the same directory (``prefix``,
    default ``.<name>.``), fsync, rename over ``path``, fsync of the directory. On any
    failure the old file is left as it was and the temporary file is removed."""
    import tempfile  # here, not at the top: keep --help and --dry-run imports small

    directory = directory_of(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=prefix or f".{os.path.basename(path)}.", suffix=suffix, dir=directory)
    try:
        os.fchmod(fd, mode)
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd != -1:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)
