"""The HTTPS server: TLS with client-certificate authentication, HTTP/1.1 keep-alive,
chunked streaming for watches and log follows, WebSocket upgrades, request recording
and fault injection.

Built on ``http.server.ThreadingHTTPServer`` and ``ssl`` only.  The TLS handshake is done
in the connection's own thread (a stuck client cannot block ``accept``).  The context is
``ssl.SSLContext(PROTOCOL_TLS_SERVER)`` with ``CERT_OPTIONAL`` (not
``create_default_context``: this machine's ``SSL_CERT_FILE`` would make it trust public
CAs), trusting the cluster CA and the test "foreign" CA at the TLS layer; the
authenticator then accepts only the cluster CA (see ``certs.py``).
"""

from __future__ import annotations

import json
import select
import socket
import io
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import yaml

from .api import Request


@dataclass
class RecordedRequest:
    """One request as it reached the stand-in."""

    method: str
    path: str
    query: dict
    content_type: str
    user: str | None
    status: int = 0
    time: float = field(default_factory=time.time)
    body: object = None
    user_agent: str = ""

    def __repr__(self):
        q = "&".join(f"{k}={v}" for k, v in self.query.items())
        return f"<{self.method} {self.path}{'?' + q if q else ''} -> {self.status} ({self.user})>"


@dataclass
class Fault:
    """Answer the ``nth``.. (``nth+times-1``)th request matching ``method``/``path``
    (substring) and ``match`` (a predicate over the RecordedRequest) with ``action``:
    ``"status"`` (an error ``Status`` with ``status`` code, e.g. 500/503/429, and an
    optional ``Retry-After``), ``"drop"`` (close the connection without answering) or
    ``"delay"`` (sleep ``delay`` seconds, then answer normally) or ``"hold"`` (set ``arrived``,
    then answer normally once the test calls ``release()``: the stand-in waits for the test,
    not the test for the clock; released at the latest when the stand-in is reset)."""

    action: str = "status"
    status: int = 503
    method: str | None = None
    path: str | None = None
    match: object = None
    nth: int = 1
    times: int = 1
    delay: float = 0.0
    retry_after: int | None = None
    seen: int = 0
    fired: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()

    def applies(self, rec: RecordedRequest) -> bool:
        if self.method and rec.method != self.method.upper():
            return False
        if self.path and self.path not in rec.path:
            return False
        if self.match is not None and not self.match(rec):
            return False
        self.seen += 1
        if self.nth <= self.seen < self.nth + self.times:
            self.fired += 1
            return True
        return False


