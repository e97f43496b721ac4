"""The platform's fixed names, in one place: port, container, labels, selector, program name.

Whether an object is ours (and who else owns it) is :mod:`webservice.health.owners`.

These are the conventions every part shares (REFERENCE section 2): the builders write them,
the status and diagnosis read them, the cluster client guards deletions with them, the
webhook and the runner agree with them. Pure constants and tiny functions; no I/O except
reading ``TOOLFORGE_CLI`` from the environment for the program name.
"""

from __future__ import annotations

import os

PORT = 8000  # the port every webservice listens on (the runner's, the Service's, the probes')
CONTAINER = "webservice"  # the container name in the Deployment's pods
MANAGER = "webservice"  # the managed-by label value, the field manager, the user agent
COMPONENT = "app.kubernetes.io/component"
MANAGED_BY = "app.kubernetes.io/managed-by"
WEB_COMPONENT = "web"
SHELL_COMPONENT = "webservice-interactive"
STARTED_AT = "toolforge.org/started-at"
MOUNT_LABEL = "toolforge.org/mount-storage"
PATH_PREFIX_ENV = "WEBSERVICE_PATH_PREFIX"
RUNNER = "/usr/bin/webservice-runner"

GRID_RETIRED = "the grid engine backend is retired: webservices run on Kubernetes only"
GRID_HINT = "drop '--backend gridengine'"


def labels(tool: str) -> dict:
    """The four labels every object of the webservice carries."""
    return {
        "toolforge": "tool",
        "name": tool,
        COMPONENT: WEB_COMPONENT,
        MANAGED_BY: MANAGER,
    }


def selector() -> str:
    """The label selector that finds "the webservice" (REFERENCE: the last two labels)."""
    return f"{COMPONENT}={WEB_COMPONENT},{MANAGED_BY}={MANAGER}"


def program_name() -> str:
    """How the user called us: ``toolforge webservice`` (the toolforge CLI sets
    ``TOOLFORGE_CLI``) or ``webservice``; used in every hint that names a command."""
    return "toolforge webservice" if os.environ.get("TOOLFORGE_CLI") else "webservice"
