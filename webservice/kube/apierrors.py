"""HTTP answers and connection failures of the Kubernetes API, in words.

Every failure of a conversation with the API server leaves ``webservice.kube.cluster`` as one
of the :class:`~webservice.errors.ClusterError` subclasses made here: one line saying
what happened, naming the server, and a hint. Pure functions (no I/O); urllib3 is
imported only to classify a connection failure.
"""

from __future__ import annotations

import json
import ssl

from webservice.errors import (
    AuthenticationError,
    ClusterError,
    ConflictError,
    ConnectionFailedError,
    ForbiddenError,
    InvalidObjectError,
    NotFoundError,
    PolicyDeniedError,
    QuotaExceededError,
    ServerError,
)
from webservice.health.policy import parse_denial
from webservice.text import shorten


def _status_message(body: bytes | str) -> tuple[str, str, dict]:
    """(message, reason, details) of a ``Status`` answer (or the raw text)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        status = json.loads(body)
    except ValueError:
        return shorten(body or "no details"), "", {}
    if isinstance(status, dict):
        return shorten(status.get("message") or body), str(status.get("reason") or ""), status.get("details") or {}
    return shorten(body), "", {}


def _full_message(body: bytes | str) -> str:
    """The whole ``message`` of a Status answer (not shortened: a policy refusal's rule is at its end)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        status = json.loads(body)
    except ValueError:
        return body[:20000]
    return str(status.get("message") or "")[:20000] if isinstance(status, dict) else ""


def translate_http_error(code: int, body: bytes | str, *, server: str, what: str, namespace: str | None,
                         as_tool: bool = False) -> ClusterError:
    """The ClusterError for an HTTP error answer; ``what`` is e.g. 'GET Deployment mytool'.

    ``as_tool``: the Unix user already is the tool, so a 'become <tool>' hint would mislead."""
    message, reason, _details = _status_message(body)
    if code == 401:
        return AuthenticationError(
            f"the Kubernetes API at {server} refused the credentials (401: the client certificate "
            "is missing, expired or not valid)",
            hint="Toolforge renews tool certificates automatically; wait a few minutes and try again, "
            "or ask on #wikimedia-cloud if it persists",
        )
    denial = parse_denial(_full_message(body)) if code in (400, 403, 422) else None
    if denial is not None:  # a validating webhook (Kyverno, the route admission) said no
        return PolicyDeniedError(f"the cluster refused to {what}: {denial.one_line(what='it')}",
                                 hint="report it on #wikimedia-cloud with --debug if webservice built it")
    if code == 403:
        if "exceeded quota" in message or "quota" in reason.lower():
            return QuotaExceededError(f"the namespace quota does not allow this: {message}",
                                      hint="ask for less (--cpu, --mem, --replicas) or stop other jobs first")
        own = f'in the namespace "{namespace}"' in message if namespace else False
        if own and 'resource "httproutes"' in message:  # a tools-user role without the 2026 HTTPRoute verbs
            return ForbiddenError(f"not allowed to {what}: this tool's account may not manage HTTPRoutes "
                                  f"in {namespace} ({message})",
                                  hint="start with '--routing ingress', "
                                  "or ask the Toolforge admins on #wikimedia-cloud to grant HTTPRoute access")
        if as_tool:
            hint = (f"the tool's account may not do this in {namespace or 'its namespace'}; if it should, "
                    "ask on #wikimedia-cloud (the cluster's policy for tools may have changed)")
        else:
            hint = (f"a tool may only act in its own namespace ({namespace or 'tool-<tool>'}); "
                    "are you the right tool ('become <tool>')?")
        return ForbiddenError(f"not allowed to {what}: {message}", hint=hint)
    if code == 404:
        return NotFoundError(f"{what}: not found ({message})")
    if code == 409:
        return ConflictError(f"{what}: conflict ({message})",
                             hint="something else changed it at the same moment; run the command again")
    if code in (400, 422):
        return InvalidObjectError(f"the cluster refused to {what}: {message}",
                                  hint="this is probably a bug in webservice: please report it with --debug")
    if code == 429 or code >= 500:
        return ServerError(f"the Kubernetes API at {server} failed to {what} ({code} {reason or 'server error'}: {message})",
                           hint="the cluster may be busy or in maintenance; try again in a minute")
    return ClusterError(f"the Kubernetes API at {server} answered {code} to {what}: {message}")


def is_tls_failure(exc: BaseException) -> bool:
    """Whether a connection failure happened in TLS (the handshake, or its certificates)."""
    import urllib3.exceptions as ue

    return isinstance(exc, (ue.SSLError, ssl.SSLError)) or "SSL" in type(exc).__name__


def _connection_error(exc: BaseException, server: str, timeout: float) -> ClusterError:
    import urllib3.exceptions as ue

    text = str(exc)
    if is_tls_failure(exc):
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            return ConnectionFailedError(
                f"the Kubernetes API at {server} presented a certificate that the kubeconfig's CA does not trust",
                hint="check the certificate-authority in your kubeconfig; if it persists, ask on #wikimedia-cloud",
            )
        if "hostname" in text.lower() or "match" in text.lower():
            return ConnectionFailedError(f"the certificate of {server} is not valid for that name ({shorten(text, 160)})",
                                         hint="check the server URL in your kubeconfig")
        if isinstance(exc, ssl.SSLEOFError) or "EOF" in text or "reset by peer" in text.lower():
            # closed mid-handshake (a restarting server): a dropped connection, retried
            return ConnectionFailedError(
                f"the connection to the Kubernetes API at {server} was closed during the TLS handshake",
                hint="the API server may be restarting; try again in a minute",
            )
        return AuthenticationError(
            f"the TLS handshake with {server} failed ({shorten(text, 160)})",
            hint="the client certificate may have expired or been refused; Toolforge renews it "
            "automatically: wait a few minutes and try again",
        )
    if isinstance(exc, (ue.ConnectTimeoutError,)) and not isinstance(exc, ue.NewConnectionError):
        return ConnectionFailedError(f"connecting to the Kubernetes API at {server} timed out after {timeout:g} s",
                                     hint="check your network; the cluster may be down (see https://status.toolforge.org)")
    if isinstance(exc, ue.ReadTimeoutError):
        return ConnectionFailedError(f"the Kubernetes API at {server} did not answer within {timeout:g} s",
                                     hint="the cluster may be overloaded; try again in a minute")
    if "refused" in text.lower():
        return ConnectionFailedError(f"cannot connect to the Kubernetes API at {server}: connection refused",
                                     hint="the API server is down or the server URL in your kubeconfig is wrong")
    if "Name or service not known" in text or "nodename nor servname" in text or "Temporary failure in name resolution" in text:
        return ConnectionFailedError(f"cannot find the Kubernetes API server {server} (name resolution failed)",
                                     hint="check the server URL in your kubeconfig and your network")
    return ConnectionFailedError(f"the connection to the Kubernetes API at {server} failed ({shorten(text, 160)})",
                                 hint="check your network and try again")


def _not_sent(exc: BaseException) -> bool:
    """True when the request cannot have reached the server (safe to retry anything)."""
    import urllib3.exceptions as ue

    return isinstance(exc, (ue.NewConnectionError, ue.ConnectTimeoutError)) or "refused" in str(exc).lower()
