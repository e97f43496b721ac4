"""The test harness itself: signals at start-up, and helpers that must patch only what they say."""

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ctrl_c_works_in_tests_when_pytest_starts_with_sigint_ignored(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text(textwrap.dedent("""
        import signal, subprocess, sys

        def test_handler_is_back():
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

        def test_children_get_the_default_disposition():
            out = subprocess.run([sys.executable, "-c",
                                  "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"],
                                 capture_output=True, text=True, check=True).stdout
            assert out.strip() == "False"
    """))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", str(probe)],
        cwd=ROOT, capture_output=True, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert "2 passed" in result.stdout, result.stdout + result.stderr


def test_fake_kubectl_changes_only_webservice_shells_view_of_os(monkeypatch, tmp_path):
    import os
    from types import SimpleNamespace

    from tests.hardening.conftest import fake_kubectl
    from webservice.actions import shell as shell_mod

    real_read = os.read
    fake_kubectl(monkeypatch, SimpleNamespace(env={}, kubeconfig=str(tmp_path / "config")))
    assert os.read is real_read
    assert shell_mod.os.read(0, 1) == b""
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"x")
    assert os.read(read_fd, 1) == b"x"
    os.close(read_fd), os.close(write_fd)
