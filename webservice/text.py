"""Small text and time helpers every message uses: one line, bounded length, RFC 3339 times.

Pure functions, no imports beyond the standard library.
"""

from __future__ import annotations

import calendar
import re
import time


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


def shorten(text: object, limit: int = 300) -> str:
    """:func:`one_line`, cut to ``limit`` characters with ``...`` when longer."""
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def quoted(value: object, limit: int = 80) -> str:
    """A user's value for a message: ``repr`` of its first ``limit`` characters."""
    return repr(str(value)[:limit])


_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?")


def parse_time(text: str | None) -> float | None:
    """RFC 3339 (``2026-11-26T22:18:04Z``, with or without fraction) to epoch seconds;
    None for anything else."""
    if not text or not isinstance(text, str):
        return None
    match = _RFC3339.match(text)
    if not match:
        return None
    parts = [int(p) for p in match.groups()[:6]]
    fraction = float(match.group(7)) if match.group(7) else 0.0
    try:
        return calendar.timegm((*parts, 0, 0, 0)) + fraction
    except (OverflowError, ValueError):
        return None


def format_time(epoch: float) -> str:
    """Epoch seconds to RFC 3339 in whole seconds, UTC (``2026-11-26T22:18:04Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
