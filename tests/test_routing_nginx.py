"""End-to-end routing with real nginx: Ingress objects -> nginx.conf -> runner-served apps.

nginx is configured from Ingress objects the way ingress-nginx would
(``tests/runner/nginx_ingress.py``), listens on 127.0.0.1 and sends requests to real
``webservice-runner`` servers and to the 404 app as the default backend. Proven here:

* a running tool's ``<tool>.toolforge.org`` reaches its app;
* legacy path routing, in both forms (the seed's regex + rewrite-target + snippet, and
  the snippet-free ``Prefix`` path where the runner redirects): ``/<tool>`` redirects to
  ``/<tool>/`` keeping the query string, ``/<tool>/x?y=1`` reaches the app as
  ``/<tool>/x?y=1``;
* a stopped or unknown tool gets the 404 page (status 404) naming it, served by the
  ``fourohfour`` app deployed as ``docs/fourohfour.rst`` describes.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.runner import nginx_ingress, support
from tests.runner.support import get
from tests.runner.test_runner_lighttpd import PHP_PAGE
from tests.runner.test_runner_uwsgi import APP

DOMAIN = "toolforge.org"
LEGACY_SNIPPETS_HOST = "tools.wmflabs.org"  # a cluster allowing snippet annotations
LEGACY_PLAIN_HOST = "toolsbeta.wmflabs.org"  # a cluster where snippets are disabled
PORT = 8000


def expected_ingress(tool: str, mode: str, domain: str = DOMAIN, legacy_host: str = LEGACY_SNIPPETS_HOST) -> dict:
    """The Ingress webservice itself builds (``mode``: ``subdomain``, ``legacy-snippets``,
    ``legacy``), from a spec resolved exactly as ``webservice start`` resolves it."""
    from pathlib import Path

    from webservice.model.catalogue import load_catalogue
    from webservice.model.config import Config
    from webservice.builders.objects import build_ingress
    from webservice.model.spec import resolve_spec
    from webservice.model.tool import Tool

    config = Config(
        public_domain=domain,
        routing="ingress" if mode == "subdomain" else "legacy-path",
        legacy_snippets=mode == "legacy-snippets",
        legacy_host=legacy_host,
    )
    spec = resolve_spec(
        tool=Tool(name=tool, project="tools", home=f"/data/project/{tool}", source="override"),
        config=config,
        catalogue=load_catalogue(Path("/nonexistent-webservice-cache")),
        cli={"type": "python3.11"},
    )
    return build_ingress(spec)


def test_translator_renders_the_seed_layout_like_ingress_nginx(tmp_path):
    backends = {("tool-beta", "beta", PORT): "127.0.0.1:1"}
    conf = nginx_ingress.render([expected_ingress("beta", "legacy-snippets")], backends, "127.0.0.1:2", 3, str(tmp_path))
    assert 'location ~* "^/beta(/|$)(.*)" {' in conf
    assert conf.index("rewrite ^(/beta)$ $1/ redirect;") < conf.index('rewrite "(?i)/beta(/|$)(.*)" /beta/$2 break;')
    assert 'location ~* "^/" {' in conf  # the rest of the host -> default backend
    conf = nginx_ingress.render([expected_ingress("beta", "legacy", legacy_host="h.example")], backends, "127.0.0.1:2", 3, str(tmp_path))
    assert "location /beta/ {" in conf and "location = /beta {" in conf and "rewrite" not in conf


# ------------------------------------------------------------------------- the stand


class Stand:
    """Three tools behind one nginx, and the 404 app as default backend."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.servers: dict[str, support.Server] = {}
        self.ingresses: dict[str, dict] = {}
        self.nginx = nginx_ingress.Nginx(str(tmp / "nginx"), support.free_port())

    def home(self, tool: str):
        path = self.tmp / tool
        path.mkdir()
        return path

    def backends(self) -> dict:
        return {(f"tool-{t}", t, PORT): f"127.0.0.1:{s.port}" for t, s in self.servers.items()}

    def apply(self) -> None:
        backends = self.backends()
        live = [i for i in self.ingresses.values() if (i["metadata"]["namespace"], i["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"], PORT) in backends]
        self.nginx.start(live, backends, f"127.0.0.1:{self.fourohfour.port}")

    def get(self, host: str, path: str) -> support.Response:
        return get(self.nginx.port, path, host=host)

    def close(self) -> None:
        self.nginx.stop()
        for server in [*self.servers.values(), getattr(self, "fourohfour", None)]:
            if server is not None and server.proc.poll() is None:
                try:
                    server.stop()  # graceful, and nothing may be left behind
                finally:
                    server.kill()


