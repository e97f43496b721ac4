"""Shared pytest configuration: the Kubernetes API stand-in's fixtures are a plugin.

pytest may be started with SIGINT ignored (a shell's background job: ``pytest &``). The
tests that interrupt webservice (in this process or in children, which inherit an ignored
signal across exec) need Ctrl-C to behave as in a terminal, so its default handler is put
back before any test runs.
"""

import signal

pytest_plugins = ["tests.standin.fixtures"]


def pytest_configure(config):
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
