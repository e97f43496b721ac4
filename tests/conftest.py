"""Shared pytest configuration: the Kubernetes API stand-in's fixtures are a plugin.

pytest may be started with SIGINT ignored (a shell's background job: ``pytest &``). The
tests that interrupt webservice (in this process or in children, which inherit an ignored
signal across exec) need Ctrl-C to behave as in a terminal, so its default handler is put
back before any test runs.

kubectl: Debian bookworm does not package it, so a fresh machine has none. The tests that
run the real kubectl (the ``kubectl`` fixture, or marked ``@pytest.mark.kubectl``) are
skipped with that reason when it is absent (``$STANDIN_KUBECTL``, else ``kubectl`` on
``$PATH``, else ``/usr/bin/kubectl``); tests that fake kubectl do not need it.
"""

import os
import shutil
import signal

import pytest

pytest_plugins = ["tests.standin.fixtures"]

NO_KUBECTL = ("needs kubectl, which is not installed (Debian bookworm does not package it: see "
              "https://kubernetes.io/docs/tasks/tools/ ; or set STANDIN_KUBECTL to one)")


def have_kubectl() -> bool:
    from tests.standin.fixtures import KUBECTL

    return os.path.isfile(KUBECTL) and os.access(KUBECTL, os.X_OK) or bool(shutil.which("kubectl"))


def pytest_collection_modifyitems(config, items):
    if have_kubectl():
        return
    skip = pytest.mark.skip(reason=NO_KUBECTL)
    for item in items:
        if item.get_closest_marker("kubectl") or "kubectl" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line("markers", "kubectl: runs the real kubectl (skipped when it is not installed)")
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
