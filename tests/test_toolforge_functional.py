"""Toolforge's own functional tests of the webservice command, mirrored against the stand-in.

Toolforge's deploy repository runs bats tests (``functional-tests/tools/webservice/
webservice-smoke-test.bats`` and ``service-template.bats``) as a tool account against the
real cluster. Each test below repeats one of their checks, with bats' semantics: ``run``
merges stdout and stderr into ``$output``; ``assert_line X`` wants a line equal to X,
``assert_line --partial X`` a line containing X; ``assert_success`` exit 0. The one check
that needs a real external URL (``curl https://<tool>.toolforge.org/healthz``) and the
two that grep lighttpd's own log text (the stand-in runs no lighttpd) are left out.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

OUR_TRACEBACK = re.compile(r'File "[^"]*/(webservice|urllib3|kubernetes|click|yaml)/')


class Bats:
    """``run toolforge webservice ARGS`` as bats sees it."""

    def __init__(self, env):
        self.env = env

    def run(self, *args):
        result = self.env.run(*args, env_extra={"TOOLFORGE_CLI": "1"})
        assert not OUR_TRACEBACK.search(result.stderr), result.stderr
        self.status = result.returncode
        self.stdout, self.stderr = result.stdout, result.stderr
        # bats: $output is stdout and stderr together; its lines are the output's lines
        self.lines = (result.stdout + result.stderr).splitlines()
        return self

    def assert_success(self):
        assert self.status == 0, (self.stdout, self.stderr)

    def assert_failure(self):
        assert self.status != 0, (self.stdout, self.stderr)

    def assert_line(self, text, partial=False):
        found = any(text in line if partial else line == text for line in self.lines)
        assert found, f"no line {'containing' if partial else 'equal to'} {text!r} in {self.lines}"

    def refute_line(self, text, partial=False):
        assert not any(text in line if partial else line == text for line in self.lines), self.lines


@pytest.fixture
def bats(ws_env):
    (Path(ws_env.home) / "public_html").mkdir()
    return Bats(ws_env)


# --- webservice-smoke-test.bats ----------------------------------------------------------------


def test_status_of_stopped_webservice(bats):
    bats.run("status").assert_success()
    bats.assert_line("webservice is not running", partial=True)


def test_start_status_restart_stop_status(bats):
    # "start webservice" (the bats test gives no type: the site's default, php7.4)
    bats.run("php7.4", "start").assert_success()
    bats.assert_line("Starting webservice", partial=True)
    bats.run("status").assert_success()
    bats.assert_line("webservice of type php7.4 is running", partial=True)
    # "restart"
    bats.run("restart").assert_success()
    bats.assert_line("Restarting", partial=True)
    # "stop"
    bats.run("stop").assert_success()
    bats.assert_line("Stopping webservice")
    bats.run("status").assert_success()
    bats.assert_line("webservice is not running", partial=True)


def test_start_without_a_type_starts_the_default_php74(bats):
    bats.run("start").assert_success()
    bats.assert_line("Starting webservice", partial=True)
    bats.run("status").assert_success()
    bats.assert_line("webservice of type php7.4 is running", partial=True)


@pytest.mark.kubectl
def test_shell_starts_and_echoes(bats):
    token = f"{os.getpid()}-token"
    bats.run("php7.4", "shell", "--", "echo", token).assert_success()
    bats.assert_line(token, partial=True)


# --- service-template.bats ---------------------------------------------------------------------


def _template(bats, text):
    Path(bats.env.home, "service.template").write_text(text)


def test_start_webservice_from_template_works(bats):
    _template(bats, 'cpu: 500m\nmem: 512Mi\n# type not last (T379903)\ntype: php8.2\n'
                    '# extra_args is known (T380141)\nextra_args: ""\nreplicas: 1\n')
    bats.run("start", "--template=service.template").assert_success()
    bats.assert_line("Starting webservice", partial=True)
    bats.run("status", "--template=service.template").assert_success()
    bats.assert_line("webservice of type php8.2 is running", partial=True)
    bats.refute_line("Your template file (service.template) contains unknown keys", partial=True)
    bats.run("restart").assert_success()
    bats.assert_line("Restarting", partial=True)


def test_start_from_template_with_unknown_keys_shows_warning(bats):
    _template(bats, "cpu: 500m\nsome_stray_key: something\nmem: 512Mi\nreplicas: 1\ntype: php8.2\n")
    bats.run("start", "--template=service.template").assert_success()
    bats.assert_line("Starting webservice", partial=True)
    bats.assert_line("Your template file (service.template) contains unknown keys", partial=True)
    bats.run("status").assert_success()
    bats.assert_line("webservice of type php8.2 is running", partial=True)


def test_start_from_template_that_is_not_a_mapping_fails(bats):
    _template(bats, "- I'm\n- an\n- array\n")
    bats.run("start", "--template=service.template").assert_failure()
