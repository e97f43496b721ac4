"""Release hygiene: man pages, shell completions and the version number stay current.

These tests read the CLI's click commands, so that an action or option added to
``webservice.ui.cli`` without a line in ``man/webservice.1`` or a regeneration of the
completions (``python3 completions/generate.py``) fails here.  They run from the
source tree, inside the Debian build (``debian/pybuild.testfiles`` copies ``man``,
``completions`` and ``debian/changelog`` next to ``tests``) and against the installed
package in ``.ci/bookworm``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

import webservice
from webservice import errors
from webservice.ui.cli import cli

ROOT = Path(__file__).resolve().parent.parent
MAN = ROOT / "man"
COMPLETIONS = ROOT / "completions"
# the Debian build's tests run in .pybuild/.../build, where debian/pybuild.testfiles put
# debian/changelog as ./changelog
CHANGELOG = next((p for p in (ROOT / "debian" / "changelog", ROOT / "changelog") if p.exists()),
                 ROOT / "debian" / "changelog")
INSTALLED = Path(webservice.__file__).resolve().is_relative_to("/usr/lib/python3/dist-packages")
# where the imported package lives, so that subprocesses run the same code
PACKAGE_PARENT = str(Path(webservice.__file__).resolve().parent.parent)


def _env(**extra) -> dict:
    path = os.pathsep.join(p for p in (PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is not in this tree")
    return path


def _commands():
    ctx = click.Context(cli, info_name="webservice")
    return {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}


def _option_names(command) -> set[str]:
    names = set()
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def _roff_text(path: Path) -> str:
    """The man page source with roff escapes for '-' and fonts removed."""
    text = _need(path).read_text(encoding="utf-8")
    text = re.sub(r"^\.\\\".*$", "", text, flags=re.M)  # comments
    text = text.replace("\\-", "-").replace("\\&", "").replace("\\%", "")
    return re.sub(r"\\f[BIRP]|\\f\(..", "", text)


def _section(text: str, name: str) -> str:
    match = re.search(rf"^\.SH \"?{re.escape(name)}\"?\s*$(.*?)(?=^\.SH |\Z)", text, flags=re.M | re.S)
    assert match, f"man page has no {name} section"
    return match.group(1)


def _mentions(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


# --- man pages -----------------------------------------------------------------------


def test_man_page_documents_every_action():
    text = _roff_text(MAN / "webservice.1")
    actions = _section(text, "ACTIONS")
    documented = set(re.findall(r"^\.TP\n\.B (\S+)$", actions, flags=re.M))
    missing = sorted(set(_commands()) - documented)
    assert not missing, f"actions missing from ACTIONS in man/webservice.1: {missing}"


def test_man_page_documents_every_option():
    text = _roff_text(MAN / "webservice.1")
    options = _section(text, "OPTIONS")
    expected = {"--help", "-h"}
    for param in cli.params:
        if isinstance(param, click.Option):
            expected.update(param.opts)
    missing = {}
    for name, command in _commands().items():
        for option in _option_names(command) | expected:
            if not _mentions(options, option):
                missing.setdefault(option, []).append(name)
    assert not missing, f"options missing from OPTIONS in man/webservice.1: {missing}"


def test_man_page_exit_status_matches_errors_module():
    text = _roff_text(MAN / "webservice.1")
    section = _section(text, "EXIT STATUS")
    documented = set(re.findall(r"^\.B (\d+)$", section, flags=re.M))
    table = set(re.findall(r"^(\d+)\s{2,}", errors.__doc__, flags=re.M))
    table |= set(re.findall(r"; (\d+) terminated", errors.__doc__))
    codes = {str(v) for k, v in vars(errors).items() if k.startswith("EXIT_")}
    assert table == codes, f"errors.py's table {sorted(table)} and its EXIT_* {sorted(codes)} disagree"
    assert documented == codes, f"EXIT STATUS lists {sorted(documented)}, errors.py {sorted(codes)}"


def test_man_page_documents_environment_and_config_keys():
    from webservice.model.config import KEYS

    text = _roff_text(MAN / "webservice.1")
    environment = _section(text, "ENVIRONMENT")
    package = Path(webservice.__file__).parent
    variables = set()
    for source in package.rglob("*.py"):
        variables.update(re.findall(r"\b(WEBSERVICE_[A-Z][A-Z_]*)", source.read_text(encoding="utf-8")))
    variables -= {"WEBSERVICE_KEY"}
    variables.update(["WEBSERVICE_TOOL", "WEBSERVICE_CONFIG", "WEBSERVICE_SITE_CONFIG", "KUBECONFIG",
                      "TOOLFORGE_CLI", "NO_COLOR", "SOURCE_DATE_EPOCH"])
    config_variables = {"WEBSERVICE_" + key.upper() for key in KEYS}
    # variables the launcher reads in the container belong to webservice-runner(1), the
    # webhook server's to webservice-admission(1)
    other_environments = [_section(_roff_text(MAN / page), "ENVIRONMENT")
                          for page in ("webservice-runner.1", "webservice-admission.1")]
    missing = sorted(v for v in variables - config_variables
                     if not _mentions(environment, v) and not any(_mentions(e, v) for e in other_environments))
    assert not missing, f"variables missing from ENVIRONMENT in man/webservice.1 (or -runner.1, -admission.1): {missing}"
    configuration = _section(text, "CONFIGURATION")
    missing_keys = [key for key in KEYS if not _mentions(configuration, key)]
    assert not missing_keys, f"config keys missing from CONFIGURATION: {missing_keys}"


def test_man_page_files_section():
    files = _section(_roff_text(MAN / "webservice.1"), "FILES")
    from webservice.state.manifest import MANIFEST_NAME
    from webservice.state.template import TEMPLATE_LOCATIONS

    for location in TEMPLATE_LOCATIONS:
        assert f"~/{location}" in files
    for path in (f"~/{MANIFEST_NAME}", "/etc/toolforge/webservice.yaml",
                 "$XDG_CONFIG_HOME/toolforge/webservice.yaml", "$XDG_CACHE_HOME/webservice/"):
        assert path in files


def test_runner_man_page_documents_every_option():
    text = _roff_text(MAN / "webservice-runner.1")
    options = _section(text, "OPTIONS")
    if importlib.util.find_spec("webservice.runner") is None:
        pytest.skip("webservice.runner is not written yet")
    from webservice.runner import cli as runner_cli

    names = set()
    for value in vars(runner_cli).values():
        if isinstance(value, click.Command):
            for param in value.params:
                if isinstance(param, click.Option):
                    names.update(param.opts + param.secondary_opts)
    parser_factory = getattr(runner_cli, "build_parser", None) or getattr(runner_cli, "make_parser", None)
    if parser_factory is not None:  # argparse
        for action in parser_factory()._actions:
            names.update(action.option_strings)
    if not names:
        pytest.skip("no click command or argparse parser found in webservice.runner.cli")
    missing = sorted(n for n in names if not _mentions(options, n))
    assert not missing, f"options missing from OPTIONS in man/webservice-runner.1: {missing}"


def _click_options(module) -> set[str]:
    """Every option name of the click commands (and groups' subcommands) in ``module``."""
    names = set()

    def collect(command):
        for param in command.params:
            if isinstance(param, click.Option):
                names.update(param.opts + param.secondary_opts)
        for sub in getattr(command, "commands", {}).values():
            collect(sub)

    for value in vars(module).values():
        if isinstance(value, click.Command):
            collect(value)
    return names


def test_admission_man_page_documents_every_option():
    text = _roff_text(MAN / "webservice-admission.1")
    options = _section(text, "OPTIONS")
    if importlib.util.find_spec("webservice.webhook") is None:
        pytest.skip("webservice.webhook (the webhook server) is not in this tree")
    from webservice.webhook import cli as webhook_cli

    names = _click_options(webhook_cli)
    parser_factory = getattr(webhook_cli, "build_parser", None) or getattr(webhook_cli, "make_parser", None)
    if parser_factory is not None:  # argparse
        for action in parser_factory()._actions:
            names.update(action.option_strings)
    if not names:
        pytest.skip("no click command or argparse parser found in webservice.webhook.cli")
    missing = sorted(n for n in names if not _mentions(options, n))
    assert not missing, f"options missing from OPTIONS in man/webservice-admission.1: {missing}"
    documented = set(re.findall(r"^\.B[IR]? (--[a-z][-a-z]*)", options, flags=re.M))
    unknown = sorted(documented - names)
    assert not unknown, f"man/webservice-admission.1 documents options the server does not have: {unknown}"


def _console_scripts() -> dict[str, str]:
    import configparser

    config = configparser.ConfigParser()
    config.read(_need(ROOT / "setup.cfg"), encoding="utf-8")
    lines = config["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict((part.strip() for part in line.split("=", 1)) for line in lines)


def test_every_command_has_a_man_page_and_one_debian_package():
    """Each console script of setup.cfg is installed by exactly one binary package, with its page."""
    debian = _need(ROOT / "debian" / "control").parent
    packages = re.findall(r"^Package: (\S+)$", (debian / "control").read_text(encoding="utf-8"), flags=re.M)
    assert "toolforge-webservice" in packages and "toolforge-webservice-admission" in packages
    installs = {p: (debian / f"{p}.install").read_text(encoding="utf-8").split() for p in packages
                if (debian / f"{p}.install").exists()}
    manpages = {p: (debian / f"{p}.manpages").read_text(encoding="utf-8").split() for p in packages
                if (debian / f"{p}.manpages").exists()}
    links = (debian / "toolforge-webservice.links").read_text(encoding="utf-8").split()
    for command in _console_scripts():
        owners = [p for p, files in installs.items() if f"usr/bin/{command}" in files]
        assert len(owners) == 1, f"/usr/bin/{command} is installed by {owners or 'no package'}"
        page = f"man/{command}.1"
        if (MAN / f"{command}.1").exists():
            assert page in manpages.get(owners[0], []), f"{page} is not in debian/{owners[0]}.manpages"
        else:  # an alias: its page is a link to the main one
            assert f"usr/share/man/man1/{command}.1.gz" in links, f"no man page for {command}"
    # the webhook server is the admins' package, not on every bastion
    assert installs["toolforge-webservice-admission"] == ["usr/bin/webservice-admission"]


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
@pytest.mark.parametrize("page", ["webservice.1", "webservice-runner.1", "webservice-admission.1"])
def test_man_page_renders_without_warnings(page):
    path = _need(MAN / page)
    result = subprocess.run(
        ["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", str(path)],
        capture_output=True, text=True, env={**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": "80"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


# --- completions ---------------------------------------------------------------------


def _generator():
    spec = importlib.util.spec_from_file_location("completions_generate", _need(COMPLETIONS / "generate.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completions_are_current(shell):
    generator = _generator()
    path = COMPLETIONS / generator.FILES[shell]
    assert path.read_text(encoding="utf-8") == generator.render(shell), (
        f"completions/{path.name} is out of date: run 'python3 completions/generate.py'"
    )


@pytest.mark.parametrize("name", ["webservice.bash", "_webservice", "webservice.fish"])
def test_completions_name_every_action_and_option(name):
    text = _need(COMPLETIONS / name).read_text(encoding="utf-8")
    for action, command in _commands().items():
        assert _mentions(text, action), f"{name} lacks the action {action}"
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for option in param.opts + param.secondary_opts:
                    if option.startswith("--"):
                        assert _mentions(text, option) or f"-l {option[2:]} " in text, (
                            f"{name} lacks {option} of {action}")


def _complete(words: str, cword: int) -> tuple[list[str], float]:
    env = _env(_WEBSERVICE_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(cword))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "webservice"], capture_output=True, text=True,
                            env=env, timeout=30)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if "," in line], elapsed


def test_click_completion_of_st_offers_start_status_stop_quickly():
    offered, elapsed = _complete("webservice st", 1)
    assert sorted(offered) == ["start", "status", "stop"]  # speed: bench/bench.py measures it


def test_click_completion_offers_type_names_offline(tmp_path):
    offered, _ = _complete("webservice start py", 2)
    assert offered and all(name.startswith("py") for name in offered)


@pytest.fixture
def webservice_on_path(tmp_path, monkeypatch):
    """A ``webservice`` on $PATH that runs this interpreter's package; an empty cache."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "webservice"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m webservice "$@"\n')
    shim.chmod(0o755)
    return _env(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                XDG_CACHE_HOME=str(tmp_path / "cache"), HOME=str(tmp_path))


BASH_DRIVER = r"""
source "$1"
shift
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
_webservice webservice "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def _bash_complete(env, *words) -> tuple[list[str], float]:
    started = time.perf_counter()
    result = subprocess.run(["bash", "-c", BASH_DRIVER, "bash", str(COMPLETIONS / "webservice.bash"), *words],
                            capture_output=True, text=True, env=env, timeout=30)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line], elapsed


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion(webservice_on_path):
    _need(COMPLETIONS / "webservice.bash")
    offered, elapsed = _bash_complete(webservice_on_path, "webservice", "st")
    assert sorted(offered) == ["start", "status", "stop"]
    types, _ = _bash_complete(webservice_on_path, "webservice", "start", "python3")
    assert "python3.11" in types
    assert _bash_complete(webservice_on_path, "webservice", "python3.11", "re")[0] == ["restart"]
    assert _bash_complete(webservice_on_path, "webservice", "logs", "--fo")[0] == ["--follow"]
    assert _bash_complete(webservice_on_path, "webservice", "--dry")[0] == ["--dry-run"]
    assert _bash_complete(webservice_on_path, "webservice", "start", "--mount", "")[0] == ["all", "none"]
    assert _bash_complete(webservice_on_path, "webservice", "status", "--dry")[0] == []


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completion(webservice_on_path):
    script = _need(COMPLETIONS / "webservice.fish")

    def complete(line: str) -> list[str]:
        result = subprocess.run(["fish", "--no-config", "-c", f"source {script}; complete -C '{line}'"],
                                capture_output=True, text=True, env=webservice_on_path, timeout=30)
        assert result.returncode == 0, result.stderr
        return sorted(line.split("\t")[0] for line in result.stdout.splitlines())

    assert complete("webservice st") == ["start", "status", "stop"]
    assert "python3.11" in complete("webservice start py")
    assert complete("webservice logs --fo") == ["--follow"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completion_parses():
    script = _need(COMPLETIONS / "_webservice")
    result = subprocess.run(["zsh", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- version ---------------------------------------------------------------------------


def _changelog_version() -> str:
    first = _need(CHANGELOG).read_text(encoding="utf-8").splitlines()[0]
    match = re.match(r"^toolforge-webservice \(([^)]+)\) ", first)
    assert match, f"unexpected first line of debian/changelog: {first!r}"
    version = match.group(1).split(":", 1)[-1]  # no epoch
    return version


def test_one_version_number():
    assert re.fullmatch(r"\d+\.\d+\.\d+", webservice.__version__)
    assert _changelog_version() == webservice.__version__, "debian/changelog and webservice/__init__.py differ"
    result = subprocess.run([sys.executable, "-m", "webservice", "--version"], capture_output=True, text=True,
                            env=_env(), timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"webservice {webservice.__version__}"


# --- the installed package (.ci/bookworm) ------------------------------------------------------


@pytest.mark.skipif(not INSTALLED, reason="runs against the installed Debian package only")
def test_installed_package_ships_the_current_files():
    import gzip

    pairs = {
        Path("/usr/share/bash-completion/completions/webservice"): COMPLETIONS / "webservice.bash",
        Path("/usr/share/bash-completion/completions/toolforge-webservice"): COMPLETIONS / "webservice.bash",
        Path("/usr/share/zsh/vendor-completions/_webservice"): COMPLETIONS / "_webservice",
        Path("/usr/share/fish/vendor_completions.d/webservice.fish"): COMPLETIONS / "webservice.fish",
    }
    for installed, source in pairs.items():
        assert installed.read_text(encoding="utf-8") == _need(source).read_text(encoding="utf-8"), installed
    for page in ("webservice.1", "webservice-runner.1", "toolforge-webservice.1", "webservice-admission.1"):
        installed = Path("/usr/share/man/man1") / (page + ".gz")
        source = MAN / ("webservice.1" if page.startswith("toolforge") else page)
        assert gzip.decompress(installed.read_bytes()).decode("utf-8") == _need(source).read_text(encoding="utf-8")
    for command in ("webservice", "toolforge-webservice", "webservice-runner", "webservice-admission"):
        assert Path("/usr/bin", command).exists(), command


# ----------------------------------------------------------------------------- debian/control


def _control_field(name: str) -> dict[str, str]:
    """package name -> its whole entry (with build profiles) in every ``name:`` field of debian/control."""
    text = _need(ROOT / "debian" / "control").read_text(encoding="utf-8")
    entries: dict[str, str] = {}
    for m in re.finditer(rf"^{name}:(.*(?:\n .*)*)", text, flags=re.M):
        for entry in m.group(1).replace("\n", " ").split(","):
            entry = entry.strip()
            if entry and not entry.startswith("${"):
                entries[re.split(r"[\s(<\[]", entry, maxsplit=1)[0]] = entry
    return entries


def test_kubectl_is_only_suggested_because_bookworm_does_not_package_it():
    for field in ("Depends", "Recommends", "Pre-Depends"):
        assert "kubectl" not in _control_field(field), f"kubectl in {field}: it is not installable on bookworm"
    assert "kubectl" in _control_field("Suggests")  # for 'webservice shell'


def test_the_runner_tests_servers_are_build_dependencies_of_the_test_run():
    from tests.runner import support

    build_depends = _control_field("Build-Depends")
    for program in ("lighttpd", "php-cgi", "uwsgi", "uwsgi-python3", "mod_deflate"):
        package = support.PACKAGES[program]
        assert package in build_depends, f"{program} ({package}) is not in Build-Depends: the build-time runner tests would skip"
        assert "<!nocheck>" in build_depends[package], f"{package} is needed only to run the tests: mark it <!nocheck>"
    for script in (".ci/setup", ".ci/bookworm"):  # apt runs --no-install-recommends there
        assert "lighttpd-mod-deflate" in _need(ROOT / script).read_text(encoding="utf-8"), script


def _on_bookworm_with_apt_lists() -> bool:
    try:
        release = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return False
    lists = Path("/var/lib/apt/lists")
    return ("VERSION_CODENAME=bookworm" in release and shutil.which("apt-cache") is not None
            and lists.is_dir() and any("_Packages" in p.name for p in lists.iterdir()))


@pytest.mark.skipif(not _on_bookworm_with_apt_lists(), reason="needs Debian bookworm with its apt package lists (apt-get update)")
@pytest.mark.skipif(any(k.startswith("DEB_BUILD_") for k in os.environ),
                    reason="inside dpkg-buildpackage: the build machine's apt sources are not the bastions' "
                    "(checked from the source tree, where .ci/run runs it)")
@pytest.mark.parametrize("field", ["Build-Depends", "Depends", "Recommends"])
def test_every_package_the_control_file_needs_is_in_an_apt_source(field):
    """apt-get build-dep / install must find them: a version from an archive, not just one
    installed by hand (which 'apt-cache policy' lists from /var/lib/dpkg/status only)."""
    ours = set(re.findall(r"^Package: (\S+)$", _need(ROOT / "debian" / "control").read_text(encoding="utf-8"), flags=re.M))
    wanted = [p for p in _control_field(field) if p not in ours]
    env = {**os.environ, "LC_ALL": "C"}
    policy = subprocess.run(["apt-cache", "policy", *wanted], capture_output=True, text=True, env=env).stdout
    blocks = dict(re.findall(r"^(\S+):\n((?:\s.*\n?)*)", policy, flags=re.M))
    missing = []
    for package in wanted:
        lines = blocks.get(package, "").splitlines()
        if any(re.match(r"^\s+\d+ ", line) and "/var/lib/dpkg/status" not in line for line in lines):
            continue
        # a virtual package (debhelper-compat, dh-sequence-*): some real package provides it
        show = subprocess.run(["apt-cache", "showpkg", package], capture_output=True, text=True, env=env).stdout
        provides = show.split("Reverse Provides:", 1)[1].strip() if "Reverse Provides:" in show else ""
        if not provides:
            missing.append(package)
    assert missing == [], f"{field} names packages no apt source of this bookworm has: {missing}"


def test_readme_apt_lines_run_unattended_as_root():
    text = _need(ROOT / "README.rst").read_text(encoding="utf-8")
    apt = [line.strip() for line in text.splitlines() if re.match(r"^\s+(sudo\s+)?apt-get\s", line)]
    assert apt, "no apt-get lines in README.rst?"
    for line in apt:
        assert not line.startswith("sudo"), f"{line!r}: the reader is root (one sentence says to prefix sudo otherwise)"
        if re.match(r"apt-get (install|build-dep)\b", line):
            assert " -y" in line, f"{line!r} would ask a question"
    assert "prefix each ``apt-get`` line with ``sudo``" in text