REASONS = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
           502: "InternalError"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin-kube-apiserver"
    sys_version = ""
    timeout = 120

    def setup(self):
        self.tls_ok = False
        self.user = None
        self.server.reading(self, "new")  # until a request is recorded or the connection ends
        try:
            # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
            # and the client's delayed ACK add about 40 ms to every keep-alive request
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.request.settimeout(10)
            self.request = self.server.ssl_context.wrap_socket(self.request, server_side=True)
            self.request.settimeout(self.timeout)
            self.tls_ok = True
            der = self.request.getpeercert(binary_form=True)
            if der and self.server.standin.pki.ca.signed(der):
                from .certs import common_name
                self.user = common_name(der)
        except (ssl.SSLError, OSError, ValueError):
            pass
        if not self.tls_ok:  # the handshake failed and the socket may be closed already
            self.rfile, self.wfile = io.BytesIO(), io.BytesIO()
            return
        super().setup()

    def handle(self):
        if not self.tls_ok:
            return
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError, socket.timeout, OSError):
            pass

    def handle_one_request(self):
        self.server.reading(self, "idle")  # keep-alive: waiting for the next request, if any
        try:
            super().handle_one_request()
        finally:
            self.server.reading(self, None)

    def finish(self):
        self.server.reading(self, None)
        try:
            super().finish()
        except (OSError, ssl.SSLError, ValueError):  # the client went away first
            pass

    def log_message(self, *args):  # quiet
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _dispatch(self):
        standin = self.server.standin
        url = urlsplit(self.path)
        query_all = parse_qs(url.query, keep_blank_values=True)
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(self.command, url.path, query_all, headers, body, self.user)
        rec = RecordedRequest(self.command, url.path,
                              {k: (v[0] if len(v) == 1 else v) for k, v in query_all.items()},
                              req.content_type, self.user, body=_parse_body(body, req.content_type),
                              user_agent=headers.get("user-agent", ""))
        with standin.lock:
            standin.requests.append(rec)
            fault = next((f for f in standin.faults if f.applies(rec)), None)
        self.server.reading(self, None)
        if fault is not None:
            if fault.action == "drop":
                rec.status = -1
                self.close_connection = True
                try:
                    self.request.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault.action == "delay":
                time.sleep(fault.delay)
            elif fault.action == "hold":
                fault.arrived.set()
                fault.released.wait(120)
            else:
                rec.status = fault.status
                status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": f"injected fault: HTTP {fault.status}",
                          "reason": REASONS.get(fault.status, "InternalError"), "code": fault.status}
                extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                self._send(fault.status, json.dumps(status).encode(), "application/json", extra)
                return
        resp = standin.api.handle(req)
        rec.status = resp.code
        if resp.upgrade is not None:
            self.send_response(101, "Switching Protocols")
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            resp.upgrade(self.request)
            return
        if resp.stream is not None:
            self._stream(resp)
            return
        self._send(resp.code, resp.body or b"", resp.content_type, resp.headers)

    def _send(self, code, body: bytes, content_type, headers=None):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            for item in (v if isinstance(v, list) else [v]):
                self.send_header(k, item)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _stream(self, resp):
        self.send_response(resp.code)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()
        gen = resp.stream
        try:
            for chunk in gen:
                if not chunk:  # an idle tick of the stream: has the client gone away?
                    if self._client_gone():
                        self.close_connection = True
                        return
                    continue
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (ConnectionError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            gen.close()

    def _client_gone(self) -> bool:
        """True if the peer closed the connection (a streaming client sends nothing more)."""
        sock = self.request
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                return False
            sock.settimeout(0.01)
            try:
                return sock.recv(1) == b""
            finally:
                sock.settimeout(self.timeout)
        except (ssl.SSLWantReadError, socket.timeout, BlockingIOError):
            return False
        except (OSError, ssl.SSLError, ValueError):
            return True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


def _parse_body(body: bytes, content_type: str):
    if not body:
        return None
    try:
        if "yaml" in content_type:
            return yaml.safe_load(body)
        if "json" in content_type:
            return json.loads(body)
    except (ValueError, yaml.YAMLError):
        pass
    return body


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, standin):
        self.standin = standin
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(standin.pki.server_cert_file, standin.pki.server_key_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(standin.pki.trust_file)
        ctx.set_alpn_protocols(["http/1.1"])
        self.ssl_context = ctx
        self._reading: dict = {}
        self._reading_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)

    def reading(self, handler, state: str | None):
        """Where a connection is: ``"new"`` (accepted, no request recorded yet), ``"idle"``
        (kept alive, waiting for a next request) or ``None`` (busy with a request, or gone).
        A "new" state is not downgraded to "idle" before its first request."""
        with self._reading_lock:
            if state is None:
                self._reading.pop(handler, None)
            elif not (state == "idle" and self._reading.get(handler) == "new"):
                self._reading[handler] = state

    def _busy(self) -> bool:
        with self._reading_lock:
            items = list(self._reading.items())
        for handler, state in items:
            if state == "new":
                return True
            try:  # idle: busy only if a request (or the end of the connection) is waiting
                readable, _, _ = select.select([handler.request], [], [], 0)
            except (OSError, ValueError):
                continue
            if readable:
                return True
        return False

    def settle(self, timeout: float = 3.0) -> bool:
        """Wait until every connection a client opened has been accepted and has either
        sent its request (recorded) or gone away: after a client process has exited, its
        last requests may still sit in the accept queue or in a handshake. True if settled."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._busy():
                try:
                    pending, _, _ = select.select([self.socket], [], [], 0)
                except (OSError, ValueError):
                    return True
                if not pending:
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)

    def handle_error(self, request, client_address):
        """Record in ``StandIn.handler_errors`` (instead of printing) what a connection's
        thread raised outside the API code; client disconnects are not errors."""
        import sys
        import traceback
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout, TimeoutError)):
            return
        self.standin.handler_errors.append("".join(traceback.format_exception_only(type(exc), exc)).strip())

    def start(self):
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="standin-https", daemon=True)
        self.thread.start()
