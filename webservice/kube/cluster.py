"""The one door to the Kubernetes API: kubeconfig, requests, retries, errors.

Everything webservice asks of a cluster goes through :class:`Cluster`, and every failure
of that conversation leaves this module as a :class:`~webservice.errors.ClusterError`
subclass with one line saying what happened and a hint (never an ``ApiException`` or a
urllib3 traceback). Objects go in and come out as plain ``dict`` s (the JSON the API
server speaks), identical whatever the client library version.

How it talks
    The kubeconfig (``$KUBECONFIG``, else ``~/.kube/config``) is read by
    ``webservice.kube.kubeconfig``: the current context's cluster (server, CA), user (client
    certificate and key, paths relative to the file that names them, or ``*-data``; or a
    bearer token) and namespace. One urllib3 connection pool to that server is reused by
    every request, on the TLS context built from those files. There is no discovery:
    the API path of each kind is in :data:`KINDS`.

    Kubeconfigs that need the official client's machinery (``exec`` credential plugins,
    ``auth-provider``, basic auth) are loaded with ``kubernetes.config`` (the official
    ``kubernetes`` package, imported lazily and only then), and its resulting
    ``Configuration`` (server, CA, certificate files, ``Authorization`` value) drives the
    same pool. The reason for not importing ``kubernetes`` on the common path is time:
    importing ``kubernetes.client`` costs 0.3 to 0.8 s on a bastion (Debian's 22.6) and
    over 1 s with 37.x, more than a whole ``webservice status`` may take. This is the only
    module that imports ``kubernetes``; nothing on the ``--help``/``--dry-run`` path
    imports this module.

Retries
    Idempotent requests (GET, LIST, WATCH restarts, DELETE, and server-side apply, which
    converges to the same result however often it is sent) are retried with exponential
    backoff on 429 and 5xx answers (honouring ``Retry-After``) and on refused or dropped
    connections. Nothing else is retried.

Debug
    ``debug=True`` writes one line per request to stderr: method, path and query,
    status, milliseconds. Headers (credentials) are never shown.

Where the parts live
    ``webservice.kube.kubeconfig`` reads the kubeconfig; ``webservice.kube.apiresources`` has the
    kind -> API path table (:data:`KINDS`); ``webservice.kube.apierrors`` turns HTTP answers
    and connection failures into ``ClusterError`` s (:func:`translate_http_error`);
    ``webservice.kube.watching`` has streamed answers and the merged multi-kind watch. This
    module is the client that ties them together and the one public interface: callers
    import only ``webservice.kube.cluster``.

What it does not do: decide anything about webservices (that is ``lifecycle``), check
labels before deleting (callers pass ``expect_labels``/``uid`` and this module enforces
them), or print results.
"""

from __future__ import annotations

import json
import os
import random
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode, urlsplit

from webservice.kube.apierrors import _connection_error, _not_sent, is_tls_failure, translate_http_error
from webservice.text import shorten
from webservice.kube.apiresources import KINDS, api_path
from webservice.errors import (
    AuthenticationError,
    ConflictError,
    ConnectionFailedError,
    ForbiddenError,
    InvalidObjectError,
    KubeconfigError,
    ServerError,
)
from webservice.kube.kubeconfig import TOOL_HINT as _TOOL_HINT

# the kubeconfig of the tool one already is is missing or broken: 'become' would not help
_AS_TOOL_HINT = ("Toolforge writes ~/.kube/config for every tool (within minutes of its creation or of a "
                 "certificate renewal); if it stays missing or broken, ask on #wikimedia-cloud")
from webservice.kube.kubeconfig import Credentials, _load_client_cert
from webservice.kube.kubeconfig import kubeconfig_paths
from webservice.kube.kubeconfig import load_credentials as _load_credentials

__all__ = ["Cluster", "Credentials", "KINDS", "kubeconfig_paths", "load_credentials", "translate_http_error"]

FIELD_MANAGER = "webservice"
USER_AGENT = "webservice"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
RETRIES = 4  # attempts after the first one
REFUSED_RETRIES = 2
BACKOFF = 0.25  # first delay; doubled each time, with jitter, capped at MAX_BACKOFF
MAX_BACKOFF = 4.0
_RETRY_STATUS = {429, 500, 502, 503, 504}


