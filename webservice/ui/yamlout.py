"""Block-style YAML for plain data (what ``--dry-run`` prints), without importing PyYAML.

``--dry-run`` is on the fast path, and importing PyYAML costs as much as the rest of the
command. The objects it prints are plain data: dicts with string keys, lists, strings,
integers, booleans and None. This emitter writes them the way ``yaml.safe_dump(...,
sort_keys=False)`` lays them out; a string is written plain only when it cannot be read
back as anything else, and otherwise double-quoted with YAML escapes. Anything else (floats, other types) is refused with
``TypeError``. Reading: the tests check ``yaml.safe_load(dump_all(docs)) == docs``.
"""

from __future__ import annotations

import re

# conservative: starts with a letter, '_' or '/', then letters, digits and _ . / - only
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*")
# words that YAML 1.1 resolvers read as booleans or null, in any case
_SPECIAL = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}


def _scalar(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and value.lower() not in _SPECIAL:
            return value
        return _quoted(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML here")


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar: printable ASCII as is, everything else escaped."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _lines(value, indent: str) -> list[str]:
    """The lines of a mapping or sequence at ``indent`` (non-empty containers only)."""
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("mapping keys must be strings")
            head = f"{indent}{_scalar(key)}:"
            if isinstance(item, dict) and item:
                out.append(head)
                out.extend(_lines(item, indent + "  "))
            elif isinstance(item, list) and item:
                out.append(head)
                out.extend(_lines(item, indent))  # block sequences sit at the key's indent
            else:
                out.append(f"{head} {_inline(item)}")
    else:
        for item in value:
            if isinstance(item, (dict, list)) and item:
                inner = _lines(item, indent + "  ")
                out.append(f"{indent}- {inner[0][len(indent) + 2:]}")
                out.extend(inner[1:])
            else:
                out.append(f"{indent}- {_inline(item)}")
    return out


def _inline(value) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def dump(document) -> str:
    if isinstance(document, (dict, list)) and document:
        return "\n".join(_lines(document, "")) + "\n"
    return _inline(document) + "\n"


def dump_all(documents) -> str:
    """Documents separated by ``---``, like ``yaml.safe_dump_all``."""
    return "---\n".join(dump(document) for document in documents)
