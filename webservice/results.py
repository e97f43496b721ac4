"""What commands return: plain dataclasses, drawn by ``webservice.output``.

A core function never prints its outcome; it returns one of these. Each result knows
its exit code; ``output`` draws it for people (text, tables) or scripts (``--json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RenderResult:
    """``--dry-run``: the objects start/restart would apply, in order."""

    objects: list[dict]
    spec_summary: dict = field(default_factory=dict)
    exit_code: int = 0
