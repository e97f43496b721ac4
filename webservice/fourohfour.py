"""``fourohfour``: the page a visitor gets where no webservice answers (HTTP 404).

ingress-nginx sends every host or path that no Ingress claims to its default backend;
on Toolforge that is this WSGI application, run by the ``fourohfour`` tool (see
``docs/fourohfour.rst``). A stopped tool has no Ingress, so its visitors land here.

The page names the tool that was asked for, taken from

* the host ``<tool>.<domain>`` (domains: ``$FOUROHFOUR_DOMAINS``, comma-separated,
  default ``toolforge.org``), or
* the first path segment on a legacy host ``<legacy host>/<tool>/...``
  (``$FOUROHFOUR_LEGACY_HOSTS``, default ``tools.wmflabs.org,toolsbeta.wmflabs.org``),

tells visitors that the tool is not running, and its maintainers how to start it
(``become <tool>`` then ``webservice start``). A name that is not a valid tool name
(a DNS label) is never presented as a tool; everything echoed is HTML-escaped.
``/healthz`` answers 200 ``ok``.

Standard library only. ``python3 -m webservice.fourohfour --port 8000`` serves it with
``wsgiref`` (threaded), enough for tests and small deployments; any WSGI server can
load ``webservice.fourohfour:application``.
"""

from __future__ import annotations

import html
import os
import re
import sys

