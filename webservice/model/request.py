"""What the user asked for: the parsed command line as one plain dataclass.

The CLI fills a ``Request``; the core functions (render, lifecycle, logs, shell) read it.
Values the user did not give are ``None`` so that the spec can apply its precedence
(command line > service.template > service.manifest > defaults).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Request:
    """One command line, parsed: the action, the type, and every option (None: not given)."""

    action: str
    type: str | None = None
    extra_args: tuple[str, ...] | None = None  # None: no "--" on the command line
    tool: str | None = None
    backend: str | None = None
    template: str | None = None
    mem: str | None = None
    cpu: str | None = None
    replicas: int | None = None
    buildservice_image: str | None = None
    health_check_path: str | None = None
    mount: str | None = None
    routing: str | None = None
    dry_run: bool = False
    json: bool = False
    debug: bool = False
    wait: bool = True
    timeout: int | None = None
    follow: bool = False
    last: int | None = None
    since: str | None = None
    previous: bool = False
    warnings: list[str] = field(default_factory=list)

    def spec_values(self) -> dict:
        """The command-line layer of the spec (snake_case keys, None when not given)."""
        return {
            "type": self.type,
            "backend": self.backend,
            "cpu": self.cpu,
            "mem": self.mem,
            "replicas": self.replicas,
            "buildservice_image": self.buildservice_image,
            "extra_args": list(self.extra_args) if self.extra_args is not None else None,
            "health_check_path": self.health_check_path,
            "mount": self.mount,
        }
