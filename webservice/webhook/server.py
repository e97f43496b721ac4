"""The webhook's HTTPS server: AdmissionReviews over keep-alive HTTP/1.1, health, metrics.

Built on ``http.server.ThreadingHTTPServer`` (one thread per connection) and ``ssl``; the
HTTP/1.1 request parsing is this module's own small one (http.server's header parsing
through ``email`` costs more than the review itself). Routes:

* ``POST /`` and ``POST /validate`` (query strings such as kube-apiserver's ``?timeout=10s``
  ignored): an AdmissionReview -> 200 with the response review; a body that is not JSON
  or not an AdmissionReview -> 400; a body over ``max_body_bytes`` -> 413 (and the
  connection is closed, the body unread);
* ``GET /healthz`` -> 200 ``ok``; ``GET /metrics`` -> Prometheus text;
* anything else -> 404 (405 for a known path with the wrong method).

TLS: the handshake runs in the connection's thread, with the current ``SSLContext`` of
``Certificates``, which rebuilds it when the certificate or key file changes (inode,
mtime or size; checked at each new connection). Existing connections keep their
session; a change that does not load (a half-written pair) keeps the old context and
is retried at the next change.

Shutdown (``drain``): the listening socket is closed, idle keep-alive connections are
woken (a pipe) and closed, requests in flight finish and are answered with
``Connection: close``; ``drain`` returns when no connection is left (or at its timeout).
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import socketserver
import ssl
import threading
import time
from http.server import ThreadingHTTPServer

from webservice.webhook.config import WebhookConfig
from webservice.webhook.metrics import Metrics
from webservice.webhook.review import InvalidReview, review

LOG = logging.getLogger("webservice.builders.admission")
STATUS = {100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
          411: "Length Required", 413: "Content Too Large", 414: "URI Too Long",
          431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented"}
MAX_LINE = 16 * 1024
MAX_HEADERS = 100
IDLE_TIMEOUT = 120.0  # seconds a kept-alive connection may wait for its next request
IO_TIMEOUT = 30.0  # seconds for a handshake or a request once started


class Certificates:
    """The serving ``SSLContext``, rebuilt when the certificate or key file changes."""

    def __init__(self, cert: str, key: str, metrics: Metrics | None = None):
        self.cert, self.key = cert, key
        self.metrics = metrics
        self.lock = threading.Lock()
        self._stamp = self._stat()
        self._context = self._build()  # at startup a failure is the caller's error

    def _stat(self) -> tuple:
        stamps = []
        for path in (self.cert, self.key):
            try:
                st = os.stat(path)
                stamps.append((st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def _build(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        context.set_alpn_protocols(["http/1.1"])
        return context

    def context(self) -> ssl.SSLContext:
        stamp = self._stat()
        if stamp != self._stamp:
            with self.lock:
                if stamp != self._stamp:
                    self._stamp = stamp  # one attempt per change of the files
                    try:
                        self._context = self._build()
                    except (OSError, ssl.SSLError, ValueError) as error:
                        LOG.error("certificate reload failed, still serving the previous one: %s", error)
                        if self.metrics:
                            self.metrics.reload(False)
                    else:
                        LOG.info("certificate reloaded from %s", self.cert)
                        if self.metrics:
                            self.metrics.reload(True)
        return self._context


class _Reader:
    """Buffered reading from a (TLS) socket that can say whether bytes are already buffered."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def readline(self) -> bytes:
        """One line with its newline; longer than MAX_LINE: the first MAX_LINE+1 bytes; b"" at EOF."""
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > MAX_LINE:
                return bytes(self.buf[:MAX_LINE + 1])
            start = len(self.buf)
            if not self._fill():
                line = bytes(self.buf)
                self.buf.clear()
                return line

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                break
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


