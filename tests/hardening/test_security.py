"""Security: webservice only touches its own objects in its own namespace, refuses
look-alike routing hosts before sending, never shows key material, runs programs from
argument lists, escapes what the 404 page echoes, writes files safely and does not
follow symlinked state files."""

from __future__ import annotations

import ast
import base64
import copy
import html.parser
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.hardening.conftest import SETTINGS, TRACEBACK, fake_kubectl, run_in

WEB = {"app.kubernetes.io/component": "web", "app.kubernetes.io/managed-by": "webservice"}
MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def _one_error_line(result) -> None:
    err = result.stderr if hasattr(result, "stderr") else result.err
    assert not TRACEBACK.search(err), err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("webservice: error: "), err


# --- other workloads in the namespace ----------------------------------------------------------


def _pod_spec(image="docker-registry.tools.wmflabs.org/toolforge-bookworm-sssd:latest"):
    return {"containers": [{"name": "main", "image": image, "command": ["sleep", "1000"]}]}


def _deployment(name, labels, namespace):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": _pod_spec()}}}


def _others(standin) -> list[tuple[str, str, str]]:
    """Seed workloads that are not the webservice; return (kind, namespace, name) of each."""
    ns, other_ns = standin.namespace, "tool-othertool"
    jobs = {"toolforge": "tool", "name": "myjob", "app.kubernetes.io/managed-by": "toolforge-jobs-framework",
            "app.kubernetes.io/component": "deployments"}
    created = [
        standin.create(_deployment("myjob", jobs, ns)),
        # a look-alike: our component, someone else's manager, the tool's own name label
        standin.create(_deployment("mytool-lookalike", {"name": "mytool", "app.kubernetes.io/component": "web",
                                                        "app.kubernetes.io/managed-by": "helm"}, ns)),
        standin.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "mytool-debug", "namespace": ns, "labels": {"name": "mytool", "app": "debug"}}, "spec": _pod_spec()}),
        standin.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "shell-0123456789", "namespace": ns, "labels": {
                "name": "shell-0123456789", "toolforge": "tool", "app.kubernetes.io/component": "webservice-interactive",
                "app.kubernetes.io/managed-by": "webservice"}}, "spec": _pod_spec()}),
        standin.create({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {
            "name": "mytool-manual", "namespace": ns, "labels": {"name": "mytool"}},
            "spec": {"rules": [{"host": "mytool.toolforge.org", "http": {"paths": [{
                "path": "/manual", "pathType": "Prefix",
                "backend": {"service": {"name": "mytool", "port": {"number": 8000}}}}]}}]}}),
        # the webservice of another tool, with exactly our labels
        standin.create(_deployment("othertool", {"toolforge": "tool", "name": "othertool", **WEB}, other_ns)),
    ]
    return [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in created]


def _versions(standin, keys) -> dict:
    out = {}
    for kind, ns, name in keys:
        obj = standin.get(kind, ns, name)
        # not resourceVersion: the controller simulation updates status
        spec = {k: v for k, v in (obj or {}).get("spec", {}).items() if k != "nodeName"}  # scheduled meanwhile
        out[(kind, ns, name)] = None if obj is None else (obj["metadata"]["uid"], copy.deepcopy(spec),
                                                          copy.deepcopy(obj["metadata"].get("labels")),
                                                          obj["metadata"].get("deletionTimestamp"))
    return out


