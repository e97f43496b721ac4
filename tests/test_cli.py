"""The command line: both spellings, option handling, help, and bad input.

Tables of command lines run in-process through ``webservice.ui.cli.main`` (fast), plus a
few real subprocesses for what only a real process shows: no traceback ever, no
kubernetes import on the --help/--dry-run/completion paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from webservice import __version__
from webservice.ui.cli import ACTIONS, main, normalise_argv
from webservice.errors import UsageError

BIN = Path(sys.executable).parent


def webservice_command() -> list[str]:
    script = BIN / "webservice"
    return [str(script)] if script.exists() else [sys.executable, "-m", "webservice"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An isolated tool environment: home, XDG dirs, no kubeconfig, fixed clock."""
    home = tmp_path / "home"
    home.mkdir()
    values = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "WEBSERVICE_TOOL": "mytool",
        "WEBSERVICE_SITE_CONFIG": str(tmp_path / "site.yaml"),
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
        "SOURCE_DATE_EPOCH": "1795687200",
        "NO_COLOR": "1",
        "COLUMNS": "100",
    }
    for key in list(os.environ):
        if key.startswith("WEBSERVICE_") or key == "TOOLFORGE_CLI":
            monkeypatch.delenv(key)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **values}


def run(argv, capsys):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else code), out, err


# --- argument order -------------------------------------------------------------------

NORMALISE = [
    (["python3.11", "start"], ["start", "python3.11"], None),
    (["start", "python3.11"], ["start", "python3.11"], None),
    (["--mem", "1Gi", "python3.11", "start"], ["start", "python3.11", "--mem", "1Gi"], None),
    (["-m", "1Gi", "-c", "0.5", "php8.2", "restart"], ["restart", "php8.2", "-m", "1Gi", "-c", "0.5"], None),
    (["stop"], ["stop"], None),
    (["status", "--json"], ["status", "--json"], None),
    (["--template", "status", "start"], ["start", "--template", "status"], None),
    (["--mem=1Gi", "start"], ["start", "--mem=1Gi"], None),
    (["generic", "start", "--", "start", "-x"], ["start", "generic"], ("start", "-x")),
    (["start", "--", "./server"], ["start"], ("./server",)),
    (["start", "--"], ["start"], ()),
    (["--help"], ["--help"], None),
    ([], [], None),
]


@pytest.mark.parametrize("argv,expected,extra", NORMALISE)
def test_normalise_argv(argv, expected, extra):
    assert normalise_argv(argv) == (expected, extra)


@pytest.mark.parametrize("argv", [["python3.11"], ["python3.11", "php8.2", "start"], ["start", "a", "b"]])
def test_normalise_argv_refuses(argv):
    with pytest.raises(UsageError):
        normalise_argv(argv)


# --- dry-run through both spellings ----------------------------------------------------

SPELLINGS = [
    (["--dry-run", "python3.11", "start"], ["start", "python3.11", "--dry-run"]),
    (["--mem", "1Gi", "--cpu", "0.5", "python3.11", "start", "--dry-run"], ["start", "python3.11", "--cpu", "0.5", "--mem", "1Gi", "--dry-run"]),
    (["-r", "2", "php8.2", "restart", "--dry-run"], ["restart", "php8.2", "--replicas", "2", "--dry-run"]),
    (["--dry-run", "golang1.11", "start", "--", "./server", "-p", "8000"], ["start", "golang1.11", "--dry-run", "--", "./server", "-p", "8000"]),
]


@pytest.mark.parametrize("old,new", SPELLINGS)
def test_both_spellings_give_the_same_objects(env, capsys, old, new):
    code_old, out_old, err_old = run(old, capsys)
    code_new, out_new, err_new = run(new, capsys)
    assert (code_old, code_new) == (0, 0), err_old + err_new
    assert out_old == out_new
    kinds = [doc["kind"] for doc in yaml.safe_load_all(out_old)]
    assert kinds == ["Deployment", "Service", "HTTPRoute"]


OPTIONS = [
    # (argv, path into the Deployment container or object, expected)
    (["--cpu", "0.5", "--mem", "1.5Gi"], ("resources",), {"limits": {"cpu": "500m", "memory": "1536Mi"}, "requests": {"cpu": "250m", "memory": "768Mi"}}),
    (["-c", "2", "-m", "2G"], ("resources", "limits"), {"cpu": "2", "memory": "2G"}),
    (["--health-check-path", "/healthz"], ("readinessProbe", "httpGet"), {"path": "/healthz", "port": 8000}),
    (["--", "--processes", "2"], ("command",), ["/usr/bin/webservice-runner", "--type", "uwsgi-python", "--port", "8000", "--processes", "2"]),
]


@pytest.mark.parametrize("extra,path,expected", OPTIONS)
def test_option_reaches_the_container(env, capsys, extra, path, expected):
    cut = extra.index("--") if "--" in extra else len(extra)
    code, out, err = run(["start", "python3.11", "--dry-run", *extra[:cut], *extra[cut:]], capsys)
    assert code == 0, err
    deployment = next(yaml.safe_load_all(out))
    value = deployment["spec"]["template"]["spec"]["containers"][0]
    for key in path:
        value = value[key]
    assert value == expected


