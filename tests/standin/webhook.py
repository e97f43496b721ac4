"""Optional: the stand-in calls a validating admission webhook the way kube-apiserver does.

Off by default. A test switches it on with ``standin.webhook = WebhookClient(url, ca_file)``
(``StandIn.reset`` switches it off again); ``start_webhook(standin, directory)`` starts the
real ``webservice.webhook`` server on 127.0.0.1 with its own CA and switches it on.

While on, every Ingress and HTTPRoute create or update (after decoding, defaults and
validation, in place of the built-in ``validation.ingress_admission``) is POSTed as an
``admission.k8s.io/v1`` AdmissionReview to ``<url>?timeout=10s`` over one keep-alive HTTPS
connection verified with the CA bundle (``caBundle`` of a ValidatingWebhookConfiguration).
As kube-apiserver answers:

* allowed: the write goes on;
* denied: the status code of the webhook's ``status`` (403 by default) with its reason and
  ``admission webhook "<name>" denied the request: <message>``;
* the call fails (connection, non-200, bad JSON, uid mismatch): ``failurePolicy: Fail``,
  500 ``InternalError``, ``Internal error occurred: failed calling webhook "<name>": ...``.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import threading
import uuid
from urllib.parse import urlsplit

from .errors import ApiError

NAME = "ingress-admission.tools.wmcloud.org"


class WebhookClient:
    def __init__(self, url: str, ca_file: str, name: str = NAME, timeout: float = 10.0):
        self.url, self.name, self.timeout = url.rstrip("/") or url, name, timeout
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port or 443, (parts.path or "/")
        self.context = ssl.create_default_context(cafile=ca_file)
        self.lock = threading.Lock()
        self.conn = None
        self.reviews: list[dict] = []  # what was sent, for tests

    def _post(self, body: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):  # a kept-alive connection the server has closed: one new try
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                                        timeout=self.timeout)
            try:
                self.conn.request("POST", f"{self.path}?timeout={int(self.timeout)}s", body=body,
                                  headers={"Content-Type": "application/json", "Accept": "application/json"})
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def review(self, res, namespace: str, obj: dict, operation: str, old: dict | None = None,
               user: str | None = None) -> None:
        uid = str(uuid.uuid4())
        meta = obj.get("metadata") or {}
        request = {"uid": uid, "kind": {"group": res.group, "version": res.version, "kind": res.kind},
                   "resource": {"group": res.group, "version": res.version, "resource": res.plural},
                   "requestKind": {"group": res.group, "version": res.version, "kind": res.kind},
                   "requestResource": {"group": res.group, "version": res.version, "resource": res.plural},
                   "name": meta.get("name", ""), "namespace": namespace, "operation": operation,
                   "userInfo": {"username": user or "system:anonymous", "groups": ["system:authenticated"]},
                   "object": obj, "oldObject": old, "dryRun": False,
                   "options": {"apiVersion": "meta.k8s.io/v1",
                               "kind": "CreateOptions" if operation == "CREATE" else "UpdateOptions"}}
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
        self.reviews.append(review)
        failed = f'Internal error occurred: failed calling webhook "{self.name}": failed to call webhook: '
        with self.lock:
            try:
                status, body = self._post(json.dumps(review).encode())
            except (OSError, http.client.HTTPException) as error:
                raise ApiError(500, "InternalError", f'{failed}Post "{self.url}?timeout=10s": {error}') from None
        try:
            response = json.loads(body)["response"] if status == 200 else None
        except (ValueError, KeyError, TypeError):
            response = None
        if not isinstance(response, dict) or response.get("uid") != uid:
            raise ApiError(500, "InternalError", f"{failed}the server responded with HTTP {status} "
                                                 "and no AdmissionReview response for this uid")
        if response.get("allowed") is True:
            return
        result = response.get("status") or {}
        code = result.get("code") if isinstance(result.get("code"), int) and result.get("code") >= 400 else 400
        message = result.get("message") or "without explanation"
        raise ApiError(code, result.get("reason", ""), f'admission webhook "{self.name}" denied the request: {message}')

    def close(self):
        if self.conn is not None:
            self.conn.close()


def start_webhook(standin, directory: str, **flags):
    """Start the real webhook server (in a thread) with a new CA and point ``standin`` at it.

    Returns ``(server, client)``; stop with ``stop_webhook(server, client)``."""
    from webservice.webhook import config as webhook_config
    from webservice.webhook.server import WebhookServer

    from .certs import Authority

    os.makedirs(directory, exist_ok=True)
    ca = Authority.create("webhook-ca")
    cert, key = ca.issue("ingress-admission", server=True)
    paths = {}
    for name, data in (("ca.crt", ca.cert_pem), ("webhook.crt", cert), ("webhook.key", key)):
        paths[name] = os.path.join(directory, name)
        with open(paths[name], "wb") as f:
            f.write(data)
    config = webhook_config.load({"listen": "127.0.0.1:0", "tls_cert": paths["webhook.crt"],
                                  "tls_key": paths["webhook.key"], "domains": ",".join(standin.ingress_domains),
                                  **flags}, environ={})
    server = WebhookServer(config)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook",
                     daemon=True).start()
    client = WebhookClient(f"https://127.0.0.1:{server.port}/", paths["ca.crt"])
    standin.webhook = client
    return server, client


def stop_webhook(server, client):
    client.close()
    server.shutdown()
    server.drain(10)
    server.close_pipe()