def _timeout_from_env() -> float | None:
    value = os.environ.get("WEBSERVICE_API_TIMEOUT", "")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _official_credentials(paths: list[Path], context_name: str, namespace: str | None, shown: str) -> Credentials:
    """Credentials through the official client's loader (exec plugins, auth providers)."""
    try:
        from kubernetes import client as k8s_client
        from kubernetes import config as k8s_config
    except ImportError:  # pragma: no cover - kubernetes is a dependency
        raise KubeconfigError(f"the kubeconfig {shown} needs the 'kubernetes' Python package, which is missing") from None

    def load():
        configuration = k8s_client.Configuration()
        try:
            k8s_config.load_kube_config(config_file=os.pathsep.join(map(str, paths)), context=context_name,
                                        client_configuration=configuration, persist_config=False)
        except Exception as exc:  # noqa: BLE001 - ConfigException, exec failures, ...
            raise KubeconfigError(f"cannot use the kubeconfig {shown}: {shorten(exc, 200)}",
                                  hint="check the credential plugin or auth provider it names") from None
        return configuration

    configuration = load()

    def headers_of(cfg) -> dict:
        if hasattr(cfg, "refresh_api_key_hook") and cfg.refresh_api_key_hook is not None:
            cfg.refresh_api_key_hook(cfg)
        value = cfg.get_api_key_with_prefix("authorization") or cfg.get_api_key_with_prefix("BearerToken")
        return {"Authorization": value} if value else {}

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif configuration.ssl_ca_cert:
        context.load_verify_locations(cafile=configuration.ssl_ca_cert)
    else:
        context.load_default_certs()
    certificate = None
    if configuration.cert_file:
        certificate = _load_client_cert(context, configuration.cert_file, None, configuration.key_file, None, shown)
    context.check_hostname = False  # urllib3 checks it (see _ssl_context)
    return Credentials(configuration.host, context, headers_of(configuration), namespace, shown,
                       server_hostname=getattr(configuration, "tls_server_name", None) or None,
                       refresh=lambda: headers_of(load()), certificate=certificate)


def load_credentials(paths: list[Path] | None = None) -> Credentials:
    """The kubeconfig's credentials (see ``webservice.kube.kubeconfig``), exec plugins included."""
    return _load_credentials(paths, official=_official_credentials)