def test_replicas_and_json(env, capsys):
    code, out, err = run(["start", "python3.11", "--dry-run", "--json", "-r", "3"], capsys)
    assert code == 0, err
    document = json.loads(out)
    assert document["kind"] == "List"
    assert document["items"][0]["spec"]["replicas"] == 3


@pytest.mark.parametrize(
    "site,routing,kind,name",
    [("", "ingress", "Ingress", "mytool-subdomain"), ("", "httproute", "HTTPRoute", "mytool"),
     # legacy path routing: an Ingress where the site runs an ingress controller, an HTTPRoute
     # under the Gateway where the site names its legacy host
     ("routing: ingress\n", "legacy-path", "Ingress", "mytool-legacy"),
     ("routing: legacy-path\n", "legacy-path", "Ingress", "mytool-legacy"),
     ("legacy_host: tools.wmflabs.org\n", "legacy-path", "HTTPRoute", "mytool-legacy")],
)
def test_routing_modes(env, capsys, monkeypatch, site, routing, kind, name):
    Path(env["WEBSERVICE_SITE_CONFIG"]).write_text(site)
    code, out, err = run(["start", "python3.11", "--dry-run", "--routing", routing], capsys)
    assert code == 0, err
    routing_object = list(yaml.safe_load_all(out))[-1]
    assert (routing_object["kind"], routing_object["metadata"]["name"]) == (kind, name)
    monkeypatch.setenv("WEBSERVICE_ROUTING", routing)
    code, out_env, err = run(["start", "python3.11", "--dry-run"], capsys)
    assert code == 0 and out_env == out


def test_template_is_used_and_cli_wins(env, capsys):
    home = Path(env["HOME"])
    (home / "service.template").write_text("type: php8.2\ncpu: 1\nreplicas: 2\nextra_args: [--x]\n")
    code, out, err = run(["start", "--dry-run", "--replicas", "1"], capsys)
    assert code == 0, err
    deployment = next(yaml.safe_load_all(out))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 1  # the command line beats the template
    assert container["resources"]["limits"]["cpu"] == "1"
    assert container["command"][-1] == "--x" and "lighttpd" in container["command"]


def test_manifest_supplies_the_type_and_cli_replicas_wins(env, capsys):
    home = Path(env["HOME"])
    (home / "service.manifest").write_text("backend: kubernetes\nweb: node18\nreplicas: 2\nversion: 4\n")
    code, out, err = run(["restart", "--dry-run", "--replicas", "1"], capsys)
    assert code == 0, err
    deployment = next(yaml.safe_load_all(out))
    assert deployment["spec"]["replicas"] == 1
    assert "nodejs" in deployment["spec"]["template"]["spec"]["containers"][0]["command"]


