"""The webhook's configuration: command-line flags over environment variables over defaults.

Environment variables of the Go webhook it replaces (so its Deployment works unchanged),
with the Go defaults:

============ ====================================================== ===========================
variable     meaning                                                default
============ ====================================================== ===========================
LISTENON     ``[host]:port`` to listen on (``:8080``, ``0.0.0.0:8443``)  ``0.0.0.0:8080``
TLSCERT      server certificate (PEM, chain allowed)                ``/etc/webhook/certs/cert.pem``
TLSKEY       its private key (PEM)                                  ``/etc/webhook/certs/key.pem``
DOMAINS      comma-separated public domains                         ``toolforge.org,toolsbeta.wmflabs.org,toolsbeta.wmcloud.org``
DEBUG        log every review (Go ``ParseBool``: 1/t/true/0/f/false) ``false``
============ ====================================================== ===========================

and this webhook's own: ``GATEWAYS`` (comma-separated ``namespace/name`` the HTTPRoutes
may attach to, default ``istio-gateway/toolforge``; empty: parents are not checked), ``CATCHALLTOOL`` (the tool that may
hold ``*.<domain>``, default ``fourohfour``; empty: none), ``EXEMPTNAMESPACES``
(comma-separated, always allowed, default ``kube-system``), ``LEGACYHOST`` (the shared
legacy host where ``/<tool>`` path routing is allowed; empty, the default: none),
``MAXBODYBYTES`` (largest request body, default 3 MiB).

Every value is checked; a bad one is a ``ConfigError`` naming the flag or variable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping

from webservice.builders.admission import DEFAULT_GATEWAYS, Policy
from webservice.errors import ConfigError

DEFAULTS = {
    "listen": "0.0.0.0:8080",
    "tls_cert": "/etc/webhook/certs/cert.pem",
    "tls_key": "/etc/webhook/certs/key.pem",
    "domains": "toolforge.org,toolsbeta.wmflabs.org,toolsbeta.wmcloud.org",
    "debug": "false",
    "gateways": ",".join(f"{ns}/{name}" for ns, name in DEFAULT_GATEWAYS),
    "catch_all_tool": "fourohfour",
    "exempt_namespaces": "kube-system",
    "legacy_host": "",
    "max_body_bytes": str(3 * 1024 * 1024),
}
# option -> (environment variable, command-line flag)
NAMES = {
    "listen": ("LISTENON", "--listen"),
    "tls_cert": ("TLSCERT", "--tls-cert"),
    "tls_key": ("TLSKEY", "--tls-key"),
    "domains": ("DOMAINS", "--domains"),
    "debug": ("DEBUG", "--debug"),
    "gateways": ("GATEWAYS", "--gateways"),
    "catch_all_tool": ("CATCHALLTOOL", "--catch-all-tool"),
    "exempt_namespaces": ("EXEMPTNAMESPACES", "--exempt-namespaces"),
    "legacy_host": ("LEGACYHOST", "--legacy-host"),
    "max_body_bytes": ("MAXBODYBYTES", "--max-body-bytes"),
}

_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_NAME = re.compile(rf"^{_LABEL}$")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


@dataclass(frozen=True)
class WebhookConfig:
    host: str
    port: int
    tls_cert: str
    tls_key: str
    domains: tuple
    debug: bool
    gateways: tuple
    catch_all_tool: str
    exempt_namespaces: frozenset
    legacy_host: str
    max_body_bytes: int

    def policy(self) -> Policy:
        return Policy.from_options(self.domains, self.legacy_host or None, gateways=self.gateways or None,
                                   catch_all_tool=self.catch_all_tool or None)


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def load(flags: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None) -> WebhookConfig:
    """Layer ``flags`` (option -> value, None: not given) over ``environ`` over DEFAULTS."""
    flags = flags or {}
    environ = os.environ if environ is None else environ
    raw, where = {}, {}
    for option, default in DEFAULTS.items():
        env, flag = NAMES[option]
        if flags.get(option) is not None:
            value, source = flags[option], f"option {flag}"
        elif env in environ:
            value, source = environ[env], f"environment variable {env}"
        else:
            value, source = default, f"default of {flag}"
        raw[option], where[option] = value, source

    def bad(option: str, why: str):
        return ConfigError(f"{where[option]}: {raw[option]!r} {why}")

    listen = str(raw["listen"]).strip()
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise bad("listen", "is not [host]:port (for example :8080 or 0.0.0.0:8443)")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if host and not (_HOST.match(host.lower()) or re.fullmatch(r"[0-9a-fA-F:.]+", host)):
        raise bad("listen", "does not name a host to listen on")

    paths = {}
    for option in ("tls_cert", "tls_key"):
        path = str(raw[option])
        if not path:
            raise bad(option, "is empty: give the PEM file's path")
        paths[option] = path

    domains = tuple(d.lower() for d in _items(str(raw["domains"])))
    if not domains:
        raise bad("domains", "names no domain (comma-separated, e.g. toolforge.org)")
    for domain in domains:
        if not domain.isascii() or not _HOST.match(domain) or domain.startswith("xn--") or ".xn--" in domain:
            raise bad("domains", f"contains {domain!r}, which is not a lowercase ASCII DNS name")

    if isinstance(raw["debug"], bool):
        debug = raw["debug"]
    elif str(raw["debug"]) in _TRUE:
        debug = True
    elif str(raw["debug"]) in _FALSE or str(raw["debug"]) == "":
        debug = False
    else:
        raise bad("debug", "is not a boolean (true/false, 1/0)")

    gateways = []
    for item in _items(str(raw["gateways"])):
        namespace, sep, name = item.partition("/")
        if not sep or not _NAME.match(namespace) or not _NAME.match(name):
            raise bad("gateways", f"contains {item!r}: write each as <namespace>/<name>")
        gateways.append((namespace, name))

    catch_all = str(raw["catch_all_tool"]).strip()
    if catch_all and not _NAME.match(catch_all):
        raise bad("catch_all_tool", "is not a tool name (a DNS label)")

    exempt = frozenset(_items(str(raw["exempt_namespaces"])))
    for namespace in exempt:
        if not _NAME.match(namespace):
            raise bad("exempt_namespaces", f"contains {namespace!r}, which is not a namespace name")

    legacy = str(raw["legacy_host"]).strip().lower()
    if legacy and not _HOST.match(legacy):
        raise bad("legacy_host", "is not a DNS name")

    try:
        max_body = int(str(raw["max_body_bytes"]))
    except ValueError:
        raise bad("max_body_bytes", "is not a number of bytes") from None
    if max_body < 1024:
        raise bad("max_body_bytes", "is too small (at least 1024)")

    return WebhookConfig(host=host, port=int(port_text), tls_cert=paths["tls_cert"], tls_key=paths["tls_key"],
                         domains=domains, debug=debug, gateways=tuple(gateways), catch_all_tool=catch_all,
                         exempt_namespaces=exempt, legacy_host=legacy, max_body_bytes=max_body)