DOCS_URL = "https://wikitech.wikimedia.org/wiki/Help:Toolforge/Web"
DEFAULT_DOMAINS = ("toolforge.org",)
DEFAULT_LEGACY_HOSTS = ("tools.wmflabs.org", "toolsbeta.wmflabs.org")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HOST = re.compile(r"^[A-Za-z0-9.-]+$")

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 42em; margin: 3em auto; padding: 0 1em; line-height: 1.5; color: #202122; }}
h1 {{ font-weight: normal; font-size: 1.8em; }}
code {{ background: #eaecf0; padding: 0.1em 0.3em; border-radius: 2px; }}
pre {{ background: #eaecf0; padding: 0.6em 1em; }}
.url {{ word-break: break-all; color: #54595d; }}
</style>
</head>
<body>
<h1>{heading}</h1>
{body}
<p class="url">Requested: {url}</p>
<p>Documentation: <a href="{docs}">{docs}</a></p>
</body>
</html>
"""

TOOL_BODY = """<p>The tool <strong>{tool}</strong> has no webservice running at the moment, so
there is nothing to show at this address.</p>
<h2>If you are a visitor</h2>
<p>The tool may have been stopped by its maintainers, may be restarting, or may have
moved. Try again in a few minutes. You can find the tool and its maintainers on
<a href="https://toolsadmin.wikimedia.org/tools/id/{tool}">its Toolforge admin page</a>.</p>
<h2>If you maintain this tool</h2>
<p>Log in to a Toolforge bastion (<code>ssh login.toolforge.org</code>) and start the
webservice:</p>
<pre>become {tool}
webservice start</pre>
<p><code>webservice status</code> and <code>webservice logs</code> tell you what it is
doing; see the documentation below for the types and options.</p>
"""

GENERIC_BODY = """<p>There is no webservice running at this address.</p>
<p>If you expected a Toolforge tool here, the tool may be stopped, restarting, or the
address may be wrong. Tool maintainers start a webservice with
<code>become &lt;tool&gt;</code> then <code>webservice start</code> on a Toolforge
bastion.</p>
"""


def _split(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    items = tuple(x.strip().lower().strip(".") for x in value.split(",") if x.strip())
    return items or default


def is_tool_name(name: str) -> bool:
    return bool(_DNS_LABEL.match(name))


def request_host(environ: dict) -> str:
    """The host name asked for, lower case, without port or trailing dot ('' if unusable)."""
    host = environ.get("HTTP_HOST") or environ.get("HTTP_X_FORWARDED_HOST") or ""
    host = host.split(",")[0].strip().lower()
    if host.startswith("["):  # [IPv6]:port
        return ""
    host = host.rsplit(":", 1)[0] if ":" in host else host
    host = host.rstrip(".")
    return host if _HOST.match(host) else ""


def requested_tool(environ: dict, domains=DEFAULT_DOMAINS, legacy_hosts=DEFAULT_LEGACY_HOSTS) -> str | None:
    """The tool the request was for, or None (unknown host, no name, not a tool name)."""
    host = request_host(environ)
    for domain in sorted(domains, key=len, reverse=True):  # beta.toolforge.org before toolforge.org
        if host.endswith("." + domain):
            label = host[: -len(domain) - 1]
            return label if is_tool_name(label) else None
    if host in legacy_hosts:
        path = environ.get("PATH_INFO", "") or ""
        segment = path.lstrip("/").split("/", 1)[0]
        return segment if is_tool_name(segment) else None
    return None


def _requested_url(environ: dict) -> str:
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    url = host + path + ("?" + query if query else "")
    # PATH_INFO is bytes decoded as latin-1 (PEP 3333): show the UTF-8 the client sent
    try:
        url = url.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        pass
    return url if len(url) <= 300 else url[:300] + "\u2026"


def render(tool: str | None, url: str) -> str:
    if tool:
        safe = html.escape(tool)
        title = f"{safe}: no webservice running (404)"
        heading = f"The tool \u201c{safe}\u201d is not running"
        body = TOOL_BODY.format(tool=safe)
    else:
        title = heading = "No webservice here (404)"
        body = GENERIC_BODY
    return PAGE.format(title=title, heading=heading, body=body, url=html.escape(url), docs=DOCS_URL)


def make_app(domains=None, legacy_hosts=None):
    """A WSGI application; ``None`` takes the setting from the environment or the default."""
    domains = tuple(domains) if domains is not None else _split(os.environ.get("FOUROHFOUR_DOMAINS"), DEFAULT_DOMAINS)
    legacy_hosts = tuple(legacy_hosts) if legacy_hosts is not None else _split(os.environ.get("FOUROHFOUR_LEGACY_HOSTS"), DEFAULT_LEGACY_HOSTS)

    def app(environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        if environ.get("PATH_INFO") == "/healthz":
            body = b"ok\n"
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")])
            return [b""] if method == "HEAD" else [body]
        tool = requested_tool(environ, domains, legacy_hosts)
        body = render(tool, _requested_url(environ)).encode("utf-8")
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"),
        ]
        start_response("404 Not Found", headers)
        return [b""] if method == "HEAD" else [body]

    return app


application = make_app()


def serve(port: int, bind: str = "", app=None) -> None:  # pragma: no cover - exercised by subprocess tests
    import signal
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True
        allow_reuse_address = True

    class Handler(WSGIRequestHandler):
        def log_message(self, format, *args):  # one line per request on stderr
            sys.stderr.write("%s - %s\n" % (self.address_string(), format % args))
            sys.stderr.flush()

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    with make_server(bind, port, app or application, server_class=Server, handler_class=Handler) as httpd:
        print(f"fourohfour: serving on {bind or '0.0.0.0'}:{port}", file=sys.stderr, flush=True)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python3 -m webservice.fourohfour", description="Serve the Toolforge 'no webservice here' page (HTTP 404).")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="port (default: $PORT, else 8000)")
    parser.add_argument("--bind", default="", help="address (default: all interfaces)")
    parser.add_argument("--domain", action="append", help="tool domain, <tool>.<domain> (repeatable; default: $FOUROHFOUR_DOMAINS or toolforge.org)")
    parser.add_argument("--legacy-host", action="append", help="legacy host, <host>/<tool>/ (repeatable; default: $FOUROHFOUR_LEGACY_HOSTS or tools.wmflabs.org,toolsbeta.wmflabs.org)")
    args = parser.parse_args(argv)
    app = make_app(
        [d.lower().strip(".") for d in args.domain] if args.domain else None,
        [h.lower().strip(".") for h in args.legacy_host] if args.legacy_host else None,
    )
    serve(args.port, args.bind, app)


if __name__ == "__main__":
    main()