def test_buildservice_image(env, capsys):
    code, out, err = run(["start", "buildservice", "--dry-run", "--buildservice-image", "tool-mytool/app:v3"], capsys)
    assert code == 0, err
    container = next(yaml.safe_load_all(out))["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "tools-harbor.wmcloud.org/tool-mytool/app:v3"


def test_deprecated_type_warns_and_renders(env, capsys):
    code, out, err = run(["start", "php7.4", "--dry-run"], capsys)
    assert code == 0
    assert "deprecated" in err and "warning" in err
    assert "toolforge-php74" in out


def test_hidden_noop_options_are_accepted(env, capsys):
    code, out, _ = run(["--canonical", "--release", "buster", "python3.11", "start", "--dry-run"], capsys)
    assert code == 0 and "kind: Deployment" in out


# --- bad input: one line, non-zero, nothing changed -------------------------------------

BAD = [
    (["start", "python3.11", "--dry-run", "--mem", "lots"], 2, "not a Kubernetes quantity"),
    (["start", "python3.11", "--dry-run", "--cpu", "-1"], 2, "--cpu"),
    (["start", "python3.11", "--dry-run", "--cpu", "0.0001"], 2, "millicore"),
    (["start", "python3.11", "--dry-run", "--mem", "512"], 2, "1Mi"),
    (["start", "python3.11", "--dry-run", "--replicas", "0"], 2, "--replicas: '0' is not a number of pods from 1 to 16; to stop"),
    (["start", "python3.11", "--dry-run", "--replicas", "17"], 2, "--replicas: '17' is not a number of pods from 1 to 16"),
    (["start", "python3.11", "--dry-run", "--replicas", "many"], 2, "--replicas: 'many' is not a number of pods"),
    (["start", "python3.11", "--dry-run", "--cpu", "abc"], 2, "--cpu: 'abc' is not a Kubernetes quantity; write a number of cores, e.g. 0.5, 500m, 1"),
    (["start", "pyhton3.11", "--dry-run"], 2, "did you mean 'python3.11'"),
    (["start", "python3.11", "--dry-run", "--backend", "gridengine"], 2, "grid engine"),
    (["--backend", "gridengine", "python3.11", "start"], 2, "grid engine"),
    (["start", "python3.11", "--dry-run", "--backend", "mesos"], 2, "backend"),
    (["start", "python3.11", "--dry-run", "--mount", "nfs"], 2, "--mount"),
    (["start", "python3.11", "--dry-run", "--mount", "none"], 2, "build-service images"),
    (["start", "python3.11", "--dry-run", "--buildservice-image", "x/y"], 2, "buildservice type"),
    (["start", "buildservice", "--dry-run", "--buildservice-image", "UPPER CASE"], 2, "image name"),
    (["start", "golang1.11", "--dry-run"], 2, "after '--'"),
    (["start", "python3.11", "--dry-run", "--health-check-path", "healthz"], 2, "health-check-path"),
    (["start", "python3.11", "--dry-run", "--health-check-path", "/health z"], 2, "health-check-path"),
    (["start", "python3.11", "--dry-run", "--health-check-path", "/healthz\n"], 2, "health-check-path"),
    (["start", "buildservice", "--dry-run", "--buildservice-image", "tool/image\n"], 2, "image name"),
    (["start", "python3.11", "--dry-run", "--replicas", "\u0663"], 2, "--replicas"),
    (["start", "python3.11", "--dry-run", "--replicas", "1_0"], 2, "--replicas"),
    (["start", "python3.11", "--dry-run", "--routing", "magic"], 2, "--routing"),
    (["start", "python3.11", "--dry-run", "--template", "/nonexistent/service.template"], 2, "/nonexistent/service.template"),
    (["start", "python3.11", "--dry-run", "--tool", "Not_A_Tool"], 2, "Not_A_Tool"),
    (["start", "python3.11", "--bogus"], 2, "--bogus"),
    (["python3.11"], 2, "no action given"),
    (["start", "a", "b"], 2, "too many arguments"),
]


def _snapshot(root: Path) -> dict:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("argv,code,needle", BAD)
def test_bad_input_is_one_clear_line(env, capsys, argv, code, needle):
    home = Path(env["HOME"])
    (home / "service.manifest").write_text("# header\nbackend: kubernetes\nweb: php8.2\nkeep: me\nversion: 4\n")
    before = _snapshot(home)
    got, out, err = run(argv, capsys)
    assert got == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("webservice: error: ")
    assert needle in lines[0]
    assert "Traceback" not in err and out == ""
    assert _snapshot(home) == before


BAD_FILES = [
    ("service.template", "", "empty"),
    ("service.template", "- a\n- b\n", "mapping"),
    ("service.template", "type: python3.11\nextra_args: \"--name 'unclosed\"\n", "extra_args"),
    ("service.template", "type: python3.11\ncpu: [1]\n", "cpu"),
    ("service.template", "type: python3.11\nreplicas: 17\n", "replicas"),
    ("service.template", "type: python3.11\nreplicas: 0\n", "replicas"),
    ("service.template", "type: python3.11\nmem: 1.5 Gi\n", "mem"),
    ("service.template", "type: [\n", "YAML"),
    ("service.manifest", "\x00\x01garbage: [", "service.manifest"),
    ("site", "public_domain: 5\n", "public_domain"),
    ("site", "unknown_key: 1\n", "unknown_key"),
    ("user", "routing: sideways\n", "routing"),
]


@pytest.mark.parametrize("which,content,needle", BAD_FILES)
def test_bad_files_are_one_clear_line(env, capsys, which, content, needle):
    home = Path(env["HOME"])
    if which == "site":
        path = Path(env["WEBSERVICE_SITE_CONFIG"])
    elif which == "user":
        path = Path(env["XDG_CONFIG_HOME"]) / "toolforge" / "webservice.yaml"
        path.parent.mkdir(parents=True)
    else:
        path = home / which
    path.write_text(content)
    before = _snapshot(home)
    argv = ["start", "--dry-run"] if which == "service.template" else ["start", "python3.11", "--dry-run"]
    code, out, err = run(argv, capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err and "Traceback" not in err
    if which in ("site", "user"):
        assert str(path) in err
    assert _snapshot(home) == before


def _image(out: str) -> str:
    return next(yaml.safe_load_all(out))["spec"]["template"]["spec"]["containers"][0]["image"]


def test_no_type_anywhere_starts_the_default_type(env, capsys):
    code, out, err = run(["start", "--dry-run"], capsys)
    assert code == 0, err
    assert _image(out).endswith("/toolforge-php74-sssd-web:latest")
    notes = [line for line in err.splitlines() if "no type given" in line]
    assert notes == ["webservice: warning: no type given (on the command line, in service.template or in "
                     "service.manifest): starting the default type php7.4; name one to choose, e.g. "
                     "'webservice php7.4 start'"], err


def test_site_default_type(env, capsys):
    site = Path(env["WEBSERVICE_SITE_CONFIG"])
    site.write_text("default_type: php8.4\n")
    code, out, err = run(["start", "--dry-run"], capsys)
    assert code == 0, err
    assert _image(out) == "docker-registry.svc.toolforge.org/toolforge-php84-sssd-web:latest"
    assert f"starting the site default type php8.4 (config file {site})" in err
    # a type named anywhere wins over the default, silently
    code, out, err = run(["start", "python3.11", "--dry-run"], capsys)
    assert code == 0 and "no type given" not in err and "python311" in _image(out)
    site.write_text("default_type: php9.9\n")
    code, out, err = run(["start", "--dry-run"], capsys)
    assert code == 2
    assert err.splitlines()[-1].startswith("webservice: error: site config key 'default_type': "
                                           "unknown webservice type 'php9.9'"), err


def test_not_a_tool(env, capsys, monkeypatch):
    monkeypatch.delenv("WEBSERVICE_TOOL")
    code, out, err = run(["start", "python3.11", "--dry-run"], capsys)
    assert code == 2
    assert "become <tool>" in err and len(err.strip().splitlines()) == 1


# --- help, version, names ----------------------------------------------------------------


def test_help_lists_actions_and_types(env, capsys):
    code, out, err = run(["--help"], capsys)
    assert code == 0
    for word in (*ACTIONS, "python3.11", "php8.2", "buildservice", "node18", "jdk17"):
        assert word in out
    assert "[OPTIONS] [TYPE] ACTION" in out


@pytest.mark.parametrize("action", ACTIONS)
def test_action_help(env, capsys, action):
    code, out, _ = run([action, "--help"], capsys)
    assert code == 0 and f"webservice {action}" in out and "--tool" in out
    assert "--canonical" not in out  # hidden no-op


# which options each action's --help shows (the others are accepted, hidden)
HELP_OPTIONS = {
    "start": {"--mem", "--cpu", "--replicas", "--health-check-path", "--routing", "--mount", "--json", "--dry-run",
              "--timeout", "--tool", "--template", "--buildservice-image"},
    "restart": {"--mem", "--cpu", "--replicas", "--health-check-path", "--routing", "--mount", "--json", "--dry-run",
                "--timeout", "--tool", "--template", "--buildservice-image"},
    "stop": {"--json", "--timeout", "--tool"},
    "status": {"--json", "--check", "--tool"},
    "logs": {"--follow", "--last", "--since", "--previous", "--tool", "--json"},
    "shell": {"--mem", "--cpu", "--mount", "--template", "--buildservice-image", "--tool"},
}
EVERY_OPTION = set().union(*HELP_OPTIONS.values())


@pytest.mark.parametrize("action,shown", sorted(HELP_OPTIONS.items()))
def test_each_action_shows_only_its_options(env, capsys, action, shown):
    code, out, _ = run([action, "--help"], capsys)
    offered = set(re.findall(r"(--[a-z][-a-z]*)", out))
    assert code == 0 and shown <= offered, shown - offered
    assert not (EVERY_OPTION - shown - {"--template"}) & offered, (EVERY_OPTION - shown) & offered


@pytest.mark.parametrize("argv,warned", [
    (["status", "--mem", "1Gi"], "--mem has no effect on 'status'; ignored"),
    (["stop", "--cpu", "1", "--replicas", "2"], "--cpu, --replicas have no effect on 'stop'; ignored"),
    (["logs", "--routing", "ingress"], "--routing has no effect on 'logs'; ignored"),
    (["status", "--template", "service.template"], None),  # scripts pass it to every action
])
def test_options_an_action_has_no_use_for_are_accepted_with_a_note(env, capsys, monkeypatch, argv, warned):
    import webservice.ui.output as output

    seen = []
    monkeypatch.setattr(output, "emit", lambda request, result: seen.append(list(request.warnings)) or 0)
    monkeypatch.setattr("webservice.ui.cli._dispatch", lambda request: None)
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert seen == [[warned] if warned else []]


def test_no_arguments_shows_help(env, capsys):
    code, out, _ = run([], capsys)
    assert code == 0 and "Usage:" in out


def test_version(env, capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"webservice {__version__}"


def test_toolforge_cli_name(env, capsys, monkeypatch):
    monkeypatch.setenv("TOOLFORGE_CLI", "1")
    code, out, _ = run(["--help"], capsys)
    assert "Usage: toolforge webservice" in out
    code, out, err = run(["start", "nonsense-type", "--dry-run"], capsys)
    assert err.startswith("toolforge webservice: error:")


# --- real processes ----------------------------------------------------------------------


def _process(env, *args, extra_env=None):
    return subprocess.run(
        [*webservice_command(), *args],
        env={**env, **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_real_process_dry_run_and_exit_codes(env):
    done = _process(env, "--dry-run", "python3.11", "start")
    assert done.returncode == 0, done.stderr
    assert [d["kind"] for d in yaml.safe_load_all(done.stdout)] == ["Deployment", "Service", "HTTPRoute"]
    bad = _process(env, "start", "python3.11", "--mem", "1.5.5Gi", "--dry-run")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


FAST_PATHS = [
    (["--help"], {}),
    (["--dry-run", "python3.11", "start"], {}),
    (["start", "--help"], {}),
    ([], {"_WEBSERVICE_COMPLETE": "bash_complete", "COMP_WORDS": "webservice st", "COMP_CWORD": "1"}),
]
# what the paths that have a 0.15 s budget (bench/) must not import: the cluster client and
# rich (about 0.3-1.1 s), and the pieces worth milliseconds that only other commands need
NOT_ON_FAST_PATHS = ("kubernetes", "urllib3", "rich", "requests", "platformdirs", "pathlib",
                     "tempfile", "webservice.ui.results", "webservice.kube.cluster", "webservice.actions.lifecycle")


def _imports_of_main(env: dict, args: list[str], returncode: int | None = 0) -> set[str]:
    """The modules ``main(args)`` imports in a fresh interpreter started without ``site``
    (so that what an editable install's path hook imports at startup does not hide them)."""
    import click as _click

    paths = []
    for module in (_click, yaml, sys.modules["webservice"]):
        top = os.path.dirname(os.path.dirname(os.path.abspath(module.__file__)))
        if top not in paths:
            paths.append(top)
    code = ("import sys\nbefore = set(sys.modules)\ntry:\n"
            "    from webservice.ui.cli import main\n    sys.argv[0] = 'webservice'\n    main()\n"
            "finally:\n    sys.stderr.write('IMPORTED ' + ' '.join(sorted(set(sys.modules) - before)) + '\\n')\n")
    done = subprocess.run([sys.executable, "-S", "-c", code, *args],
                          env={**env, "PYTHONPATH": os.pathsep.join(paths)}, capture_output=True, text=True, timeout=60)
    assert returncode is None or done.returncode == returncode, done.stderr[-2000:]
    line = [ln for ln in done.stderr.splitlines() if ln.startswith("IMPORTED ")][-1]
    return set(line.split()[1:])


@pytest.mark.parametrize("args,extra_env", FAST_PATHS)
def test_fast_paths_import_only_what_they_need(env, args, extra_env):
    _imports_of_main({**env, **extra_env}, args)  # the first run writes the catalogue snapshot
    imported = _imports_of_main({**env, **extra_env}, args)
    assert "webservice.ui.cli" in imported and "click" in imported  # the measurement is real
    unwanted = NOT_ON_FAST_PATHS
    if "--dry-run" not in args:  # help and completion read the type cache, nothing more
        unwanted += ("webservice.model.context", "webservice.model.config", "webservice.model.spec", "yaml")
    else:  # no service.template or config file here: nothing to parse as YAML
        unwanted += ("yaml",)
    for name in unwanted:
        assert not any(m == name or m.startswith(name + ".") for m in imported), f"{args} imported {name}"


def test_the_import_check_sees_a_heavy_import(env):
    """The check above can fail: ``status`` (no kubeconfig here, so it fails) gets as far as
    importing what the cluster commands need."""
    imported = _imports_of_main(env, ["status"], returncode=None)
    assert "webservice.ui.results" in imported and "webservice.actions.status" in imported


def test_completion_offers_actions(env):
    done = _process(env, extra_env={"_WEBSERVICE_COMPLETE": "bash_complete", "COMP_WORDS": "webservice st", "COMP_CWORD": "1"})
    offered = {line.split(",", 1)[-1] for line in done.stdout.splitlines()}
    assert {"start", "status", "stop"} <= offered and "logs" not in offered


def test_completion_offers_types(env):
    done = _process(env, extra_env={"_WEBSERVICE_COMPLETE": "bash_complete", "COMP_WORDS": "webservice start py", "COMP_CWORD": "2"})
    offered = {line.split(",", 1)[-1] for line in done.stdout.splitlines()}
    assert {"python3.11", "python3.9"} <= offered


@pytest.mark.parametrize("action", ["status", "stop", "logs"])
def test_missing_kubeconfig_is_one_clear_line(env, capsys, action):
    code, out, err = run([action], capsys)
    assert code == 7, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("webservice: error: ")
    assert "no-kubeconfig" in lines[0] and "Traceback" not in err


def test_sigterm_ends_with_a_word_and_143(env, tmp_path):
    """SIGTERM (a closed ssh session, a killed cron job) never kills silently."""
    import signal
    import socket
    import threading
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()  # never answers
    port = listener.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}}}]\n"
        "users: [{name: u, user: {token: not-a-secret}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u, namespace: tool-mytool}}]\n"
    )
    process = subprocess.Popen(
        [*webservice_command(), "status"],
        env={**env, "KUBECONFIG": str(kubeconfig)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not held and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held, "the CLI never connected"
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        listener.close()
    assert process.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err


# --- --json and --debug are ours only before '--'; main(argv) reads argv, not sys.argv ----------

FLAG_PLACES = [
    # (argv, JSON error expected on stdout, debug detail expected)
    (["shell", "--json", "--", "jq"], True, False),
    (["shell", "--", "jq", "--json"], False, False),
    (["shell", "--", "grep", "--debug"], False, False),
    (["--json", "status", "--", "x", "--json"], True, False),
]


@pytest.mark.parametrize("argv,json_error,debug", FLAG_PLACES)
def test_json_and_debug_after_double_dash_belong_to_the_command(env, capsys, argv, json_error, debug):
    code, out, err = run(argv, capsys)  # no kubeconfig: every one of these fails
    assert code == 7, err
    assert (out.strip().startswith("{") and '"error"' in out) is json_error, out
    assert ("debug:" in err) is debug
    assert len(err.strip().splitlines()) == 1


def test_in_process_main_reads_its_argument_not_sys_argv(env, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["webservice", "--json", "--debug", "status"])
    code, out, err = run(["status"], capsys)
    assert code == 7 and out == ""  # sys.argv's --json would have printed a JSON error
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("typed,successor", [("php7.4", "php8.4"), ("python3.9", "python3.13"), ("node16", "node20")])
def test_a_deprecated_type_starts_with_a_warning_naming_its_successor(env, capsys, typed, successor):
    code, out, err = run(["--dry-run", typed, "start"], capsys)
    assert code == 0 and out
    assert err.strip() == (f"webservice: warning: type {typed} is deprecated and will be removed; "
                           f"move to {successor} (see 'webservice types')")


# --- only the site config sets routing hosts (issue 16, defect 2) -------------------------------

HOST_SOURCES = [
    # (where, key, value, accepted, host routed)
    ("env", "WEBSERVICE_LEGACY_HOST", "othertool.toolforge.org", False, None),
    ("env", "WEBSERVICE_PROJECT", "evil", False, None),
    ("user", "legacy_host", "othertool.toolforge.org", False, None),
    ("user", "project", "evil", False, None),
    ("site", "legacy_host", "legacy.example.org", True, "legacy.example.org"),
    ("site", "project", "toolsbeta", True, "toolsbeta.wmflabs.org"),
    (None, None, None, True, "tools.wmflabs.org"),
]


@pytest.mark.parametrize("where,key,value,accepted,host", HOST_SOURCES)
def test_legacy_host_comes_only_from_the_site_config(env, capsys, monkeypatch, where, key, value, accepted, host):
    if where == "env":
        monkeypatch.setenv(key, value)
    elif where == "user":
        path = Path(env["XDG_CONFIG_HOME"]) / "toolforge" / "webservice.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(f"{key}: {value}\n")
    # a site with an ingress controller: legacy path routing on <project>.wmflabs.org by default
    Path(env["WEBSERVICE_SITE_CONFIG"]).write_text("routing: ingress\n" + (f"{key}: {value}\n" if where == "site"
                                                                         else ""))
    code, out, err = run(["--dry-run", "--routing", "legacy-path", "python3.11", "start"], capsys)
    if not accepted:
        assert code == 2 and out == ""
        assert f"{key.removeprefix('WEBSERVICE_').lower()} " in err and "only the site config sets routing hosts" in err
        assert len(err.strip().splitlines()) == 1
        return
    assert code == 0, err
    ingress = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "Ingress"]
    assert [r["host"] for i in ingress for r in i["spec"]["rules"]] == [host]


# --- legacy path routing where the site does not serve it (issue 14 section 1) -------------------

LEGACY_REFUSED = [
    # (site config, how legacy-path is asked for, where the message says it came from)
    ("", ["--routing", "legacy-path"], "--routing legacy-path"),  # today's Toolforge: no site file
    ("public_domain: toolforge.org\n", ["--routing", "legacy-path"], "--routing legacy-path"),
    ("routing: httproute\nproject: toolsbeta\n", ["--routing", "legacy-path"], "--routing legacy-path"),
    ("", "env", "environment variable WEBSERVICE_ROUTING"),
    ("", "user", "webservice.yaml"),
    ("", "user-host", "--routing legacy-path"),  # a user's legacy_host does not make the site serve it
]


@pytest.mark.parametrize("site,how,where", LEGACY_REFUSED, ids=[f"{s!r}-{h}" for s, h, _ in LEGACY_REFUSED])
@pytest.mark.parametrize("action", ["start", "restart"])
def test_legacy_path_is_refused_up_front_where_the_site_does_not_serve_it(env, capsys, monkeypatch, site, how,
                                                                          where, action):
    Path(env["WEBSERVICE_SITE_CONFIG"]).write_text(site)
    user = Path(env["XDG_CONFIG_HOME"]) / "toolforge" / "webservice.yaml"
    user.parent.mkdir(parents=True)
    argv = ["--dry-run", "python3.11", action]
    if how == "env":
        monkeypatch.setenv("WEBSERVICE_ROUTING", "legacy-path")
    elif how == "user":
        user.write_text("routing: legacy-path\n")
    elif how == "user-host":
        user.write_text("legacy_host: tools.wmflabs.org\n")
        argv += ["--routing", "legacy-path"]
    else:
        argv += how
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    asked, _, why = line.partition(": this site does not serve legacy path routing")
    assert why, line
    assert asked.startswith("webservice: error: ") and where in asked, line  # says where it was asked for
    assert "use the default routing (--routing httproute), which serves https://mytool.toolforge.org/" in line


@pytest.mark.parametrize("site", ["routing: ingress\n", "routing: legacy-path\n", "legacy_host: tools.wmflabs.org\n",
                                  "routing: httproute\nlegacy_host: legacy.example.org\n"])
def test_legacy_path_is_not_refused_where_the_site_serves_it(env, capsys, site):
    Path(env["WEBSERVICE_SITE_CONFIG"]).write_text(site)
    code, out, err = run(["--dry-run", "--routing", "legacy-path", "python3.11", "start"], capsys)
    assert code == 0, err
    assert list(yaml.safe_load_all(out))[-1]["metadata"]["name"] == "mytool-legacy"


def test_a_legacy_path_setting_does_not_stop_other_actions(env, capsys, monkeypatch):
    """Only start and restart build routing: 'types' (like status, stop, logs, shell) is not
    refused because of WEBSERVICE_ROUTING=legacy-path."""
    monkeypatch.setenv("WEBSERVICE_ROUTING", "legacy-path")
    code, out, err = run(["types"], capsys)
    assert code == 0, err
    assert "python3.11" in out


def _pod_contexts(out: str) -> tuple[dict, dict]:
    deployment = next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    return pod["securityContext"], pod["containers"][0]["securityContext"]


@pytest.mark.parametrize("site,env_uid,uid,gid", [
    ("", None, None, None),  # no such account here, nothing configured: the image's user, still non-root
    ("run_as_uid: 52503\nrun_as_gid: 52504\n", None, 52503, 52504),
    ("run_as_uid: 52503\n", "1234", 52503, None),  # the environment cannot change who pods run as
])
def test_pods_run_as_the_site_or_account_ids_never_as_root(env, capsys, monkeypatch, site, env_uid, uid, gid):
    Path(env["WEBSERVICE_SITE_CONFIG"]).write_text(site)
    if env_uid:
        monkeypatch.setenv("WEBSERVICE_RUN_AS_UID", env_uid)
    code, out, err = run(["--dry-run", "python3.11", "start"], capsys)
    assert code == 0, err
    pod, container = _pod_contexts(out)
    assert pod.get("runAsUser") == uid and pod.get("runAsGroup") == gid and pod.get("fsGroup") == gid
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False,
                         "runAsNonRoot": True, **({"runAsUser": uid} if uid else {}),
                         **({"runAsGroup": gid} if gid else {})}


