"""Configuration layering: built-in defaults < site file < user file < environment < CLI.

* site file: ``/etc/toolforge/webservice.yaml`` (``WEBSERVICE_SITE_CONFIG`` overrides the
  path); it keeps the old command's flat format (``public_domain: ...``), so existing
  files stay valid;
* user file: ``webservice.yaml`` in the user's config dir found with platformdirs
  (``$XDG_CONFIG_HOME/toolforge/webservice.yaml``; ``WEBSERVICE_CONFIG`` overrides);
* environment: ``WEBSERVICE_<KEY>`` (``WEBSERVICE_ROUTING=legacy-path``);
* command line: whatever the CLI passes in ``overrides``.

Every value is checked; an invalid file, key or value is a ``ConfigError`` naming the
file (or variable) and the key. This module reads files only; it never talks to a
cluster and imports neither kubernetes nor rich.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from webservice.model.dirs import user_dir
from webservice.errors import ConfigError

SITE_CONFIG = "/etc/toolforge/webservice.yaml"
ROUTING_MODES = ("ingress", "legacy-path", "httproute")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,62}$")
_REGISTRY = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9.]*(:[0-9]+)?(/[-a-z0-9._]+)*$")


@dataclass(frozen=True)
class Config:
    """The settings webservice runs with, after layering. ``sources`` says where each came from."""

    public_domain: str = "toolforge.org"
    buildservice_repository: str = "tools-harbor.wmcloud.org"
    # Gateway API HTTPRoute on the shared Gateway (today's Toolforge: ingress-nginx is gone)
    routing: str = "httproute"
    # legacy path routing (tools.wmflabs.org/<tool>/); empty means "<project>.wmflabs.org"
    legacy_host: str = ""
    # whether ingress-nginx allows snippet annotations on this cluster (off on new clusters)
    legacy_snippets: bool = False
    # the shared Gateway that HTTPRoutes attach to (REFERENCE 8: istio-gateway/toolforge);
    # gateway_section is the listener's name (sectionName), empty: any listener
    gateway_name: str = "toolforge"
    gateway_namespace: str = "istio-gateway"
    gateway_section: str = ""
    # spec.ingressClassName of the Ingresses of ``ingress``/``legacy-path`` routing; empty: none
    ingress_class: str = ""
    # whether the site's ingress controller writes Ingress status.loadBalancer addresses
    # (site config only): start/restart then wait for one and report an Ingress without
    # one as unconfirmed (exit 5), as an HTTPRoute no Gateway controller accepted
    ingress_status: bool = False
    project: str = ""
    catalogue_ttl: int = 3600
    timeout: int = 180
    # the uid and gid pods run as; 0: the tool's Unix account (site config only, for sites
    # whose accounts differ, such as a local development cluster)
    run_as_uid: int = 0
    run_as_gid: int = 0
    # the type 'webservice start' starts when nothing names one (command line, template,
    # manifest); Toolforge's acceptance tests expect php7.4
    default_type: str = "php7.4"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    # the domains the site routes (defaults and site file only): routing hosts are checked
    # against these, so that a user or environment setting cannot aim an Ingress elsewhere
    site_domains: tuple = field(default=(), compare=False)
    # the same for the legacy host and the project (defaults and site file only)
    site_legacy_host: str = field(default="", compare=False)
    site_project: str = field(default="", compare=False)
    # the routing the site itself sets (defaults and site file only): "httproute" means the
    # site routes with the Gateway, "ingress" or "legacy-path" that it runs an ingress
    # controller; it decides the form and availability of legacy path routing
    site_routing: str = field(default="httproute", compare=False)

    def effective_legacy_host(self, project: str) -> str:
        return self.legacy_host or f"{project}.wmflabs.org"

    def site_legacy_host_for(self, project: str) -> str:
        """The legacy host the site routes: never one from the user's config or environment."""
        return self.site_legacy_host or f"{self.site_project or project}.wmflabs.org"

    def legacy_path_kind(self) -> str:
        """The kind of object legacy path routing is on this site: ``HTTPRoute`` where the
        site routes with the Gateway (its own ``routing`` is ``httproute``, the default),
        ``Ingress`` where it routes with an ingress controller (``ingress``/``legacy-path``)."""
        return "HTTPRoute" if self.site_routing == "httproute" else "Ingress"

    def legacy_path_served(self) -> bool:
        """Whether the site serves legacy path routing: a site with an ingress controller
        always did (on ``<project>.wmflabs.org`` unless ``legacy_host`` says otherwise);
        under the Gateway only when the site config names its ``legacy_host`` (the cluster's
        admission then admits ``/<tool>`` paths there; without it only ``<tool>.<domain>``)."""
        return self.legacy_path_kind() == "Ingress" or bool(self.site_legacy_host)


KEYS = tuple(f.name for f in fields(Config) if f.name not in ("sources", "site_domains", "site_legacy_host",
                                                                "site_project", "site_routing"))
# keys only the site file may set: who the pods run as is not the user's to choose
SITE_ONLY = ("run_as_uid", "run_as_gid", "ingress_status")


def _check_host(value: Any) -> str:
    if not isinstance(value, str) or not _HOST.fullmatch(value):
        raise ValueError("a lowercase DNS name such as toolforge.org")
    return value


