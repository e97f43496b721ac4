"""Kubernetes resource quantities (``500m``, ``1.5Gi``, ``2``, ``1e3``) for the stand-in."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
QUANTITY_MESSAGE = ("quantities must match the regular expression "
                    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
_SUFFIX = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2 ** 10), "Mi": Decimal(2 ** 20), "Gi": Decimal(2 ** 30), "Ti": Decimal(2 ** 40),
    "Pi": Decimal(2 ** 50), "Ei": Decimal(2 ** 60),
}


def parse(value) -> Decimal:
    """Parse a quantity; raises ValueError with the real server's message."""
    if isinstance(value, bool):
        raise ValueError(QUANTITY_MESSAGE)
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    text = str(value).strip()
    m = QUANTITY_RE.match(text)
    if not m:
        raise ValueError(QUANTITY_MESSAGE)
    number, suffix = m.groups()
    try:
        base = Decimal(number)
    except InvalidOperation:
        raise ValueError(QUANTITY_MESSAGE) from None
    if suffix in _SUFFIX:
        return base * _SUFFIX[suffix]
    em = re.fullmatch(r"[eE]([-+]?[0-9]+)", suffix)
    if em:
        return base * (Decimal(10) ** int(em.group(1)))
    raise ValueError("unable to parse quantity's suffix")


def fmt_cpu(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return f"{int(value * 1000)}m"


def fmt_memory(value: Decimal) -> str:
    v = int(value)
    for suffix, mult in (("Gi", 2 ** 30), ("Mi", 2 ** 20), ("Ki", 2 ** 10)):
        if v and v % mult == 0:
            return f"{v // mult}{suffix}"
    return str(v)


def fmt(resource: str, value: Decimal) -> str:
    if "cpu" in resource:
        return fmt_cpu(value)
    if "memory" in resource or "storage" in resource:
        return fmt_memory(value)
    return str(int(value)) if value == value.to_integral_value() else str(value)