def test_who_pods_run_as_cannot_be_set_in_the_user_config(env, capsys):
    path = Path(env["XDG_CONFIG_HOME"]) / "toolforge" / "webservice.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("run_as_uid: 1234\n")
    code, out, err = run(["--dry-run", "python3.11", "start"], capsys)
    assert code == 2 and "'run_as_uid' may only be set in the site config" in err and out == ""


def test_a_tool_account_runs_its_pods_as_itself(env, capsys, monkeypatch):
    import webservice.model.tool as tool_mod

    monkeypatch.setattr(tool_mod, "account_ids", lambda user: (52503, 52503) if user == "tools.mytool" else (None, None))
    code, out, err = run(["--dry-run", "python3.11", "start"], capsys)
    pod, container = _pod_contexts(out)
    assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (52503, 52503, 52503)
    assert (container["runAsUser"], container["runAsGroup"]) == (52503, 52503)
# --- service.template and service.manifest as users (and 0.98) left them -----------------------

M098 = "# This file is used by Toolforge infrastructure.\n# Please do not edit manually at this time.\n"

STATE_FILES_ACCEPTED = [
    # (id, service.template or None, service.manifest or None, argv after "start --dry-run",
    #  image ending, command tail or None, warning lines expected (substrings, in order))
    ("0.98 buildservice-image for php", None,
     M098 + "backend: kubernetes\nbuildservice-image: tool-mytool/tool-mytool:latest\nversion: 4\nweb: php7.4\n",
     [], "toolforge-php74-sssd-web:latest", None, ["type php7.4 is deprecated"]),
    ("manifest v2 extra_args string", None,
     "backend: kubernetes\nversion: 2\nweb: golang1.11\nweb::extra_args: ./server --port 8000\n",
     [], "toolforge-golang111-sssd-web:latest", ["./server", "--port", "8000"], []),
    ("manifest gridengine", None, M098 + "backend: gridengine\ncanonical: true\nrelease: buster\nversion: 4\nweb: php8.2\n",
     [], "toolforge-php82-sssd-web:latest", None,
     ["service.manifest: ignored 'backend: gridengine' (the grid engine was retired in 2024"]),
    ("manifest unknown old type, type given", None, "backend: gridengine\nversion: 4\nweb: lighttpd\n",
     ["php8.2"], "toolforge-php82-sssd-web:latest", None, ["ignored 'backend: gridengine'"]),
    ("explicit type wins over stored extra_args", None,
     "backend: kubernetes\nversion: 4\nweb: golang1.11\nweb::extra_args: [./server]\n",
     ["php8.2"], "toolforge-php82-sssd-web:latest", None, []),
    ("template extra_args empty string", "type: python3.11\nextra_args: ''\n", None, [],
     "toolforge-python311-sssd-web:latest", None, []),
    ("template extra_args string", "type: golang1.11\nextra_args: ./start.sh --port 8000\n", None, [],
     "toolforge-golang111-sssd-web:latest", ["./start.sh", "--port", "8000"], ["key 'extra_args' is a string"]),
    ("template unknown keys, any order", "replica: 2\nmemory: 1Gi\ncanonical: true\ntype: php8.2\n", None, [],
     "toolforge-php82-sssd-web:latest", None,
     ["Your template file (service.template) contains unknown keys: replica (did you mean 'replicas'?), "
      "memory (did you mean 'mem'?), canonical"]),
    ("template gridengine", "backend: gridengine\ntype: php8.2\n", None, [], "toolforge-php82-sssd-web:latest", None,
     ["ignored 'backend: gridengine'"]),
    ("manifest mount none of another type", None,
     M098 + "backend: kubernetes\nbuildservice-image: tool-mytool/tool-mytool:latest\nmount: none\nversion: 4\n"
     "web: buildservice\n", ["php8.2"], "toolforge-php82-sssd-web:latest", None, []),
    ("template image without a type means buildservice",
     "buildservice-image: tool-mytool/haproxy:latest\nmount: none\n", None, [],
     "tools-harbor.wmcloud.org/tool-mytool/haproxy:latest", None, []),
    ("template buildservice-image for php", "type: php8.2\nbuildservice-image: tool-mytool/web\n", None, [],
     "toolforge-php82-sssd-web:latest", None, ["key 'buildservice-image' ignored: it only applies to the buildservice"]),
]


