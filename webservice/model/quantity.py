"""Kubernetes resource quantities: parse, compare and format them, and derive requests.

Implements the full quantity syntax of the Kubernetes API (``0.5``, ``500m``, ``1.5Gi``,
``2G``, ``1e3``, ...) with exact decimal arithmetic, and the Toolforge rule that turns a
limit into a request (REFERENCE section 5). Pure functions; no I/O; stdlib only.
It does not know namespace quotas; the preflight compares against them with these
helpers.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext

from webservice.errors import InputError
from webservice.text import shorten

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}
_QUANTITY = re.compile(
    r"(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)

MEMORY_EXAMPLES = "e.g. 512Mi, 1.5Gi, 2G"
CPU_EXAMPLES = "e.g. 0.5, 500m, 1"
# Quantities beyond this are certainly typos; they would only be refused by the cluster.
_MAX = Decimal(2**63)
# Enough digits for any accepted text (64 characters, exponent within +-30, times 2**60)
# to be computed exactly: the default 28 would silently round 1.0000...01Gi to 1Gi.
_PRECISION = 200


def parse(text: object, what: str = "quantity", examples: str | None = None) -> Decimal:
    """Parse a quantity into a Decimal (cores for cpu, bytes for memory).

    ``what`` names the value in error messages (``--mem``, ``cpu in service.template``);
    ``examples`` the hint for a value that is not a quantity at all (cpu and memory differ).
    """
    if isinstance(text, bool) or text is None:
        raise InputError(f"{what}: {text!r} is not a quantity")
    if isinstance(text, (int, float)):
        text = repr(text) if isinstance(text, float) else str(text)
    if not isinstance(text, str):
        raise InputError(f"{what}: {shorten(repr(text), 40)} is not a quantity")
    candidate = text.strip()
    match = _QUANTITY.fullmatch(candidate) if len(candidate) <= 64 else None
    if not match:
        raise InputError(
            f"{what}: {shorten(text, 40)!r} is not a Kubernetes quantity",
            hint=examples or "write a number with an optional suffix, "
            "such as 0.5, 500m, 512Mi, 1.5Gi or 2G",
        )
    try:
        number = Decimal(match["num"])
    except InvalidOperation:  # pragma: no cover - the regex admits only valid numbers
        raise InputError(f"{what}: {shorten(text, 40)!r} is not a number") from None
    suffix = match["suffix"] or ""
    with localcontext() as context:
        context.prec = _PRECISION
        if suffix in _BINARY:
            value = number * _BINARY[suffix]
        elif suffix in _DECIMAL:
            value = number * _DECIMAL[suffix]
        else:
            exponent = int(suffix[1:])
            if abs(exponent) > 30:
                raise InputError(f"{what}: {shorten(text, 40)!r} is out of range")
            value = number.scaleb(exponent)
    if abs(value) >= _MAX:
        raise InputError(f"{what}: {shorten(text, 40)!r} is out of range")
    return value


def parse_cpu(text: object, what: str = "--cpu") -> Decimal:
    """Parse a positive cpu quantity (in cores), with at most millicore precision."""
    value = parse(text, what, "write a number of cores, " + CPU_EXAMPLES)
    if value <= 0:
        raise InputError(f"{what}: must be more than 0, got {shorten(text, 40)!r}", hint=CPU_EXAMPLES)
    with localcontext() as context:
        context.prec = _PRECISION
        finer = value * 1000 != (value * 1000).to_integral_value()
    if finer:
        raise InputError(
            f"{what}: {shorten(text, 40)!r} is finer than one millicore (1m)", hint=CPU_EXAMPLES
        )
    return value


def parse_memory(text: object, what: str = "--mem") -> Decimal:
    """Parse a positive memory quantity (in bytes), a whole number of bytes."""
    value = parse(text, what, "write a size with a suffix, " + MEMORY_EXAMPLES)
    if value <= 0:
        raise InputError(
            f"{what}: must be more than 0, got {shorten(text, 40)!r}", hint=MEMORY_EXAMPLES
        )
    if value != value.to_integral_value():
        raise InputError(
            f"{what}: {shorten(text, 40)!r} is not a whole number of bytes", hint=MEMORY_EXAMPLES
        )
    if value < 2**20:
        raise InputError(
            f"{what}: {shorten(text, 40)!r} is less than 1Mi; did you forget the unit?",
            hint=MEMORY_EXAMPLES,
        )
    return value


def format_cpu(cores: Decimal) -> str:
    """Canonical cpu text: whole cores as ``1``, anything else in millicores (``500m``)."""
    if cores == cores.to_integral_value():
        return str(int(cores))
    return f"{int(cores * 1000)}m"


def format_memory(size: Decimal) -> str:
    """Canonical memory text: the exact suffix giving the smallest number, binary on a tie.

    ``1.5Gi`` is ``1536Mi``, ``2G`` stays ``2G`` (not ``1953125Ki``, although that is
    exact too), an odd byte count is plain bytes.
    """
    size = int(size)
    if size == 0:
        return "0"
    best = str(size)
    best_count = abs(size)
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki", "E", "P", "T", "G", "M", "k"):
        unit = _BINARY[suffix] if suffix in _BINARY else int(_DECIMAL[suffix])
        if size % unit == 0 and abs(size) // unit < best_count:
            best, best_count = f"{size // unit}{suffix}", abs(size) // unit
    return best


CPU_REQUEST_THRESHOLD = Decimal("0.25")
MEMORY_REQUEST_THRESHOLD = Decimal(256 * 2**20)


def cpu_request_for(limit: Decimal) -> Decimal:
    """The request for a cpu limit: half of it, or all of it below 250m (REFERENCE 5).

    The half is rounded up to a whole millicore so that it is always a valid quantity.
    """
    if limit < CPU_REQUEST_THRESHOLD:
        return limit
    half = (limit * 1000 / 2).to_integral_value(rounding="ROUND_CEILING") / 1000
    return half


def memory_request_for(limit: Decimal) -> Decimal:
    """The request for a memory limit: half of it, or all of it below 256Mi (REFERENCE 5)."""
    if limit < MEMORY_REQUEST_THRESHOLD:
        return limit
    return (limit / 2).to_integral_value(rounding="ROUND_CEILING")
