"""The runner types: name -> function preparing a ``Launch`` from a ``Context``.

The names are those of the Deployment's ``--type`` argument (REFERENCE section 3):
the catalogue's ``wstype`` kinds ``python``, ``js``, ``lighttpd``, ``lighttpd-plain``
and ``generic`` map to ``uwsgi-python``, ``nodejs``, ``lighttpd``, ``lighttpd-plain``
and ``generic``; ``js`` and ``python`` are accepted as aliases, and ``uwsgi-plain``
serves ``~/uwsgi.ini``.
"""

from __future__ import annotations

from webservice.runner import generic, lighttpd, nodejs, uwsgi

TYPES = {
    "lighttpd": lighttpd.prepare,
    "lighttpd-plain": lighttpd.prepare,
    "uwsgi-python": uwsgi.prepare_python,
    "uwsgi-plain": uwsgi.prepare_plain,
    "nodejs": nodejs.prepare,
    "generic": generic.prepare,
}

ALIASES = {"js": "nodejs", "python": "uwsgi-python"}


def canonical(name: str) -> str | None:
    name = ALIASES.get(name, name)
    return name if name in TYPES else None