class _BadRequest(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class Handler(socketserver.BaseRequestHandler):
    """One connection: TLS handshake, then requests until close, idle timeout or shutdown."""

    server: "WebhookServer"

    def setup(self):
        self.tls = None
        raw = self.request
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.settimeout(IO_TIMEOUT)
            self.tls = self.server.certificates.context().wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError, ValueError) as error:
            LOG.debug("TLS handshake with %s failed: %s", self.client_address, error)
            self.tls = None
            return
        self.reader = _Reader(self.tls)

    def handle(self):
        if self.tls is None:
            return
        try:
            while self.server.wait_for_request(self.tls, self.reader):
                if not self.one_request():
                    return
        except (ConnectionError, ssl.SSLError, socket.timeout, OSError):
            return

    def finish(self):
        if self.tls is not None:
            try:
                self.tls.close()
            except OSError:
                pass

    # -- one request ----------------------------------------------------------------------
    def one_request(self) -> bool:
        """Read and answer one request; False when the connection must end."""
        self.close = False
        line = self.reader.readline()
        if not line:
            return False
        started = time.perf_counter()
        try:
            method, target, keep_alive, headers = self._head(line)
            body = self._body(headers)
        except _BadRequest as error:
            self.server.metrics.invalid_request(error.code)
            self.respond(error.code, f"{error}\n".encode(), "text/plain; charset=utf-8", close=True)
            return False
        self.close = not keep_alive
        path = target.split(b"?", 1)[0]
        try:
            self.dispatch(method, path, body, started)
        except (ConnectionError, ssl.SSLError, socket.timeout):
            raise
        except Exception:  # a bug: answer 500, keep serving
            LOG.exception("internal error answering %s %s", method, path)
            self.respond(500, b"internal error\n", "text/plain; charset=utf-8", close=True)
        return not self.close

    def _head(self, line: bytes):
        if len(line) > MAX_LINE:
            raise _BadRequest(414, "request line too long")
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise _BadRequest(400, "malformed request line")
        method, target, version = parts
        headers = {}
        while True:
            header = self.reader.readline()
            if not header:
                raise ConnectionError("client went away in the headers")
            if header in (b"\r\n", b"\n"):
                break
            if len(header) > MAX_LINE or len(headers) >= MAX_HEADERS:
                raise _BadRequest(431, "request headers too large")
            name, sep, value = header.partition(b":")
            if not sep or not name.strip():
                raise _BadRequest(400, "malformed header line")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = headers[name] + b"," + value if name in headers else value
        connection = headers.get(b"connection", b"").lower()
        keep_alive = b"close" not in connection if version == b"HTTP/1.1" else b"keep-alive" in connection
        return method, target, keep_alive, headers

    def _body(self, headers: dict) -> bytes:
        limit = self.server.config.max_body_bytes
        encoding = headers.get(b"transfer-encoding", b"").lower()
        length = headers.get(b"content-length")
        if encoding and length is not None:
            raise _BadRequest(400, "both Content-Length and Transfer-Encoding")
        if encoding:
            if encoding != b"chunked":
                raise _BadRequest(400, "unsupported Transfer-Encoding")
            self._continue(headers)
            return self._chunked(limit)
        if length is None:
            return b""
        if not length.isdigit():
            raise _BadRequest(400, "invalid Content-Length")
        size = int(length)
        if size > limit:
            raise _BadRequest(413, f"request body of {size} bytes is over the limit of {limit}")
        self._continue(headers)
        body = self.reader.read(size)
        if len(body) < size:
            raise ConnectionError("client went away in the body")
        return body

    def _continue(self, headers: dict) -> None:
        if headers.get(b"expect", b"").lower() == b"100-continue":
            self.tls.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _chunked(self, limit: int) -> bytes:
        chunks, total = [], 0
        while True:
            line = self.reader.readline()
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400, "malformed chunk size") from None
            if size == 0:
                while self.reader.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > limit:
                raise _BadRequest(413, f"request body over the limit of {limit} bytes")
            chunks.append(self.reader.read(size))
            self.reader.readline()

    def dispatch(self, method: bytes, path: bytes, body: bytes, started: float) -> None:
        server = self.server
        if path in (b"/", b"/validate"):
            if method != b"POST":
                return self.refuse(405, "use POST for AdmissionReviews")
            return self.validate(body, started)
        if path in (b"/healthz", b"/metrics"):
            if method not in (b"GET", b"HEAD"):
                return self.refuse(405, "use GET")
            if path == b"/healthz":
                return self.respond(200, b"ok\n", "text/plain; charset=utf-8", head=method == b"HEAD")
            return self.respond(200, server.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8",
                                head=method == b"HEAD")
        return self.refuse(404, "not found: the webhook answers POST / and /validate, GET /healthz and /metrics")

    def refuse(self, code: int, message: str) -> None:
        self.server.metrics.invalid_request(code)
        self.respond(code, f"{message}\n".encode(), "text/plain; charset=utf-8")

    def validate(self, body: bytes, started: float) -> None:
        server = self.server
        try:
            data = json.loads(body)
            answer, decision = review(data, server.policy, server.config.exempt_namespaces)
        except (ValueError, RecursionError, InvalidReview) as error:
            message = str(error) if isinstance(error, InvalidReview) else "the body is not JSON"
            return self.refuse(400, f"invalid AdmissionReview: {message}")
        self.respond(200, json.dumps(answer, separators=(",", ":")).encode())
        server.metrics.review(decision.allowed, decision.reason, time.perf_counter() - started)
        if not decision.allowed or server.config.debug:
            request = data["request"]
            obj = request.get("object") if isinstance(request.get("object"), dict) else {}
            meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            where = f"{request.get('namespace') or meta.get('namespace')}/{request.get('name') or meta.get('name')}"
            if decision.allowed:
                LOG.debug("allowed %s %s (%s) uid=%s", request.get("operation"), where, decision.scope,
                          request.get("uid"))
            else:
                LOG.info("denied %s %s uid=%s reason=%s: %s", request.get("operation"), where, request.get("uid"),
                         decision.reason, decision.message)

    def respond(self, code: int, body: bytes, content_type: str = "application/json", *, close: bool = False,
                head: bool = False) -> None:
        if close or self.server.stopping.is_set():
            self.close = True
        lines = [f"HTTP/1.1 {code} {STATUS.get(code, 'Unknown')}", f"Content-Type: {content_type}",
                 f"Content-Length: {len(body)}"]
        if self.close:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
        self.tls.sendall(data if head else data + body)


