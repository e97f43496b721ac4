"""``webservice-admission``: the console command of the route admission webhook.

``webservice-admission serve [--listen HOST:PORT] [--tls-cert PEM] [--tls-key PEM]
[--domains a,b] [--debug/--no-debug] [--gateways ns/name,...] [--catch-all-tool TOOL]
[--exempt-namespaces a,b] [--legacy-host HOST] [--max-body-bytes N]
[--shutdown-timeout S]``. Each option falls back to the Go webhook's environment variable
(``webservice.webhook.config``). A bad setting or a certificate that does not load is one
line on stderr and exit 2; SIGTERM (and SIGINT) stop it gracefully with exit 0.
"""

from __future__ import annotations

import logging
import signal
import ssl
import sys
import threading

import click

from webservice.errors import ConfigError

PROG = "webservice-admission"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """The Toolforge route admission webhook (Ingress and HTTPRoute host rule)."""


@cli.command("serve")
@click.option("--listen", help="[host]:port to listen on (env LISTENON, default 0.0.0.0:8080).")
@click.option("--tls-cert", help="Server certificate PEM (env TLSCERT); reloaded when it changes.")
@click.option("--tls-key", help="Server key PEM (env TLSKEY); reloaded when it changes.")
@click.option("--domains", help="Comma-separated public domains (env DOMAINS).")
@click.option("--debug/--no-debug", default=None, help="Log every review (env DEBUG).")
@click.option("--gateways", help="Comma-separated namespace/name Gateways routes may attach to (env GATEWAYS).")
@click.option("--catch-all-tool", help="The tool that may hold *.<domain> (env CATCHALLTOOL, default fourohfour).")
@click.option("--exempt-namespaces", help="Comma-separated namespaces always allowed (env EXEMPTNAMESPACES).")
@click.option("--legacy-host", help="Shared host where /<tool> path routing is allowed (env LEGACYHOST).")
@click.option("--max-body-bytes", help="Largest request body accepted (env MAXBODYBYTES, default 3 MiB).")
@click.option("--shutdown-timeout", type=float, default=25.0, show_default=True,
              help="Seconds to let requests in flight finish after SIGTERM.")
def serve(shutdown_timeout, **flags):
    """Serve AdmissionReviews over HTTPS until SIGTERM."""
    from webservice.webhook.config import load
    from webservice.webhook.server import WebhookServer

    try:
        config = load(flags)
    except ConfigError as error:
        fail(str(error))
    logging.basicConfig(level=logging.DEBUG if config.debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        server = WebhookServer(config)
    except (OSError, ssl.SSLError, ValueError) as error:
        what = "cannot load the TLS certificate/key" if isinstance(error, ssl.SSLError) else "cannot start"
        fail(f"{what} ({config.tls_cert}, {config.tls_key}, {config.host or '0.0.0.0'}:{config.port}): {error}")
    log = logging.getLogger("webservice.builders.admission")

    def stop(signum, frame):
        log.info("%s received: shutting down, finishing requests in flight", signal.Signals(signum).name)
        threading.Thread(target=server.shutdown, name="shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host = config.host or "0.0.0.0"
    log.info("listening on https://%s:%d (domains %s, gateways %s, catch-all %s, exempt %s, legacy host %s)",
             f"[{host}]" if ":" in host else host, server.port, ",".join(config.domains),
             ",".join(f"{ns}/{n}" for ns, n in config.gateways) or "unchecked", config.catch_all_tool or "none",
             ",".join(sorted(config.exempt_namespaces)) or "none", config.legacy_host or "none")
    server.serve_forever(poll_interval=0.5)
    drained = server.drain(shutdown_timeout)
    server.close_pipe()
    log.info("stopped%s", "" if drained else f" (connections still open after {shutdown_timeout:g} s)")


def fail(message: str):
    click.echo(f"{PROG}: {message}", err=True)
    sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    """The console entry point; a usage error is one line (``webservice-admission: ...``), exit 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:  # as click 8.1 and 8.2+ differ here: the help, on stderr, and exit 2
        with click.Context(cli, info_name=PROG, help_option_names=["-h", "--help"]) as ctx:
            click.echo(cli.get_help(ctx), err=True)
        return 2
    try:
        code = cli.main(args=args, prog_name=PROG, standalone_mode=False)
    except click.ClickException as error:
        click.echo(f"{PROG}: {error.format_message()} (see '{PROG} serve --help')", err=True)
        return error.exit_code
    except click.exceptions.Abort:
        return 1
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return code if isinstance(code, int) else 0
