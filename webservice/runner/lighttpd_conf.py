"""What a tool's ``~/.lighttpd.conf`` sets, read without running lighttpd.

lighttpd refuses a configuration that sets a key twice with ``=`` in the same block
("Duplicate config variable") or that gives an array the same key twice, also through
``+=`` ("Duplicate array-key"; a ``+=`` inside a conditional extends the global value).
The runner's generated configuration comes first and the tool's file is appended, so the
runner must leave out whatever the tool's file sets itself: ``scan`` finds

* the keys the file assigns with ``=`` (or ``:=``) outside any conditional block, and
* the array keys (``"" =>``, ``".pl" =>``) the file adds to a key with ``+=``, anywhere.

This is a tolerant tokenizer, not a parser: strings, comments, braces and parentheses are
followed, everything else is skipped. A file lighttpd cannot parse is lighttpd's to
report (see ``lighttpd.explain_refusal``); ``scan`` never raises on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"""
      (?P<nl>\n)
    | (?P<space>[ \t\r]+)
    | (?P<comment>\#[^\n]*)
    | (?P<string>"(?:[^"\\\n]|\\.)*"?)
    | (?P<op>\+=|:=|=>|==|!=|=~|!~|=)
    | (?P<punct>[(){}\[\],+])
    | (?P<word>[^\s"#(){}\[\],+=!:~]+|[!:~])
    """,
    re.VERBOSE,
)


@dataclass
class Settings:
    """What a lighttpd configuration file sets (see the module docstring)."""

    assigned: dict[str, int] = field(default_factory=dict)  # key -> line of its global "="
    extended: dict[str, set[str]] = field(default_factory=dict)  # key -> array keys added with "+="
    lines: dict[str, int] = field(default_factory=dict)  # key -> first line that sets it at all

    def sets(self, key: str) -> bool:
        return key in self.assigned


def _tokens(text: str):
    line = 1
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "nl":
            line += 1
        elif kind not in ("space", "comment"):
            yield kind, m.group(), line


def _unquote(token: str) -> str:
    body = token[1:-1] if len(token) >= 2 and token.endswith('"') else token[1:]
    return re.sub(r"\\(.)", r"\1", body)


def scan(text: str) -> Settings:
    settings = Settings()
    tokens = list(_tokens(text))
    braces = 0
    i = 0
    while i < len(tokens):
        kind, value, line = tokens[i]
        if kind == "punct" and value == "{":
            braces += 1
        elif kind == "punct" and value == "}":
            braces = max(0, braces - 1)
        elif kind == "word" and i + 1 < len(tokens) and tokens[i + 1][0] == "op" and tokens[i + 1][1] in ("=", "+=", ":="):
            op = tokens[i + 1][1]
            settings.lines.setdefault(value, line)
            if op in ("=", ":=") and braces == 0:
                settings.assigned.setdefault(value, line)
            i += 2
            if op == "+=" and i < len(tokens) and tokens[i][1] == "(":
                keys, i = _array_keys(tokens, i)
                settings.extended.setdefault(value, set()).update(keys)
            continue
        i += 1
    return settings


def _array_keys(tokens: list, i: int) -> tuple[set[str], int]:
    """The string keys (``"k" =>``) at the top level of the array opening at ``tokens[i]``."""
    keys = set()
    depth = 0
    while i < len(tokens):
        kind, value, _ = tokens[i]
        if value in ("(", "["):
            depth += 1
        elif value in (")", "]"):
            depth -= 1
            if depth == 0:
                return keys, i + 1
        elif kind == "string" and depth == 1 and tokens[i + 1 :][:1] and tokens[i + 1][1] == "=>" and tokens[i - 1][1] != "+":
            # (a key built with "+" is not followed: lighttpd would name it if it collides)
            keys.add(_unquote(value))
        i += 1
    return keys, i