class WebhookServer(ThreadingHTTPServer):
    """The webhook: ``serve_forever()`` in one thread, ``shutdown()`` + ``drain()`` to stop."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, config: WebhookConfig, metrics: Metrics | None = None):
        self.config = config
        self.policy = config.policy()
        self.metrics = metrics or Metrics()
        self.certificates = Certificates(config.tls_cert, config.tls_key, self.metrics)
        self.stopping = threading.Event()
        self._wake_read, self._wake_write = self._pipe_fds = os.pipe()
        self._active = 0
        self._active_changed = threading.Condition()
        host = config.host or "0.0.0.0"
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, config.port), Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def process_request(self, request, client_address):
        with self._active_changed:
            self._active += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done()

    def _done(self):
        with self._active_changed:
            self._active -= 1
            self._active_changed.notify_all()

    def handle_error(self, request, client_address):
        LOG.exception("connection from %s failed", client_address)

    def wait_for_request(self, sock, reader: _Reader) -> bool:
        """Block until a next request may be read: True if bytes are there, False on idle
        timeout, or when shutting down and nothing has arrived."""
        if reader.buf or sock.pending():
            return True
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        events = dict(poller.poll(IDLE_TIMEOUT * 1000))
        if not events:
            return False
        if sock.fileno() in events:
            return True
        readable, _, _ = select.select([sock], [], [], 0)  # stopping: a request on its way?
        return bool(readable)

    def drain(self, timeout: float = 25.0) -> bool:
        """After ``shutdown()``: stop accepting, close idle connections, wait for requests in
        flight. True if every connection ended within ``timeout``."""
        if not self.stopping.is_set():
            self.stopping.set()
            self.server_close()
            os.write(self._wake_write, b"x")  # never read: the pipe stays readable for every waiter
        with self._active_changed:
            return self._active_changed.wait_for(lambda: self._active == 0, timeout)

    def close_pipe(self):
        """After ``drain``: release the wake-up pipe."""
        fds, self._pipe_fds = getattr(self, "_pipe_fds", None), None
        for fd in fds or ():
            os.close(fd)
