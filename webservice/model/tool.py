"""Who is the tool: the Toolforge tool account this command acts for.

On a bastion, after ``become <tool>``, the Unix user is ``<project>.<tool>`` (project from
``/etc/wmcs-project``, default ``tools``) and its home is the tool's home. Elsewhere (other
clusters, tests) ``--tool NAME`` or ``WEBSERVICE_TOOL=NAME`` names the tool and ``$HOME``
is its home. This module only works that out; it never talks to a cluster.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from webservice.errors import InputError, NotAToolError

PROJECT_FILE = "/etc/wmcs-project"
DEFAULT_PROJECT = "tools"
# A tool name is a DNS label (RFC 1123), and "tool-<name>" must also be one.
TOOL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,56}[a-z0-9])?$")


@dataclass(frozen=True)
class Tool:
    """The tool a command acts for: its name, project, home and how it was found."""

    name: str
    project: str
    home: str
    source: str  # "unix-user" or "override"
    # the tool account's uid and gid (pods run as them), None when there is no such account
    # on this machine (tests, other clusters: the site config may say, see config.run_as_uid)
    uid: int | None = None
    gid: int | None = None

    @property
    def namespace(self) -> str:
        return f"tool-{self.name}"

    @property
    def user(self) -> str:
        return f"{self.project}.{self.name}"


def read_project(path: str = PROJECT_FILE) -> str:
    """The WMCS project name from /etc/wmcs-project, or ``tools``."""
    try:
        with open(path, encoding="utf-8") as handle:
            project = handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return DEFAULT_PROJECT
    return project if re.fullmatch(r"[a-z0-9][-a-z0-9]*", project or "") else DEFAULT_PROJECT


def validate_tool_name(name: str, what: str = "tool name") -> str:
    if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
        shown = repr(name[:60] + ("..." if len(name) > 60 else "")) if isinstance(name, str) else type(name).__name__
        raise InputError(
            f"{what} {shown} is not valid: use lowercase letters, digits and '-' "
            "(a DNS label of at most 58 characters)"
        )
    return name


def _current_user() -> tuple[str, str]:
    import pwd

    entry = pwd.getpwuid(os.getuid())
    return entry.pw_name, entry.pw_dir


def account_ids(user: str) -> tuple[int | None, int | None]:
    """The uid and gid of the Unix account ``user`` (``tools.mytool``), or (None, None)."""
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except (KeyError, OSError):
        return None, None
    return entry.pw_uid, entry.pw_gid


def identify(
    override: str | None,
    *,
    project: str | None = None,
    environ: os._Environ | dict | None = None,
    user: tuple[str, str] | None = None,
) -> Tool:
    """Find the tool from an override (``--tool``/``WEBSERVICE_TOOL``) or the Unix user."""
    environ = os.environ if environ is None else environ
    project = project or read_project(environ.get("WEBSERVICE_PROJECT_FILE", PROJECT_FILE))
    if override:
        name = validate_tool_name(override.strip(), "--tool/WEBSERVICE_TOOL")
        home = environ.get("HOME") or (user or _current_user())[1]
        uid, gid = account_ids(f"{project}.{name}")
        return Tool(name=name, project=project, home=home, source="override", uid=uid, gid=gid)
    username, home = user or _current_user()
    prefix = f"{project}."
    if username.startswith(prefix) and TOOL_NAME.fullmatch(username[len(prefix):]):
        uid, gid = (os.getuid(), os.getgid()) if user is None else account_ids(username)
        return Tool(name=username[len(prefix):], project=project, home=home, source="unix-user", uid=uid, gid=gid)
    raise NotAToolError(
        f"you are {username!r}, not a tool account ({prefix}<tool>)",
        hint="run 'become <tool>' first (or pass --tool NAME / set WEBSERVICE_TOOL)",
    )