@pytest.mark.parametrize("template,manifest,argv,image,command,warnings",
                         [c[1:] for c in STATE_FILES_ACCEPTED], ids=[c[0] for c in STATE_FILES_ACCEPTED])
def test_state_files_as_left_are_accepted_template_and_manifest(env, capsys, template, manifest, argv, image,
                                                                 command, warnings):
    home = Path(env["HOME"])
    if template is not None:
        (home / "service.template").write_text(template)
    if manifest is not None:
        (home / "service.manifest").write_text(manifest)
    before = _snapshot(home)
    code, out, err = run(["start", "--dry-run", *argv], capsys)
    assert code == 0, err
    container = next(yaml.safe_load_all(out))["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(image), container["image"]
    if command is not None:
        assert container["command"][-len(command):] == command
    elif argv and manifest and "extra_args" in manifest:
        assert "./server" not in container["command"]  # stored for another type: not applied
    lines = err.splitlines()
    assert all(line.startswith("webservice: warning: ") for line in lines), err
    position = 0
    for expected in warnings:
        found = [i for i, line in enumerate(lines) if expected in line and i >= position]
        assert found, (expected, err)
        position = found[0] + 1
    assert _snapshot(home) == before  # --dry-run writes nothing


STATE_FILES_REFUSED = [
    # (id, template, manifest, argv, the one error line must start with)
    ("cli gridengine", None, None, ["php8.2", "--backend", "gridengine"],
     "webservice: error: the grid engine backend is retired"),
    ("template mount none for php", "type: php8.2\nmount: none\n", None, [],
     "webservice: error: service.template ({home}/service.template) key 'mount' is 'none', which only works"),
    ("option mount none for php", None, None, ["php8.2", "--mount", "none"],
     "webservice: error: --mount is 'none', which only works"),
    ("manifest mount none for php", None, "version: 4\nweb: php8.2\nmount: none\n", [],
     "webservice: error: service.manifest key 'mount' is 'none', which only works"),
    ("manifest replicas 0", None, "version: 4\nweb: php8.2\nreplicas: 0\n", [],
     "webservice: error: service.manifest key 'replicas' must be a whole number from 1 to 16, got '0'"),
    ("template replicas 0", "type: php8.2\nreplicas: 0\n", None, [],
     "webservice: error: service.template ({home}/service.template): key 'replicas' must be a whole number"),
    ("manifest unknown old type", None, "backend: kubernetes\nversion: 4\nweb: lighttpd\n", [],
     "webservice: error: service.manifest key 'web': unknown webservice type 'lighttpd'"),
    ("template unknown type", "type: php5.6\n", None, [],
     "webservice: error: service.template ({home}/service.template) key 'type': unknown webservice type 'php5.6'"),
    ("manifest bad cpu", None, "version: 4\nweb: php8.2\ncpu: lots\n", [],
     "webservice: error: service.manifest key 'cpu'"),
    ("template bad mem", "type: php8.2\nmem: 1.5 Gi\n", None, [],
     "webservice: error: service.template ({home}/service.template) key 'mem'"),
    ("template not a mapping", "- type: php8.2\n", None, [],
     "webservice: error: service.template ({home}/service.template): must be a YAML mapping"),
    ("template wrong type of a known key", "type: php8.2\ncpu: [1]\n", None, [],
     "webservice: error: service.template ({home}/service.template): key 'cpu' must be"),
]


@pytest.mark.parametrize("template,manifest,argv,start", [c[1:] for c in STATE_FILES_REFUSED],
                         ids=[c[0] for c in STATE_FILES_REFUSED])
def test_state_file_refusals_name_their_source_template_and_manifest(env, capsys, template, manifest, argv, start):
    home = Path(env["HOME"])
    if template is not None:
        (home / "service.template").write_text(template)
    if manifest is not None:
        (home / "service.manifest").write_text(manifest)
    code, out, err = run(["start", "--dry-run", *argv], capsys)
    assert code == 2, err
    errors = [line for line in err.splitlines() if not line.startswith("webservice: warning: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith(start.format(home=home)), errors[0]
    assert "--mount none" not in err or "--mount" in argv  # never an option the user did not give


def test_manifest_unknown_type_hint_suggests_a_current_type(env, capsys):
    (Path(env["HOME"]) / "service.manifest").write_text("version: 4\nweb: uwsgi-python\n")
    code, out, err = run(["start", "--dry-run"], capsys)
    assert code == 2 and "webservice python3.13 start" in err, err