def test_only_its_own_objects_are_changed_or_deleted(row, tool_env):
    row.describe("security", "other workloads present (jobs Deployment, look-alike Deployment, pods, shell pod, "
                             "manual Ingress, other tool's webservice): start, restart, stop leave them alone")
    standin = tool_env.standin
    standin.set_quota({"pods": "12", "requests.cpu": "8", "limits.cpu": "8", "requests.memory": "16Gi",
                       "limits.memory": "16Gi"})
    keys = _others(standin)
    standin.wait_for(lambda: len(standin.pods(standin.namespace)) >= 4, timeout=10)
    before = _versions(standin, keys)
    standin.clear_requests()
    for args in (["python3.11", "start"], ["restart", "--no-wait"], ["stop"]):
        result = run_in(tool_env, *args)
        row.case()
        assert result.code == 0, (args, result.err)
    for rec in standin.requests:
        if rec.method in MUTATING:
            assert "/namespaces/tool-mytool/" in rec.path, rec
            name = rec.path.rstrip("/").split("/")[-1]
            assert name in ("mytool", "mytool-subdomain"), rec
        if rec.method == "DELETE":  # deleted only that exact object
            assert (rec.body or {}).get("preconditions", {}).get("uid"), rec
    assert _versions(standin, keys) == before
    assert not [d for d in standin.objects("Deployment", standin.namespace) if d["metadata"]["name"] == "mytool"]


def test_other_tool_is_refused_before_sending(row, tool_env):
    row.describe("security", "--tool othertool with this tool's credentials: refused before any request")
    for args in (["python3.11", "start", "--tool", "othertool"], ["stop", "--tool", "othertool"],
                 ["status", "--tool", "othertool"]):
        tool_env.standin.clear_requests()
        result = run_in(tool_env, *args)
        row.case()
        assert result.code == 7, result.err
        _one_error_line(result)
        assert tool_env.standin.requests == []


# --- routing hosts ----------------------------------------------------------------------------

CONFUSABLES = {"o": ["о", "ο", "０", "ｏ"], "l": ["ӏ", "1", "ı"], "e": ["е", "ё"], "a": ["а"], ".": ["。", "．", "\u2024"],
               "t": ["т"], "r": ["г"], "g": ["ɡ"], "m": ["м", "ｍ"]}


@st.composite
def lookalike(draw, host: str):
    """A host that is not exactly ``host`` but may look like it."""
    how = draw(st.sampled_from(["suffix", "prefix", "case", "dot", "confusable", "invisible", "port", "space",
                                "other-tool", "double-dot"]))
    if how == "suffix":
        return host + draw(st.sampled_from([".evil.example", "-evil.example", ".", "x", ".org", "\x00.evil"]))
    if how == "prefix":
        return draw(st.sampled_from(["evil.", "evil-", "x", "*."])) + host
    if how == "case":  # DNS ignores case, so only a case trick on top of another one is a look-alike
        # (REFERENCE 6: exact, case-insensitive equality is the rule)
        host += draw(st.sampled_from([".evil.example", ".", "\u200b", ":80"]))
        flips = draw(st.lists(st.booleans(), min_size=len(host), max_size=len(host)))
        return "".join(c.upper() if f else c for c, f in zip(host, flips))
    if how == "dot":
        return host + "."
    if how == "confusable":
        positions = [i for i, c in enumerate(host) if c in CONFUSABLES]
        i = draw(st.sampled_from(positions))
        return host[:i] + draw(st.sampled_from(CONFUSABLES[host[i]])) + host[i + 1:]
    if how == "invisible":
        i = draw(st.integers(0, len(host)))
        return host[:i] + draw(st.sampled_from(["\u200b", "\u00ad", "\ufeff", "\u2060"])) + host[i:]
    if how == "port":
        return host + ":443"
    if how == "space":
        return draw(st.sampled_from([" ", "\t", "\n"])) + host
    if how == "other-tool":
        return host.replace("mytool", draw(st.sampled_from(["othertool", "mytool2", "my-tool", "mytoo"])), 1)
    return host.replace(".", "..", 1)


def _built_routing(routing: str):
    from webservice.model.catalogue import load_catalogue
    from webservice.model.config import load_config
    from webservice.builders.objects import build_all
    from webservice.model.spec import resolve_spec
    from webservice.model.tool import Tool

    config = load_config({"routing": routing}, environ={"WEBSERVICE_SITE_CONFIG": "/nonexistent-hardening/x.yaml",
                                                        "WEBSERVICE_CONFIG": "/nonexistent-hardening/y.yaml"})
    catalogue = load_catalogue(Path("/nonexistent-hardening/cache"), ttl=3600, fetch=None)
    spec = resolve_spec(tool=Tool("mytool", "tools", Path("/data/project/mytool"), "override"), config=config,
                        catalogue=catalogue, cli={"type": "python3.11"})
    return build_all(spec)[-1]


