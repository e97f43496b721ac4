"""The error tree of webservice, with the exit code of each kind of failure.

Every failure a user can cause or meet is one of these exceptions. They carry a one-line
message (what is wrong) and an optional hint (what to do). ``cli.main`` turns them into
output and exit codes in one place; nothing else prints errors or calls ``sys.exit``.
This module imports nothing from the rest of the package and nothing outside the
standard library, so every module may use it.

Exit codes (documented in the man page, EXIT STATUS):

==== =====================================================================
0    success (``status``: running and ready)
1    unexpected internal error (a bug: please report it with ``--debug``)
2    bad input: command line, service.template, service.manifest, config
3    ``status``: not running (the init-script convention)
4    ``status``: present but not healthy (starting, degraded, crashing)
5    the webservice did not come up (diagnosed failure or wait timeout)
6    ``start``: already running (use ``restart``)
7    cluster access failed (kubeconfig, credentials, permission, network)
8    a required program is missing (kubectl for ``shell``)
130  interrupted (Ctrl-C); 143 terminated (SIGTERM)
==== =====================================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_UNHEALTHY = 4
EXIT_FAILED_TO_START = 5
EXIT_ALREADY_RUNNING = 6
EXIT_CLUSTER = 7
EXIT_MISSING_PROGRAM = 8
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class WebserviceError(Exception):
    """Base of every error shown to the user as one line plus an optional hint."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


# --- bad input (exit 2) -------------------------------------------------------------


class UsageError(WebserviceError):
    """The command line is wrong."""

    exit_code = EXIT_USAGE


class InputError(WebserviceError):
    """A value (quantity, type name, tool name, extra args...) is not acceptable."""

    exit_code = EXIT_USAGE


class ConfigError(InputError):
    """A configuration file or setting is invalid; the message names the file and key."""


class TemplateError(InputError):
    """service.template is invalid; the message names the file and key."""


class ManifestError(InputError):
    """service.manifest cannot be read or written."""


class NotAToolError(InputError):
    """The current user is not a tool account and no override was given."""


class UnknownTypeError(InputError):
    """The webservice type is not in the catalogue."""


class AdmissionError(InputError):
    """A routing object would be refused by the cluster's ingress admission rule.

    ``reason`` is a stable code for the kind of refusal (``webservice.builders.admission.REASONS``);
    the admission webhook counts denials by it."""

    def __init__(self, message: str, hint: str | None = None, reason: str = "malformed"):
        super().__init__(message, hint)
        self.reason = reason


class PreflightError(InputError):
    """start/restart cannot work as asked (missing files, over the namespace limits)."""


# --- runtime outcomes ------------------------------------------------------------------


class NotRunningError(WebserviceError):
    exit_code = EXIT_NOT_RUNNING


class UnhealthyError(WebserviceError):
    exit_code = EXIT_UNHEALTHY


class AlreadyRunningError(WebserviceError):
    exit_code = EXIT_ALREADY_RUNNING


# --- cluster access (exit 7) -----------------------------------------------------------


class ClusterError(WebserviceError):
    """Talking to the Kubernetes API failed. Raised only by ``webservice.kube.cluster``."""

    exit_code = EXIT_CLUSTER


class KubeconfigError(ClusterError):
    """No usable kubeconfig (missing, unreadable, bad certificate paths)."""


class AuthenticationError(ClusterError):
    """401: the client certificate was refused or has expired."""


class ForbiddenError(ClusterError):
    """403: the credentials may not do this (wrong tool? other namespace?)."""


class NotFoundError(ClusterError):
    """404 from the API server."""


class ConflictError(ClusterError):
    """409: someone else changed the object; running the command again is safe."""


class InvalidObjectError(ClusterError):
    """422: the server refused an object; the message is the server's."""


class PolicyDeniedError(ClusterError):
    """A validating admission webhook (Kyverno's pod policy, the route admission) refused
    an object; the message names the policy, the rule and the field."""


class QuotaExceededError(ClusterError):
    """403 with reason Forbidden for quota, or a quota/LimitRange rejection."""


class ConnectionFailedError(ClusterError):
    """The API server could not be reached (refused, timed out, dropped)."""


class ServerError(ClusterError):
    """5xx (after retries)."""


# --- environment -----------------------------------------------------------------------


class MissingProgramError(WebserviceError):
    exit_code = EXIT_MISSING_PROGRAM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every interruption path reports the state
    (exit 143 instead of 130). ``cli.main`` installs the handler that raises it."""
