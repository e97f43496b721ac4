"""The 404 page (``webservice.fourohfour``): in-process WSGI calls, and one real server."""

from __future__ import annotations

import html
import io
import re
from wsgiref.util import setup_testing_defaults

import pytest

from webservice import fourohfour


def call(app=None, path="/", host="tools.wmflabs.org", method="GET", query="", **extra):
    environ = {"PATH_INFO": path, "HTTP_HOST": host, "REQUEST_METHOD": method, "QUERY_STRING": query, "wsgi.input": io.BytesIO()}
    environ.update(extra)
    setup_testing_defaults(environ)
    captured = {}

    def start_response(status, headers):
        captured["status"] = status
        captured["headers"] = dict(headers)

    body = b"".join((app or fourohfour.application)(environ, start_response))
    return captured["status"], captured["headers"], body.decode("utf-8")


def visible_text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_subdomain_names_the_tool_and_says_how_to_start_it():
    status, headers, page = call(host="mytool.toolforge.org", path="/some/page")
    assert status == "404 Not Found"
    assert headers["Content-Type"] == "text/html; charset=utf-8" and int(headers["Content-Length"]) == len(page.encode())
    text = visible_text(page)
    assert "The tool \u201cmytool\u201d is not running" in text
    assert "become mytool" in text and "webservice start" in text
    assert 'href="https://wikitech.wikimedia.org/wiki/Help:Toolforge/Web"' in page
    assert "mytool.toolforge.org/some/page" in text


def test_legacy_host_takes_the_first_path_segment():
    _, _, page = call(host="tools.wmflabs.org", path="/other-tool/index.php", query="a=1")
    assert "become other-tool" in page and "tools.wmflabs.org/other-tool/index.php?a=1" in page
    _, _, page = call(host="toolsbeta.wmflabs.org:443", path="/betatool")
    assert "become betatool" in page


@pytest.mark.parametrize(
    "host, path",
    [
        ("tools.wmflabs.org", "/"),
        ("tools.wmflabs.org", "/Not_A_Label/"),
        ("tools.wmflabs.org", "/-bad-/"),
        ("toolforge.org", "/x"),  # the apex is not a tool
        ("a.b.toolforge.org", "/"),  # two labels: not a tool
        ("mytool.toolforge.org.evil.example", "/"),  # the domain must be the suffix
        ("", "/x"),
        ("[::1]:8000", "/x"),
        ("example.org", "/mytool/"),  # unknown host: no guessing from the path
    ],
)
def test_no_valid_tool_name_gives_the_generic_page(host, path):
    status, _, page = call(host=host, path=path)
    assert status == "404 Not Found"
    assert "No webservice here" in page and "become &lt;tool&gt;" in page
    assert "is not running" not in page


def test_hostile_names_are_escaped_never_injected():
    evil = "/<script>alert(1)</script>/\"onmouseover=x'"
    status, _, page = call(host="tools.wmflabs.org", path=evil, query="q=<b>")
    assert status == "404 Not Found"
    assert "<script>" not in page and "<b>" not in page and "\"onmouseover" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "q=&lt;b&gt;" in page
    assert "is not running" not in page  # not a tool name: not presented as one
    _, _, page = call(host="<img src=x>.toolforge.org")
    assert "<img" not in page
    # a very long URL is shortened
    _, _, page = call(path="/" + "a" * 5000)
    assert len(page) < 6000


def test_utf8_paths_are_shown_as_sent():
    raw = "/café/".encode("utf-8").decode("latin-1")  # PEP 3333: PATH_INFO is latin-1-decoded bytes
    _, _, page = call(path=raw)
    assert "café" in page


def test_healthz_and_head():
    status, headers, body = call(path="/healthz", host="anything.example")
    assert (status, body, headers["Content-Type"]) == ("200 OK", "ok\n", "text/plain; charset=utf-8")
    status, headers, body = call(path="/x", host="mytool.toolforge.org", method="HEAD")
    assert status == "404 Not Found" and body == "" and int(headers["Content-Length"]) > 0


def test_headers_keep_the_page_uncached_and_inert():
    _, headers, _ = call(host="mytool.toolforge.org")
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in headers["Content-Security-Policy"]


def test_domains_and_legacy_hosts_are_configurable(monkeypatch):
    app = fourohfour.make_app(domains=["beta.toolforge.org"], legacy_hosts=["legacy.example"])
    assert "become t1" in call(app, host="t1.beta.toolforge.org")[2]
    assert "No webservice here" in call(app, host="t1.toolforge.org")[2]
    assert "become t2" in call(app, host="legacy.example", path="/t2/")[2]
    monkeypatch.setenv("FOUROHFOUR_DOMAINS", "toolforge.org, beta.toolforge.org")
    monkeypatch.setenv("FOUROHFOUR_LEGACY_HOSTS", "legacy.example")
    app = fourohfour.make_app()
    assert "become t3" in call(app, host="T3.Beta.Toolforge.org.")[2]  # case and trailing dot
    assert "become t4" in call(app, host="legacy.example", path="/t4")[2]


def test_served_by_python_m_webservice_fourohfour():
    from tests.runner import support

    server = support.start_fourohfour(support.free_port())
    try:
        r = support.get(server.port, "/x?y=1", host="mytool.toolforge.org")
        assert r.status == 404 and "become mytool" in r.text
        r = support.get(server.port, "/%3Cscript%3E/", host="tools.wmflabs.org")
        assert r.status == 404 and "<script>" not in r.text and "&lt;script&gt;" in r.text
        r = support.get(server.port, "/healthz")
        assert (r.status, r.text) == (200, "ok\n")
        server.wait_output('"GET /healthz HTTP/1.1" 200', stream="stderr")
        assert server.stop(check_orphans=False) == 0 and server.stop_seconds < 3
    finally:
        server.kill()