def _check_optional_host(value: Any) -> str:
    return "" if value in ("", None) else _check_host(value)


def _check_name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError("a Kubernetes name (lowercase letters, digits, '-')")
    return value


def _check_optional_name(value: Any) -> str:
    return "" if value in ("", None) else _check_name(value)


def _check_registry(value: Any) -> str:
    if not isinstance(value, str) or not _REGISTRY.fullmatch(value):
        raise ValueError("a registry host name, such as tools-harbor.wmcloud.org")
    return value


def _check_type_name(value: Any) -> str:
    if not isinstance(value, str) or not _TYPE.fullmatch(value):
        raise ValueError("a webservice type name such as php8.2")
    return value


def _check_routing(value: Any) -> str:
    if value not in ROUTING_MODES:
        raise ValueError("one of " + ", ".join(ROUTING_MODES))
    return value


def _check_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
        return value.lower() in ("true", "yes", "1", "on")
    raise ValueError("true or false")


def _check_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise ValueError("a uid or gid (a whole number; 0 means the tool's own account)")
    return value


def _check_positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a whole number of seconds")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: .inf in YAML
        raise ValueError("a whole number of seconds") from None
    if number <= 0 or number > 10**7 or (isinstance(value, float) and value != number):
        raise ValueError("a whole number of seconds, more than 0")
    return number


CHECKS = {
    "public_domain": _check_host,
    "buildservice_repository": _check_registry,
    "routing": _check_routing,
    "legacy_host": _check_optional_host,
    "legacy_snippets": _check_bool,
    "gateway_name": _check_name,
    "gateway_namespace": _check_name,
    "gateway_section": _check_optional_name,
    "ingress_class": _check_optional_name,
    "ingress_status": _check_bool,
    "project": _check_optional_name,
    "catalogue_ttl": _check_positive_int,
    "timeout": _check_positive_int,
    "run_as_uid": _check_id,
    "run_as_gid": _check_id,
    "default_type": _check_type_name,
}


def user_config_path(environ: Mapping[str, str]) -> str:
    if environ.get("WEBSERVICE_CONFIG"):
        return environ["WEBSERVICE_CONFIG"]
    return os.path.join(user_dir("config", "toolforge"), "webservice.yaml")


def site_config_path(environ: Mapping[str, str]) -> str:
    return environ.get("WEBSERVICE_SITE_CONFIG") or SITE_CONFIG


def _read_file(path: str) -> dict:
    """Read one YAML config file; a missing file is empty; anything wrong is a ConfigError."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(256 * 1024 + 1)
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a file") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror or error}") from None
    if len(raw) > 256 * 1024:
        raise ConfigError(f"config file {path} is too large (over 256 KiB)")
    from webservice.state.yamlio import parse_yaml  # only when there is a file: most runs have none

    data, problem = parse_yaml(raw, max_bytes=256 * 1024, duplicates_ok=True)
    if problem:
        if problem.startswith("not valid UTF-8"):
            raise ConfigError(f"config file {path} is not UTF-8 text")
        line = re.search(r"at line (\d+)", problem)
        where = f" (line {line.group(1)})" if line else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must be a mapping of keys to values, not {type(data).__name__}",
            hint="valid keys: " + ", ".join(KEYS),
        )
    return data


def _normalise(data: Mapping, origin: str) -> dict:
    out = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in CHECKS:
            raise ConfigError(
                f"{origin}: unknown key {str(key)[:60]!r}", hint="valid keys: " + ", ".join(KEYS)
            )
        try:
            out[name] = CHECKS[name](value)
        except ValueError as error:
            raise ConfigError(
                f"{origin}: key {name!r} has an invalid value {(str(value) if isinstance(value, (str, bool, int, float)) else type(value).__name__)[:60]!r}; expected {error}"
            ) from None
    return out


def load_config(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Layer defaults, site file, user file, environment and ``overrides`` (CLI)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {key: "default" for key in KEYS}

    def layer(data: Mapping, origin: str, site: bool = False) -> None:
        for key, value in _normalise(data, origin).items():
            if key in SITE_ONLY and not site:
                raise ConfigError(f"{origin}: key {key!r} may only be set in the site config ({site_config_path(environ)})",
                                  hint=f"remove it from {origin.replace('config file ', '')}")
            values[key] = value
            sources[key] = origin

    site = site_config_path(environ)
    layer(_read_file(site), f"config file {site}", site=True)
    site_domains = (values.get("public_domain", Config.public_domain),)
    site_legacy_host, site_project = values.get("legacy_host", ""), values.get("project", "")
    site_routing = values.get("routing", Config.routing)
    user = user_config_path(environ)
    layer(_read_file(user), f"config file {user}")
    for key in KEYS:
        if key in SITE_ONLY:
            continue
        variable = "WEBSERVICE_" + key.upper()
        if variable in environ:
            try:
                layer({key: environ[variable]}, f"environment variable {variable}")
            except ConfigError as error:
                raise ConfigError(str(error).replace(f"key {key!r} has", "has")) from None
    if overrides:
        layer({k: v for k, v in overrides.items() if v is not None}, "command line")
    return Config(**values, sources=sources, site_domains=site_domains, site_legacy_host=site_legacy_host,
                  site_project=site_project, site_routing=site_routing)