@SETTINGS
@given(host=lookalike("mytool.toolforge.org"), routing=st.sampled_from(["ingress", "httproute"]),
       where=st.sampled_from(["rule", "tls"]))
def test_lookalike_hosts_are_refused(row, host, routing, where):
    from webservice.builders.admission import check_routing
    from webservice.errors import AdmissionError

    row.describe("security", "look-alike routing hosts (suffix, prefix, case, trailing dot, unicode confusables, "
                             "invisible characters, port, other tool) in Ingress rules/TLS and HTTPRoute hostnames")
    row.case()
    obj = _built_routing(routing)
    check_routing(obj, "mytool", ["toolforge.org"])  # the real one passes
    if routing == "httproute":
        obj["spec"]["hostnames"] = [host]
    elif where == "rule":
        obj["spec"]["rules"][0]["host"] = host
    else:
        obj["spec"]["tls"] = [{"hosts": [host]}]
    with pytest.raises(AdmissionError):
        check_routing(obj, "mytool", ["toolforge.org"])


LOOKALIKE_DOMAINS = ["TOOLFORGE.ORG", "toolforge.org.", "toolforgе.org", "toolforge。org", " toolforge.org",
                     "toolforge.org/evil", "toolforge.org\u200b"]


@pytest.mark.parametrize("domain", LOOKALIKE_DOMAINS)
def test_lookalike_domain_from_config_sends_nothing(row, tool_env, domain):
    row.describe("security", f"look-alike public_domain {domain!r} from the environment: refused before any request")
    row.case()
    tool_env.standin.clear_requests()
    result = run_in(tool_env, "python3.11", "start", env_extra={"WEBSERVICE_PUBLIC_DOMAIN": domain})
    assert result.code == 2, result.err
    _one_error_line(result)
    assert tool_env.standin.requests == []


def test_suffix_lookalike_domain_from_config_sends_nothing(row, tool_env):
    row.describe("security", "look-alike public_domain 'toolforge.org.evil.example' from the environment: "
                             "refused before sending")
    row.case()
    tool_env.standin.clear_requests()
    result = tool_env.run("python3.11", "start", env_extra={"WEBSERVICE_PUBLIC_DOMAIN": "toolforge.org.evil.example"})
    sent = [r for r in tool_env.standin.requests if r.method in MUTATING and "/ingresses" in r.path]
    assert sent == [], sent
    assert result.returncode == 2


# --- secrets never shown -----------------------------------------------------------------------


def _secrets(tool_env) -> list[str]:
    """Strings that must never be printed: PEM body lines and base64 of the key and cert."""
    toolskube = Path(tool_env.home) / ".toolskube"
    found = []
    for name in ("client.key", "client.crt"):
        pem = (toolskube / name).read_bytes()
        body = [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]
        found += [line for line in body if len(line) >= 40][:6]
        found.append(base64.b64encode(pem).decode()[:60])
        der = base64.b64decode("".join(body))
        found.append(der.hex()[:60])
    return found


