"""Where webservice keeps the user's files: the config and cache directories (XDG).

Standard library only and no dataclasses, so that ``--help`` and completion (which read
the cached type catalogue) can find the cache without importing the config layering.
This module only computes paths; it creates and reads nothing.
"""

from __future__ import annotations

import os
import sys

_XDG = {"config": ("XDG_CONFIG_HOME", ".config"), "cache": ("XDG_CACHE_HOME", ".cache")}


def user_dir(kind: str, app: str) -> str:
    """The user's ``kind`` ("config" or "cache") directory for ``app``, as platformdirs finds it.

    On Linux this is the XDG rule itself, computed here: ``$XDG_CONFIG_HOME`` (or
    ``$XDG_CACHE_HOME``) when it is an absolute path (the XDG spec says to ignore a relative
    one), else ``~/.config`` (``~/.cache``). Importing platformdirs costs about 10 ms (it
    pulls in ``tempfile`` and ``platform``), a sixth of what ``--help`` may spend beyond
    click; ``test_dirs`` checks that both agree. Elsewhere platformdirs decides."""
    variable, default = _XDG[kind]
    if sys.platform.startswith("linux"):
        base = os.environ.get(variable, "")  # the process's, as platformdirs reads it
        if not os.path.isabs(base):
            base = os.path.join(os.path.expanduser("~"), default)
        return os.path.join(base, app)
    import platformdirs

    return getattr(platformdirs, f"user_{kind}_dir")(app)


def cache_dir() -> str:
    """webservice's cache directory (the type catalogue): ``~/.cache/webservice``."""
    return user_dir("cache", "webservice")
