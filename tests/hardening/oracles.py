"""What each bad-input property expects of one generated input: ``ACCEPT``, ``REFUSE`` or
``EITHER``, decided from the published rules (REFERENCE, Kubernetes' syntax), written here
independently of the code under test, so that a dropped or loosened validation fails.

``EITHER`` is said only where no simple rule decides (for example a quantity so large or
precise that only the exact arithmetic knows); every verdict that is decided is checked.
"""

from __future__ import annotations

import re
from decimal import Decimal

ACCEPT, REFUSE, EITHER = "accept", "refuse", "either"

_ASCII_PRINTABLE = {chr(c) for c in range(0x21, 0x7F)}


def replicas(text: str) -> str:
    """1 to 16 pods, ASCII digits (surrounding spaces are tolerated)."""
    stripped = text.strip()
    if stripped and all("0" <= c <= "9" for c in stripped) and len(stripped) <= 6:
        return ACCEPT if 1 <= int(stripped) <= 16 else REFUSE
    return REFUSE


def health_check_path(text: str) -> str:
    """A URL path: '/' then at most 1023 printable ASCII characters, no spaces or controls."""
    if text.startswith("/") and len(text) <= 1024 and set(text) <= _ASCII_PRINTABLE:
        return ACCEPT
    return REFUSE


def mount(text: str) -> str:
    """--mount is 'all' or 'none' (for buildservice both start), exactly."""
    return ACCEPT if text in ("all", "none") else REFUSE


def tool_name(text: str) -> str:
    """A DNS label of at most 58 characters (so that tool-<name> is one too); the command
    strips surrounding white space. Empty means 'not given': the Unix user decides, and in
    the tests the user is never a tool account."""
    name = text.strip()
    if re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,56}[a-z0-9])?", name, flags=re.ASCII) and name.isascii():
        return ACCEPT
    return REFUSE


_SIMPLE_IMAGE = re.compile(r"[a-z0-9]{1,20}(/[a-z0-9]{1,20}){0,3}(:[a-z0-9]{1,20})?\Z")


def buildservice_image(text: str) -> str:
    """Image references: simple lowercase paths with an optional tag must start; upper case,
    white space, control or non-ASCII characters or '..' never. An empty value means the
    default image (tool-<tool>/tool-<tool>:latest), as when the option is not given."""
    if _SIMPLE_IMAGE.match(text) or text == "":
        return ACCEPT
    if not text.isascii() or any(c.isspace() or c.isupper() or ord(c) < 0x20 for c in text) \
            or ".." in text or text.startswith(("/", ":", "-", ".")):
        return REFUSE
    return EITHER


_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_SUFFIXES = {"": 1, "m": Decimal("0.001"), "k": 1000, "M": 10**6, "G": 10**9,
             "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _simple_quantity(text: str) -> Decimal | None:
    """The value of a short quantity in a common form (number and one common suffix), else None."""
    match = re.fullmatch(r"([+-]?(?:[0-9]{1,6}(?:\.[0-9]{0,6})?|\.[0-9]{1,6}))(m|k|M|G|Ki|Mi|Gi)?", text.strip())
    if not match:
        return None
    return Decimal(match.group(1)) * Decimal(_SUFFIXES[match.group(2) or ""])


def _not_a_quantity(text: str) -> bool:
    """Certainly no Kubernetes quantity: no number at its start, or a letter that no suffix has."""
    stripped = text.strip()
    number = _NUMBER.match(stripped)
    if number is None:
        return True
    rest = stripped[number.end():]
    return bool(rest) and not re.fullmatch(r"Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+", rest)


def cpu(text: str) -> str:
    """More than 0, in steps of 1m."""
    if _not_a_quantity(text):
        return REFUSE
    value = _simple_quantity(text)
    if value is None:
        return EITHER
    if value <= 0 or value * 1000 != (value * 1000).to_integral_value():
        return REFUSE
    return ACCEPT


def mem(text: str) -> str:
    """A whole number of bytes, at least 1Mi (less is a forgotten unit)."""
    if _not_a_quantity(text):
        return REFUSE
    value = _simple_quantity(text)
    if value is None:
        return EITHER
    if value < 2**20 or value != value.to_integral_value():
        return REFUSE
    return ACCEPT


def yaml_mapping_file(data: bytes, load) -> str:
    """service.template and config files: text that is not YAML, or YAML that is not a
    mapping, is refused. ``load`` is a reference YAML loader (PyYAML's safe loader)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return REFUSE
    try:
        document = load(text)
    except Exception:  # noqa: BLE001 - any failure of the reference parser: not valid YAML
        return REFUSE
    if document is not None and not isinstance(document, dict):
        return REFUSE
    return EITHER



def extra_args(args: list[str], generic: bool) -> str:
    """Arguments after '--': passed on word for word; an exec argument cannot hold a NUL byte,
    and the documented limits are 256 arguments of 4096 characters. A generic type (jdk17,
    golang...) has no server of its own: it needs a command."""
    if any("\x00" in a or len(a) > 4096 for a in args) or len(args) > 256:
        return REFUSE
    if generic and not args:
        return REFUSE
    return ACCEPT