@pytest.fixture(scope="module")
def stand(tmp_path_factory):
    support.require("nginx", "lighttpd", "php-cgi", "uwsgi", "uwsgi-python3")
    tmp = tmp_path_factory.mktemp("routing")
    (tmp / "nginx").mkdir()
    s = Stand(tmp)
    try:
        # the default backend, deployed as docs/fourohfour.rst says: a Python webservice
        # whose app.py imports webservice.fourohfour
        home = s.home("fourohfour")
        (home / "www/python/src").mkdir(parents=True)
        (home / "www/python/src/app.py").write_text("from webservice.fourohfour import application as app\n")
        s.fourohfour = start(home, "uwsgi-python")
        assert get(s.fourohfour.port, "/healthz").status == 200
        # alpha: a Python app on its subdomain
        home = s.home("alpha")
        (home / "www/python/src").mkdir(parents=True)
        (home / "www/python/src/app.py").write_text(APP)
        s.servers["alpha"] = start(home, "uwsgi-python")
        s.ingresses["alpha"] = expected_ingress("alpha", "subdomain")
        # beta: PHP in legacy path mode where snippets are allowed (the seed's form)
        home = s.home("beta")
        (home / "public_html").mkdir()
        (home / "public_html/index.php").write_text(PHP_PAGE)
        s.servers["beta"] = start(home, "lighttpd", WEBSERVICE_PATH_PREFIX="/beta")
        s.ingresses["beta"] = expected_ingress("beta", "legacy-snippets", legacy_host=LEGACY_SNIPPETS_HOST)
        # gamma: a Python app in legacy path mode where snippets are disabled
        home = s.home("gamma")
        (home / "www/python/src").mkdir(parents=True)
        (home / "www/python/src/app.py").write_text(APP)
        s.servers["gamma"] = start(home, "uwsgi-python", WEBSERVICE_PATH_PREFIX="/gamma")
        s.ingresses["gamma"] = expected_ingress("gamma", "legacy", legacy_host=LEGACY_PLAIN_HOST)
        s.apply()
        yield s
    finally:
        s.close()


def start(home, type_name, **env) -> support.Server:
    port = support.free_port()
    return support.start_runner(["--type", type_name, "--port", str(port), "--bind", "127.0.0.1"], home, port, **env)


def path_and_query(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")


# ------------------------------------------------------------------------- the checks


def test_running_tool_host_reaches_its_app(stand):
    r = stand.get("alpha.toolforge.org", "/hello?x=1")
    assert r.status == 200, r
    data = json.loads(r.body)
    assert (data["path_info"], data["query"], data["script_name"]) == ("/hello", "x=1", "")
    assert json.loads(stand.get("alpha.toolforge.org", "/").body)["path_info"] == "/"


@pytest.mark.parametrize(
    "host, tool",
    [(LEGACY_SNIPPETS_HOST, "beta"), (LEGACY_PLAIN_HOST, "gamma")],
    ids=["snippet-form", "snippet-free-form"],
)
def test_legacy_bare_tool_path_redirects_keeping_the_query(stand, host, tool):
    for path, target in ((f"/{tool}", f"/{tool}/"), (f"/{tool}?y=1&z=a%20b", f"/{tool}/?y=1&z=a%20b")):
        r = stand.get(host, path)
        assert r.status in (301, 302), (path, r)
        assert path_and_query(r.headers["location"]) == target, (path, r.headers["location"])
        host_in_location = urlsplit(r.headers["location"]).hostname
        assert host_in_location in (None, host)
        # who answered: nginx's snippet in the seed's form, the runner's server otherwise
        assert ("<center>nginx/" in r.text) == (host == LEGACY_SNIPPETS_HOST), r


def test_legacy_snippet_form_reaches_the_app_with_its_prefix(stand):
    r = stand.get(LEGACY_SNIPPETS_HOST, "/beta/index.php?y=1")
    assert r.status == 200, r
    assert "php says 42" in r.text and "uri=/beta/index.php?y=1" in r.text
    r = stand.get(LEGACY_SNIPPETS_HOST, "/beta/?y=1")
    assert r.status == 200 and "uri=/beta/?y=1" in r.text, r


def test_legacy_snippet_free_form_reaches_the_app_with_its_prefix(stand):
    r = stand.get(LEGACY_PLAIN_HOST, "/gamma/x?y=1")
    assert r.status == 200, r
    data = json.loads(r.body)
    assert data["uri"] == "/gamma/x?y=1"
    assert (data["script_name"], data["path_info"], data["query"]) == ("/gamma", "/x", "y=1")


@pytest.mark.parametrize(
    "host, path, tool",
    [
        ("delta.toolforge.org", "/", "delta"),  # never started: no Ingress
        ("delta.toolforge.org", "/deep/page?x=1", "delta"),
        (LEGACY_SNIPPETS_HOST, "/nosuch/", "nosuch"),
        (LEGACY_SNIPPETS_HOST, "/betax", "betax"),  # not /beta: the regex needs / or the end
        (LEGACY_PLAIN_HOST, "/nosuch/x", "nosuch"),
        (LEGACY_PLAIN_HOST, "/", None),
        ("unknown.example.org", "/", None),
    ],
)
def test_unknown_tools_get_the_404_page(stand, host, path, tool):
    r = stand.get(host, path)
    assert r.status == 404, r
    if tool:
        assert f"become {tool}" in r.text and "is not running" in r.text
    else:
        assert "No webservice here" in r.text


def test_stopped_tool_gets_the_404_page(stand):
    assert stand.get("alpha.toolforge.org", "/").status == 200
    # what "webservice stop" does: the Ingress goes, the pods go
    stand.servers["alpha"].stop()
    del stand.ingresses["alpha"]
    del stand.servers["alpha"]
    stand.apply()
    r = stand.get("alpha.toolforge.org", "/some/page")
    assert r.status == 404 and "become alpha" in r.text, r
    # the other tools are unaffected
    assert stand.get(LEGACY_PLAIN_HOST, "/gamma/").status == 200