def _inline_kubeconfig(tool_env, *, token: str | None = None, break_key: bool = False) -> str:
    data = yaml.safe_load(Path(tool_env.kubeconfig).read_text())
    user = data["users"][0]["user"]
    base = Path(tool_env.kubeconfig).parent
    crt = (base / user.pop("client-certificate")).read_bytes()
    key = (base / user.pop("client-key")).read_bytes()
    if break_key:
        key = key.replace(b"\n", b"\nAAAA", 3)
    user["client-certificate-data"] = base64.b64encode(crt).decode()
    user["client-key-data"] = base64.b64encode(key).decode()
    if token:
        user["token"] = token
    path = Path(tool_env.tmp) / ("broken-kubeconfig" if break_key else "inline-kubeconfig")
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_debug_and_errors_never_show_key_material(row, tool_env):
    row.describe("security", "--debug output and error messages (start, status, logs, stop, bad key, refused "
                             "certificate, token in kubeconfig) never contain key, certificate or token")
    secrets = _secrets(tool_env)
    token = "s3cr3t-token-" + "x" * 20
    inline = _inline_kubeconfig(tool_env, token=token)
    broken = _inline_kubeconfig(tool_env, break_key=True)
    foreign = tool_env.standin.kubeconfig(str(Path(tool_env.tmp) / "foreign"), foreign=True)
    runs = [
        (True, {}, ["python3.11", "start", "--debug"]),
        (False, {}, ["status", "--debug", "--json"]),
        (False, {}, ["logs", "--debug"]),
        (False, {"KUBECONFIG": inline}, ["status", "--debug"]),
        (False, {"KUBECONFIG": inline}, ["restart", "--debug", "--json"]),
        (False, {"KUBECONFIG": broken}, ["status", "--debug"]),
        (True, {"KUBECONFIG": foreign}, ["status", "--debug"]),
        (False, {"KUBECONFIG": foreign}, ["stop", "--debug", "--json"]),
        (False, {}, ["stop", "--debug"]),
    ]
    for real, env, args in runs:
        if real:  # a real process: also whatever the interpreter or libraries print
            done = tool_env.run(*args, env_extra=env)
            code, text, err = done.returncode, done.stdout + done.stderr, done.stderr
        else:
            done = run_in(tool_env, *args, env_extra=env)
            code, text, err = done.code, done.out + done.err, done.err
        row.case()
        assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text, (args, text)
        for secret in secrets + [token]:
            assert secret not in text, (args, secret)
        if code not in (0, 3):
            assert not TRACEBACK.search(err), err


# --- argument lists, never shell strings --------------------------------------------------------

HOSTILE = ["$(touch /tmp/pwned)", "`id`", "; rm -rf ~", "a b", "'\"", "|cat", "&&", "\n", "*", "--overrides={}"]


def test_shell_runs_kubectl_from_an_argument_list(row, tool_env, monkeypatch):
    """``webservice shell -- HOSTILE...``: kubectl gets a list, no shell, the words intact."""
    from webservice.actions import shell as shell_mod
    from webservice.model.request import Request

    row.describe("security", "shell: kubectl started from an argument list (no shell), hostile words passed intact")
    seen = []
    fake_kubectl(monkeypatch, tool_env, seen)
    result = shell_mod.shell(Request(action="shell", type="python3.11", extra_args=tuple(HOSTILE)))
    row.case()
    assert result.exit_code == 0
    (argv, kwargs), = seen
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    assert not kwargs.get("shell")
    assert argv[-len(HOSTILE):] == HOSTILE and argv[-len(HOSTILE) - 1] == "--"


def test_runner_starts_servers_from_argument_lists(row, tmp_path):
    """The real runner starts a real program (it records the argv it got): every hostile
    word arrives intact as one argument, and none of them was run by a shell."""
    from webservice.runner import cli as runner_cli

    row.describe("security", "runner: servers started from argument lists (generic type with hostile words)")
    record = tmp_path / "record.py"
    record.write_text("import json, sys\nopen(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))\n")
    got = tmp_path / "argv.json"
    hostile = [*HOSTILE, f"$(touch {tmp_path}/pwned)", f"`touch {tmp_path}/pwned2`", f"; touch {tmp_path}/pwned3"]
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TOOL_NAME": "mytool"}
    code = runner_cli.run(["--type", "generic", "--port", "8000", "--", sys.executable, str(record), str(got),
                           *hostile], environ=env)
    row.case()
    assert code == 0
    assert json.loads(got.read_text()) == hostile
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("pwned")]


