"""Read a kubeconfig into what a request needs: server, TLS context, headers, namespace.

Handles what Toolforge (and most static kubeconfigs) use, without importing the
``kubernetes`` package: ``$KUBECONFIG`` (several files merged like kubectl, first
definition wins) or ``~/.kube/config``; the current context's cluster (``server``,
``certificate-authority``/``-data``, ``insecure-skip-tls-verify``, ``tls-server-name``),
user (``client-certificate``/``client-key`` and their ``-data`` forms, ``token``,
``tokenFile``; relative paths are relative to the file that names them) and namespace.
A user with ``exec``, ``auth-provider`` or ``username`` is handed to the ``official``
loader the caller passes (``webservice.kube.cluster`` uses the official client's).

Every problem is a one-line :class:`~webservice.errors.KubeconfigError` naming the file.
It sends no request and prints nothing.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from webservice.errors import KubeconfigError
from webservice.state.yamlio import parse_yaml
from webservice.text import shorten

MAX_KUBECONFIG_BYTES = 1 << 20
TOOL_HINT = "run this as the tool ('become <tool>'), whose ~/.kube/config is made by Toolforge"
_TOOL_HINT = TOOL_HINT


class Credentials:
    """What a request needs: server, TLS context, extra headers; built from a kubeconfig."""

    def __init__(self, server: str, ssl_context: ssl.SSLContext | None, headers: dict,
                 namespace: str | None, path: str, server_hostname: str | None = None,
                 refresh=None, certificate: "ClientCertificate | None" = None):
        self.server = server.rstrip("/")
        self.ssl_context = ssl_context
        self.headers = headers
        self.namespace = namespace
        self.path = path
        self.server_hostname = server_hostname
        self.refresh = refresh  # callable giving fresh headers (exec plugins), or None
        self.certificate = certificate  # the client certificate's validity, when known

    def certificate_problem(self, now: float | None = None) -> str | None:
        """Why the client certificate cannot be accepted now (expired, not yet valid), or
        None. Used to explain a refused or cut TLS handshake, which the server's side
        cannot always say itself (in TLS 1.3 its alert can be lost when it closes)."""
        return self.certificate.problem(now) if self.certificate is not None else None


class ClientCertificate:
    """Where a client certificate came from and when it is valid (seconds since the epoch)."""

    def __init__(self, where: str, not_before: float, not_after: float):
        self.where, self.not_before, self.not_after = where, not_before, not_after

    def problem(self, now: float | None = None) -> str | None:
        import time

        now = time.time() if now is None else now
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.not_after if now > self.not_after
                                                              else self.not_before))
        if now > self.not_after:
            return f"the client certificate {self.where} expired on {when}"
        if now < self.not_before:
            return f"the client certificate {self.where} is not valid before {when} (is the clock right?)"
        return None


def _certificate_validity(cert_file: str, where: str) -> ClientCertificate | None:
    """The validity period of a PEM certificate, read with the ssl module's decoder; None
    if it cannot be read (the handshake will then say what it can)."""
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:
        return None
    try:
        fields = decode(cert_file)
        return ClientCertificate(where, ssl.cert_time_to_seconds(fields["notBefore"]),
                                 ssl.cert_time_to_seconds(fields["notAfter"]))
    except (ssl.SSLError, OSError, KeyError, ValueError, TypeError):
        return None


def kubeconfig_paths() -> list[Path]:
    """The kubeconfig files to read, in order (``$KUBECONFIG`` may list several)."""
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(os.path.expanduser(p)) for p in env.split(os.pathsep) if p]
    return [Path(os.path.expanduser("~/.kube/config"))]


MAX_NODES = 100_000  # values once YAML aliases are expanded (stops "billion laughs")


def _read_kubeconfig(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_KUBECONFIG_BYTES + 1)
    except FileNotFoundError:
        raise KubeconfigError(f"no Kubernetes credentials: {path} does not exist", hint=_TOOL_HINT) from None
    except OSError as exc:
        raise KubeconfigError(f"cannot read the kubeconfig {path}: {exc.strerror}", hint=_TOOL_HINT) from None
    if len(raw) > MAX_KUBECONFIG_BYTES:
        raise KubeconfigError(f"the kubeconfig {path} is larger than 1 MiB; is it the right file?")
    # the shared bounded reader (deep nesting, alias bombs, impossible dates: one-line reasons)
    data, problem = parse_yaml(raw.decode("utf-8", "replace"), max_bytes=4 * MAX_KUBECONFIG_BYTES,
                               max_nodes=MAX_NODES, duplicates_ok=True)
    if problem:
        what = "not valid YAML" if problem.startswith("invalid YAML") and "value" not in problem[:20] else "not usable"
        raise KubeconfigError(f"the kubeconfig {path} is {what} ({shorten(problem, 120)})",
                              hint="fix or restore the file")
    if not isinstance(data, dict):
        raise KubeconfigError(f"the kubeconfig {path} is not a YAML mapping", hint="fix or restore the file")
    for section in ("clusters", "users", "contexts"):
        if data.get(section) is not None and not isinstance(data[section], list):
            raise KubeconfigError(f"the kubeconfig {path}: {section} is not a list", hint="fix or restore the file")
    if data.get("current-context") is not None and not isinstance(data["current-context"], str):
        raise KubeconfigError(f"the kubeconfig {path}: current-context is not a name", hint="fix or restore the file")
    return data


def _named(data: dict, section: str, name: str, path: str) -> dict:
    for entry in data.get(section) or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry.get("name") == name:
            body = entry.get(section[:-1])
            if isinstance(body, dict):
                return body
    raise KubeconfigError(f"the kubeconfig {path} has no {section[:-1]} named {name!r}",
                          hint="fix the file's current-context or restore it")


def _merged(paths: list[Path]) -> tuple[dict, dict[str, Path]]:
    """Merge several kubeconfigs like kubectl (first definition of a name wins).

    Returns the merged data and, per (section, name), the file it came from (relative
    paths inside an entry are relative to that file's folder).
    """
    merged: dict = {"clusters": [], "users": [], "contexts": []}
    origin: dict[str, Path] = {}
    existing = [p for p in paths if p.exists()] or paths[:1]
    for path in existing:
        data = _read_kubeconfig(path)
        if "current-context" not in merged and data.get("current-context"):
            merged["current-context"] = data["current-context"]
        for section in ("clusters", "users", "contexts"):
            for entry in data.get(section) or []:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    continue
                key = f"{section}/{entry['name']}"
                if key not in origin:
                    origin[key] = path
                    merged[section].append(entry)
    return merged, origin


def _file_or_data(entry: dict, key: str, base: Path, path: str, what: str) -> tuple[str | None, bytes | None]:
    """(file path, None) or (None, decoded data) or (None, None) for ``key``/``key-data``."""
    data = entry.get(f"{key}-data")
    if data:
        try:
            return None, base64.b64decode(data, validate=False)
        except (ValueError, TypeError):
            raise KubeconfigError(f"the kubeconfig {path}: {key}-data is not base64", hint="fix or restore the file") from None
    value = entry.get(key)
    if value:
        file = Path(os.path.expanduser(str(value)))
        if not file.is_absolute():
            file = base / file
        try:
            with open(file, "rb"):
                pass
        except OSError as exc:
            raise KubeconfigError(
                f"cannot read the {what} {file} named in {path}: {exc.strerror}",
                hint="the tool's certificates are renewed by Toolforge; if this persists, ask on #wikimedia-cloud",
            ) from None
        return str(file), None
    return None, None


def _ssl_context(cluster: dict, user: dict, cluster_base: Path, user_base: Path,
                 path: str) -> tuple[ssl.SSLContext, ClientCertificate | None]:
    """The TLS context for the cluster and user, and the client certificate's validity."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        ca_file, ca_data = _file_or_data(cluster, "certificate-authority", cluster_base, path, "CA certificate")
        try:
            if ca_file:
                context.load_verify_locations(cafile=ca_file)
            elif ca_data:
                context.load_verify_locations(cadata=ca_data.decode("ascii", "replace"))
            else:
                context.load_default_certs()
        except (ssl.SSLError, ValueError) as exc:
            raise KubeconfigError(f"the CA certificate in {path} is not usable ({shorten(exc, 120)})",
                                  hint="fix or restore the kubeconfig") from None
    cert_file, cert_data = _file_or_data(user, "client-certificate", user_base, path, "client certificate")
    key_file, key_data = _file_or_data(user, "client-key", user_base, path, "client key")
    certificate = None
    if cert_file or cert_data:
        certificate = _load_client_cert(context, cert_file, cert_data, key_file, key_data, path)
    # urllib3 checks the host name itself (1.26 cannot hand an IP address to ssl as
    # server_hostname, and then ssl's own check would refuse to start)
    context.check_hostname = False
    return context, certificate


def _load_client_cert(context, cert_file, cert_data, key_file, key_data, path) -> ClientCertificate | None:
    tmp = None
    try:
        if cert_data is not None or key_data is not None:
            # ssl can only load a certificate from a file: a private temporary folder,
            # removed at once (the context keeps what it loaded).
            tmp = tempfile.mkdtemp(prefix="webservice-")
            if cert_data is not None:
                cert_file = os.path.join(tmp, "cert.pem")
                with open(os.open(cert_file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
                    handle.write(cert_data)
            if key_data is not None:
                key_file = os.path.join(tmp, "key.pem")
                with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
                    handle.write(key_data)
        context.load_cert_chain(cert_file, key_file)
        return _certificate_validity(cert_file, cert_file if cert_data is None else f"in {path}")
    except (ssl.SSLError, OSError) as exc:
        where = cert_file if cert_file and not tmp else f"in {path}"
        raise KubeconfigError(
            f"the client certificate {where} or its key cannot be used ({shorten(getattr(exc, 'reason', None) or exc, 120)})",
            hint="the tool's certificates are renewed by Toolforge; if this persists, ask on #wikimedia-cloud",
        ) from None
    finally:
        if tmp:
            for name in os.listdir(tmp):
                os.unlink(os.path.join(tmp, name))
            os.rmdir(tmp)


def _valid_server(server: object) -> bool:
    """An http(s) URL with a host and, if any, a port in range (urlsplit raises ValueError
    for a broken IPv6 literal, ``.port`` for a port out of range)."""
    if not isinstance(server, str):
        return False
    try:
        parts = urlsplit(server)
        parts.port  # noqa: B018 - raises ValueError when out of range or not a number
    except ValueError:
        return False
    return parts.scheme in ("https", "http") and bool(parts.hostname)


def load_credentials(paths: list[Path] | None = None, official: Callable | None = None) -> Credentials:
    """Read the kubeconfig into :class:`_Credentials`; raise KubeconfigError if unusable.

    ``official(paths, context_name, namespace, shown)`` loads kubeconfigs this module
    does not handle (exec plugins, auth providers, basic auth).
    """
    paths = paths or kubeconfig_paths()
    data, origin = _merged(paths)
    shown = str(paths[0]) if len(paths) == 1 else os.pathsep.join(map(str, paths))
    current = data.get("current-context")
    if not current:
        raise KubeconfigError(f"the kubeconfig {shown} has no current-context", hint="fix or restore the file")
    context = _named(data, "contexts", current, shown)
    cluster_name, user_name = context.get("cluster"), context.get("user")
    cluster = _named(data, "clusters", cluster_name, shown)
    user = _named(data, "users", user_name, shown) if user_name else {}
    server = cluster.get("server")
    if not _valid_server(server):
        raise KubeconfigError(f"the kubeconfig {shown}: cluster {cluster_name!r} has no valid server URL",
                              hint="fix or restore the file")
    namespace = context.get("namespace") or None
    for what, value in (("namespace", namespace), ("token", user.get("token")), ("tokenFile", user.get("tokenFile")),
                        ("tls-server-name", cluster.get("tls-server-name"))):
        if value is not None and not isinstance(value, str):
            raise KubeconfigError(f"the kubeconfig {shown}: {what} is not a string", hint="fix or restore the file")
    if user.get("exec") or user.get("auth-provider") or user.get("username"):
        if official is None:
            raise KubeconfigError(f"the kubeconfig {shown} uses a credential plugin or auth provider, "
                                  "which needs the official client")
        return official(paths, current, namespace, shown)
    cluster_base = origin.get(f"clusters/{cluster_name}", paths[0]).parent
    user_base = origin.get(f"users/{user_name}", paths[0]).parent
    headers = {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token_path = Path(os.path.expanduser(str(user["tokenFile"])))
        token_path = token_path if token_path.is_absolute() else user_base / token_path
        try:
            token = token_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KubeconfigError(f"cannot read the token file {token_path} named in {shown}: {exc.strerror}") from None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    context_ssl, certificate = (_ssl_context(cluster, user, cluster_base, user_base, shown)
                                if server.startswith("https") else (None, None))
    return Credentials(server, context_ssl, headers, namespace, shown,
                       server_hostname=cluster.get("tls-server-name") or None, certificate=certificate)


_Credentials = Credentials  # the name webservice.kube.cluster used first
