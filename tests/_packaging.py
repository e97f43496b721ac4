"""pytest plugin for the Debian package build (``-p tests._packaging`` in debian/rules).

Debian has no ``kubernetes-validate``, whose strict schemas the Kubernetes API stand-in
(``tests/standin``) validates every written object against. Without it the stand-in
cannot start, so every test using one of its fixtures, starting one itself, or from a
module that uses its schema validation or server directly, is skipped here, with the reason in the build log
(``-ra``). They still run against the installed package with bookworm's
libraries in ``.ci/bookworm``, which adds kubernetes-validate from PyPI.

Only loaded by the package build; a normal ``pytest`` run does not see this file.
"""

from __future__ import annotations

import importlib.util

import pytest

REASON = "the API stand-in needs kubernetes-validate, which Debian does not package"


def _uses_standin(item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    for definitions in getattr(info, "name2fixturedefs", {}).values():
        for definition in definitions:
            module = getattr(getattr(definition, "func", None), "__module__", "") or ""
            if module.startswith("tests.standin"):
                return True
    return False


def _module_uses_schemas(item) -> bool:
    """The test's module uses the stand-in's schema validation or server directly."""
    import sys

    module = getattr(item, "module", None)
    validation = sys.modules.get("tests.standin.validation")
    package = sys.modules.get("tests.standin")
    server = getattr(package, "StandIn", None) if package is not None else None
    return module is not None and any(
        value is not None and (value is validation or value is server)
        for value in vars(module).values()
    )


def _function_starts_standin(item) -> bool:
    """The test function itself imports and starts ``StandIn``."""
    code = getattr(getattr(item, "function", None), "__code__", None)
    return code is not None and "StandIn" in code.co_names


def pytest_collection_modifyitems(config, items):
    if importlib.util.find_spec("kubernetes_validate") is not None:
        return
    skip = pytest.mark.skip(reason=REASON)
    for item in items:
        if _uses_standin(item) or _module_uses_schemas(item) or _function_starts_standin(item):
            item.add_marker(skip)