class Cluster:
    """A connection to the API server for one tool's namespace.

    ``requests`` counts the HTTP requests sent (retries included); ``debug`` logs them.
    """

    def __init__(self, credentials: Credentials, namespace: str, *, debug: bool = False,
                 timeout: float | None = None, retries: int = RETRIES, backoff: float = BACKOFF):
        import urllib3

        self._urllib3 = urllib3
        self.credentials = credentials
        self.server = credentials.server
        self.namespace = namespace
        self.as_tool = False  # True when the Unix user is the tool itself (see connect)
        self.debug = debug
        self.timeout = timeout or _timeout_from_env() or READ_TIMEOUT
        self.retries = retries
        self.backoff = backoff
        self.requests = 0
        self._lock = threading.Lock()
        self._began = time.monotonic()
        parts = urlsplit(self.server)
        self._prefix = parts.path.rstrip("/")
        kwargs: dict[str, Any] = {"maxsize": 8, "block": False, "retries": False,
                                  "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"}}
        if parts.scheme == "https":
            kwargs["ssl_context"] = credentials.ssl_context
            if credentials.server_hostname:
                kwargs["server_hostname"] = credentials.server_hostname
                kwargs["assert_hostname"] = credentials.server_hostname
            self._pool = urllib3.HTTPSConnectionPool(parts.hostname, parts.port or 443, **kwargs)
        else:
            self._pool = urllib3.HTTPConnectionPool(parts.hostname, parts.port or 80, **kwargs)

    # --- construction --------------------------------------------------------------------

    @classmethod
    def connect(cls, tool, debug: bool = False, **kwargs) -> "Cluster":
        """A Cluster for ``tool`` (a :class:`webservice.model.tool.Tool`) from its kubeconfig.

        Sends no request. The namespace is the context's (``tool-<tool>`` on Toolforge);
        a kubeconfig for another tool's namespace is refused before anything is sent.
        """
        as_tool = getattr(tool, "source", None) == "unix-user"  # already that tool: no 'become' hint
        try:
            credentials = load_credentials(kwargs.pop("kubeconfig", None))
        except KubeconfigError as error:
            if as_tool and error.hint == _TOOL_HINT:
                error.hint = _AS_TOOL_HINT
            raise
        wanted = getattr(tool, "namespace", None)
        namespace = credentials.namespace or wanted
        if wanted and namespace != wanted:
            raise KubeconfigError(
                f"the kubeconfig {credentials.path} is for namespace {namespace}, not {wanted} (tool {tool.name})",
                hint="run this as that tool ('become <tool>'), or drop --tool",
            )
        if not namespace:
            raise KubeconfigError(f"the kubeconfig {credentials.path} names no namespace",
                                  hint=_AS_TOOL_HINT if as_tool else _TOOL_HINT)
        cluster = cls(credentials, namespace, debug=debug, **kwargs)
        cluster.as_tool = as_tool
        return cluster

    def close(self) -> None:
        self._pool.close()

    def __del__(self):  # with --debug: how many requests the command made, once it is done with them
        try:
            if self.debug:
                self._log(f"{self.requests} API request(s) in {time.monotonic() - self._began:.2f} s")
        except Exception:  # noqa: BLE001 - never fail at interpreter exit
            pass

    # --- low level -----------------------------------------------------------------------

    def _log(self, text: str) -> None:
        if self.debug:
            print(f"webservice: debug: {text}", file=sys.stderr, flush=True)

    def path(self, kind: str, name: str | None = None, namespace: str | None = None, sub: str | None = None) -> str:
        return api_path(kind, namespace or self.namespace, name, sub)

    def _raise_if_certificate_invalid(self, cause: BaseException | None) -> None:
        """A refused or cut TLS handshake, or a 401, while the client certificate has expired
        (or is not valid yet): say that, at once and without retrying. The server cannot
        always say it (in TLS 1.3 its alert may be lost when it closes the connection)."""
        problem = self.credentials.certificate_problem()
        if problem is not None:
            raise AuthenticationError(
                f"{problem}, so the Kubernetes API at {self.server} refuses it",
                hint="Toolforge renews tool certificates automatically; wait a few minutes and try "
                "again, or ask on #wikimedia-cloud if it persists",
            ) from cause

    def request(self, method: str, path: str, *, query: dict | None = None, body: Any = None,
                content_type: str = "application/json", idempotent: bool | None = None,
                stream: bool = False, timeout: float | None = None, what: str | None = None,
                ok404: bool = False, raw: bool = False):
        """Send one request (with retries when idempotent); return parsed JSON, text or a stream.

        ``ok404``: return None on 404 instead of raising. ``raw``: return the text body.
        ``stream``: return a :class:`webservice.kube.watching.StreamedResponse` (the caller closes it).
        """
        query = {k: v for k, v in (query or {}).items() if v is not None and v is not False}
        query = {k: ("true" if v is True else v) for k, v in query.items()}
        url = self._prefix + path + ("?" + urlencode(query) if query else "")
        shown = path + ("?" + urlencode(query) if query else "")
        what = what or f"{method} {path}"
        if idempotent is None:
            idempotent = method in ("GET", "DELETE", "HEAD")
        headers = dict(self.credentials.headers)
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body, separators=(",", ":"))
            headers["Content-Type"] = content_type
        read_timeout = timeout if timeout is not None else self.timeout
        timeouts = self._urllib3.Timeout(connect=min(CONNECT_TIMEOUT, read_timeout), read=read_timeout)
        attempt = 0
        refreshed = False
        while True:
            started = time.monotonic()
            with self._lock:
                self.requests += 1
            try:
                response = self._pool.urlopen(method, url, body=data, headers=headers, retries=False,
                                              redirect=False, timeout=timeouts, preload_content=False)
            except self._urllib3.exceptions.HTTPError as exc:
                self._log(f"{method} {shown} -> {type(exc).__name__} ({(time.monotonic() - started) * 1000:.0f} ms)")
                if is_tls_failure(exc):
                    self._raise_if_certificate_invalid(exc)
                error = _connection_error(exc, self.server, read_timeout)
                retriable = isinstance(error, ConnectionFailedError) and (idempotent or _not_sent(exc))
                # a refused connection is retried twice only (a restarting API server), so
                # that a wrong server URL is reported within a second
                limit = min(self.retries, REFUSED_RETRIES) if "refused" in str(exc).lower() else self.retries
                if retriable and attempt < limit:
                    attempt += 1
                    self._sleep(attempt, None)
                    continue
                raise error from exc
            except (OSError, ValueError) as exc:  # e.g. a TLS context that cannot be used
                raise _connection_error(exc, self.server, read_timeout) from exc
            status = response.status
            if stream and status < 300:
                self._log(f"{method} {shown} -> {status} ({(time.monotonic() - started) * 1000:.0f} ms, streaming)")
                from webservice.kube.watching import StreamedResponse

                return StreamedResponse(response)
            try:
                payload = response.read()
            except self._urllib3.exceptions.HTTPError as exc:
                response.release_conn()
                self._log(f"{method} {shown} -> {status}, body lost ({type(exc).__name__})")
                if idempotent and attempt < self.retries:
                    attempt += 1
                    self._sleep(attempt, None)
                    continue
                raise _connection_error(exc, self.server, read_timeout) from exc
            response.release_conn()
            self._log(f"{method} {shown} -> {status} ({(time.monotonic() - started) * 1000:.0f} ms)")
            if status == 401 and self.credentials.refresh and not refreshed:
                refreshed = True
                self.credentials.headers = self.credentials.refresh()
                headers.update(self.credentials.headers)
                continue
            if status in _RETRY_STATUS and idempotent and attempt < self.retries:
                attempt += 1
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            if status == 404 and ok404:
                return None
            if status == 401:
                self._raise_if_certificate_invalid(None)
            if status >= 300:
                raise translate_http_error(status, payload, server=self.server, what=what, namespace=self.namespace,
                                          as_tool=self.as_tool)
            text = payload.decode("utf-8", "replace")
            if raw:
                return text
            if not text:
                return {}
            try:
                return json.loads(text)
            except ValueError:
                raise ServerError(f"the Kubernetes API at {self.server} sent an answer that is not JSON to {what}",
                                  hint="try again; report it with --debug if it persists") from None

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = min(MAX_BACKOFF, self.backoff * 2 ** (attempt - 1)) * (0.75 + random.random() / 2)
        if retry_after and retry_after.strip().isdigit():
            delay = min(MAX_BACKOFF * 2, max(delay, float(retry_after.strip())))
        self._log(f"retrying in {delay:.2f} s (attempt {attempt + 1} of {self.retries + 1})")
        time.sleep(delay)

    # --- objects -------------------------------------------------------------------------

    def apply(self, obj: dict) -> dict:
        """Server-side apply ``obj`` (field manager "webservice", forced); return the result."""
        kind, name = obj["kind"], obj["metadata"]["name"]
        namespace = obj["metadata"].get("namespace") or self.namespace
        return self.request(
            "PATCH", self.path(kind, name, namespace),
            query={"fieldManager": FIELD_MANAGER, "force": True},
            body=obj, content_type="application/apply-patch+yaml",
            idempotent=True, what=f"apply {kind} {name}",
        )

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        """The object, or None when it does not exist."""
        return self.request("GET", self.path(kind, name, namespace), ok404=True, what=f"read {kind} {name}")

    def list(self, kind: str, label_selector: str | None = None, field_selector: str | None = None,
             namespace: str | None = None, missing_ok: bool = False) -> tuple[list[dict], str]:
        """(items, resourceVersion). ``missing_ok``: a kind the cluster does not serve
        (HTTPRoute without Gateway API) lists as empty instead of raising."""
        answer = self.request(
            "GET", self.path(kind, namespace=namespace),
            query={"labelSelector": label_selector, "fieldSelector": field_selector},
            what=f"list {KINDS[kind][1]}", ok404=missing_ok,
        )
        if answer is None:
            return [], ""
        items = answer.get("items") or []
        for item in items:  # lists omit kind/apiVersion on items; put them back
            item.setdefault("kind", kind)
        return items, str((answer.get("metadata") or {}).get("resourceVersion") or "")

    def delete(self, kind: str, name: str, propagation: str = "Background", *, uid: str | None = None,
               expect_labels: dict | None = None) -> bool:
        """Delete an object; False if it did not exist.

        ``expect_labels``: read it first and refuse (ForbiddenError) unless it carries all
        these labels. ``uid``: delete only that exact object (a precondition the server
        checks; if it was replaced meanwhile, the new one is left alone).
        """
        if expect_labels is not None:
            current = self.get(kind, name)
            if current is None:
                return False
            labels = (current.get("metadata") or {}).get("labels") or {}
            if any(labels.get(k) != v for k, v in expect_labels.items()):
                raise ForbiddenError(f"refusing to delete {kind} {name}: it does not carry the webservice's labels",
                                     hint="it belongs to another workload; delete it with kubectl if you mean it")
            uid = uid or (current.get("metadata") or {}).get("uid")
        body: dict = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            answer = self.request("DELETE", self.path(kind, name), body=body, ok404=True, what=f"delete {kind} {name}")
        except ConflictError:
            return False  # the uid precondition failed: another object of that name now
        return answer is not None

    def delete_pod(self, name: str, expect_labels: dict | None = None) -> bool:
        """Delete a pod (e.g. a leaked shell pod), only if it carries ``expect_labels``."""
        if expect_labels is None:
            expect_labels = {"app.kubernetes.io/managed-by": "webservice"}
        return self.delete("Pod", name, expect_labels=expect_labels)

    def read_config_map(self, namespace: str, name: str) -> dict | None:
        return self.request("GET", self.path("ConfigMap", name, namespace), ok404=True,
                            what=f"read ConfigMap {namespace}/{name}")

    def events(self, field_selector: str | None = None) -> list[dict]:
        return self.list("Event", field_selector=field_selector)[0]

    def pod_log(self, pod: str, container: str | None = None, previous: bool = False,
                tail_lines: int | None = None, since_seconds: int | None = None,
                timestamps: bool = True, follow: bool = False, timeout: float | None = None,
                since_time: str | None = None):
        """The pod's log: text, or an iterator of lines (str) when following.

        ``since_time`` (RFC 3339) starts at that time, like ``sinceTime``. A container that
        has not started, or has no previous run, gives "" (not an error).
        """
        query = {"container": container, "previous": previous, "tailLines": tail_lines,
                 "sinceSeconds": since_seconds, "sinceTime": since_time, "timestamps": timestamps,
                 "follow": follow}
        path = self.path("Pod", pod, sub="log")
        what = f"read the log of pod {pod}"
        if not follow:
            try:
                text = self.request("GET", path, query=query, raw=True, ok404=False, what=what)
            except InvalidObjectError:  # 400: container not started / no previous container
                return ""
            return text or ""
        response = self.request("GET", path, query=query, stream=True, what=what,
                                timeout=timeout if timeout is not None else 24 * 3600)

        def lines() -> Iterator[str]:
            try:
                for line in response.lines():
                    yield line.decode("utf-8", "replace")
            except self._urllib3.exceptions.HTTPError as exc:
                raise _connection_error(exc, self.server, self.timeout) from exc
            finally:
                response.close()

        return lines()

    # --- watch ---------------------------------------------------------------------------

    def watch(self, *kinds: str, label_selector: str | None = None, field_selector: str | None = None,
              resource_version: str | dict | None = None, timeout: float = 60.0,
              tick: float | None = None) -> Iterator[tuple[str | None, Any]]:
        """Watch several kinds at once; yield ``(event_type, obj)`` until ``timeout`` s pass.

        See :func:`webservice.kube.watching.watch` (types ADDED, MODIFIED, DELETED; ``SYNC``
        after a 410; ``(None, None)`` each ``tick`` s without news). Closing the iterator
        stops its threads.
        """
        from webservice.kube.watching import watch

        return watch(self, *kinds, label_selector=label_selector, field_selector=field_selector,
                     resource_version=resource_version, timeout=timeout, tick=tick)