def test_no_shell_strings_anywhere_in_the_product(row):
    """Static check of every module: no shell=True, os.system, os.popen, getoutput."""
    row.describe("security", "static scan of webservice/: no shell=True, os.system, os.popen, "
                             "subprocess.getoutput/getstatusoutput, os.exec* with a shell")
    package = Path(__file__).resolve().parents[2] / "webservice"
    problems = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        row.case()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
                        "getoutput", "getstatusoutput"):
                problems.append(f"{path.name}:{node.lineno}: {name}")
            for keyword in node.keywords:
                if keyword.arg == "shell" and not (isinstance(keyword.value, ast.Constant) and not keyword.value.value):
                    problems.append(f"{path.name}:{node.lineno}: shell={ast.unparse(keyword.value)}")
            if name.startswith("os.exec") and node.args and isinstance(node.args[0], ast.Constant) \
                    and str(node.args[0].value).endswith("sh"):
                problems.append(f"{path.name}:{node.lineno}: {name} of a shell")
    assert problems == []


# --- the 404 page --------------------------------------------------------------------------------

ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "a", "code", "pre", "strong"}


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [name for name, _ in attrs]


HOSTILE_TEXT = st.one_of(st.text(max_size=60), st.sampled_from([
    "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "'onmouseover='x", "&lt;b&gt;", "<!--",
    "</title><script>", "javascript:alert(1)", "%3Cscript%3E", "\u202e<b>", "<svg/onload=x>"]))


@SETTINGS
@given(host=HOSTILE_TEXT, path=HOSTILE_TEXT, query=HOSTILE_TEXT, legacy=st.booleans())
def test_404_page_escapes_what_it_echoes(row, host, path, query, legacy):
    from webservice.fourohfour import make_app

    row.describe("security", "404 page: hostile host, path and query (tags, attributes, comments, unicode) are escaped")
    row.case()
    app = make_app(["toolforge.org"], ["tools.wmflabs.org"])
    environ = {"REQUEST_METHOD": "GET", "HTTP_HOST": ("tools.wmflabs.org" if legacy else host + ".toolforge.org"),
               "PATH_INFO": "/" + path.encode("utf-8", "surrogatepass").decode("latin-1"),
               "QUERY_STRING": query.encode("utf-8", "surrogatepass").decode("latin-1"), "SCRIPT_NAME": ""}
    answers = []
    body = b"".join(app(environ, lambda status, headers: answers.append((status, headers))))
    assert answers[0][0].startswith("404")
    parser = _Tags()
    parser.feed(body.decode("utf-8"))
    assert set(parser.tags) <= ALLOWED_TAGS, parser.tags
    assert set(parser.attrs) <= {"lang", "charset", "name", "content", "href", "class"}, parser.attrs
    assert body.count(b"<script") == 0 and body.count(b"<!--") == 0


# --- files ----------------------------------------------------------------------------------------


def test_files_are_written_with_safe_permissions(row, tool_env):
    row.describe("security", "files written under umask 000 (manifest, lock, catalogue cache): not group- or "
                             "world-writable")
    command = tool_env.command("python3.11", "start")
    done = subprocess.run(command, env=tool_env.env, cwd=tool_env.home, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, preexec_fn=lambda: os.umask(0))
    row.case()
    assert done.returncode == 0, done.stderr
    written = [Path(tool_env.home) / "service.manifest", Path(tool_env.home) / ".service.manifest.lock"]
    cache = Path(tool_env.env["XDG_CACHE_HOME"]) / "webservice"  # (XDG_CACHE_HOME itself exists on real systems)
    written += [cache, *cache.rglob("*")]
    for path in written:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        row.case()
        assert mode & 0o022 == 0, f"{path} has mode {mode:o}"


@pytest.mark.parametrize("name", ["service.manifest", ".service.manifest.lock"])
def test_symlinked_state_files_are_not_followed(row, tool_env, name):
    row.describe("security", f"symlinked {name} pointing at another user's file: start, restart, stop never "
                             "write through it")
    victim = Path(tool_env.tmp) / "victim"
    victim.write_text("precious: data\n")
    link = Path(tool_env.home) / name
    link.symlink_to(victim)
    for args in (["python3.11", "start"], ["python3.11", "restart"], ["stop"]):
        result = run_in(tool_env, *args)
        row.case()
        assert result.code == 2, (args, result.out, result.err)
        _one_error_line(result)
        assert "symbolic link" in result.err
        assert victim.read_text() == "precious: data\n" and link.is_symlink()
