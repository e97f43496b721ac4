"""A small WebSocket server side (RFC 6455) for pod ``attach`` and ``exec``, speaking the
Kubernetes remote-command subprotocols ``v5.channel.k8s.io`` and ``v4.channel.k8s.io``.

Channels: 0 stdin, 1 stdout, 2 stderr, 3 error/status (a ``Status`` JSON when the
command ends), 4 terminal resize (``{"Width": w, "Height": h}``), and in v5 255 "close"
(the client ends a stream, e.g. stdin at EOF).

The "container" is a real local subprocess: the container's ``command`` + ``args`` (for
attach, started on the first attach) or the exec ``command``, in a per-pod temporary
directory as HOME and working directory, with the container's literal ``env``.  With
``tty=true`` it runs under a pseudo-terminal (resized on channel 4), otherwise with pipes.
When it exits, attach reports the exit code to the simulated kubelet (the container
terminates, the pod goes ``Succeeded``/``Failed`` with restartPolicy Never), and exec
sends the status on channel 3 (``NonZeroExitCode`` with the exit code as cause).

Sockets are handled in one thread with ``select`` (TLS sockets must not be read and
written from two threads at once).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import pty
import select
import signal
import ssl
import struct
import subprocess
import termios
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def choose_protocol(header: str) -> str | None:
    offered = [p.strip() for p in (header or "").split(",")]
    for p in PROTOCOLS:
        if p in offered:
            return p
    return None


def frame(payload: bytes, opcode: int = 2) -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([127]) + struct.pack(">Q", n)
    return head + payload


def parse_frames(buf: bytes):
    """Return (frames, rest) where frames are (opcode, payload)."""
    out = []
    while len(buf) >= 2:
        b0, b1 = buf[0], buf[1]
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                break
            n = struct.unpack(">H", buf[2:4])[0]
            pos = 4
        elif n == 127:
            if len(buf) < 10:
                break
            n = struct.unpack(">Q", buf[2:10])[0]
            pos = 10
        mask = b""
        if b1 & 0x80:
            if len(buf) < pos + 4:
                break
            mask = buf[pos:pos + 4]
            pos += 4
        if len(buf) < pos + n:
            break
        payload = buf[pos:pos + n]
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        out.append((b0 & 0x0F, payload))
        buf = buf[pos + n:]
    return out, buf


class Process:
    """A container process: a local subprocess under a pty or with pipes."""

    def __init__(self, argv, env, cwd, tty):
        self.tty = tty
        self.argv = argv
        if tty:
            master, slave = pty.openpty()

            def preexec():
                os.setsid()
                try:
                    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
                except OSError:
                    pass
            self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                         preexec_fn=preexec, close_fds=True)
            os.close(slave)
            self.master = master
            self.stdin_fd = master
            self.out_fds = {master: 1}
        else:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True)
            self.master = None
            self.stdin_fd = self.proc.stdin.fileno()
            self.out_fds = {self.proc.stdout.fileno(): 1, self.proc.stderr.fileno(): 2}
        for fd in self.out_fds:
            os.set_blocking(fd, False)

    def write(self, data: bytes):
        if self.stdin_fd is None:
            return
        try:
            os.write(self.stdin_fd, data)
        except OSError:
            pass

    def close_stdin(self):
        if self.tty:
            self.write(b"\x04")  # EOF for the line discipline
        elif self.stdin_fd is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            self.stdin_fd = None

    def resize(self, width, height):
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()

    def close(self):
        for fd in list(self.out_fds):
            try:
                os.close(fd) if self.master is not None else None
            except OSError:
                pass
        if self.master is None:
            for f in (self.proc.stdout, self.proc.stderr):
                try:
                    f.close()
                except OSError:
                    pass


def _send(sock, data: bytes):
    view = memoryview(data)
    while view:
        try:
            n = sock.send(view)
            view = view[n:]
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            select.select([], [sock], [], 0.05)


def serve(sock, proc: Process, protocol: str, *, stdin: bool, stdin_once: bool, report_status: bool,
          on_output=None, stop=None) -> int:
    """Pump data between the WebSocket and the process until it ends; return its exit code."""
    sock.setblocking(False)
    buf = b""
    client_open = True
    code = None

    def forward(fd) -> None:
        """Read what the process wrote on ``fd`` and pass it on (its channel, to the client)."""
        nonlocal client_open
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            del proc.out_fds[fd]
            return
        if on_output:
            on_output(data)
        if client_open:
            try:
                _send(sock, frame(bytes([proc.out_fds[fd]]) + data))
            except OSError:
                client_open = False

    while True:
        readable = []
        fds = [sock] if client_open else []
        fds += list(proc.out_fds)
        pending = client_open and isinstance(sock, ssl.SSLSocket) and sock.pending()
        if not pending:
            readable, _, _ = select.select(fds, [], [], 0.05) if fds else ([], [], [])
        if pending or sock in readable:
            try:
                data = sock.recv(65536)
                if not data:
                    client_open = False
                    if stdin and stdin_once:
                        proc.close_stdin()
                buf += data
            except (ssl.SSLWantReadError, BlockingIOError):
                pass
            except (OSError, ssl.SSLError):
                client_open = False
            frames, buf = parse_frames(buf)
            for opcode, payload in frames:
                if opcode == 8:
                    client_open = False
                    if stdin and stdin_once:
                        proc.close_stdin()
                elif opcode == 9:
                    _send(sock, frame(payload, 10))
                elif opcode in (1, 2) and payload:
                    ch, data = payload[0], payload[1:]
                    if ch == 0 and stdin and data:
                        proc.write(data)
                    elif ch == 4:
                        try:
                            size = json.loads(data)
                            proc.resize(int(size.get("Width", 80)), int(size.get("Height", 24)))
                        except (ValueError, OSError):
                            pass
                    elif ch == 255 and data[:1] == b"\x00":
                        proc.close_stdin()
        for fd in list(proc.out_fds):
            if fd in readable:
                forward(fd)
        if stop is not None and stop.is_set():
            proc.kill()
        if proc.proc.poll() is not None and (not proc.out_fds or code is not None):
            break
        if proc.proc.poll() is not None and code is None:
            code = proc.proc.returncode
            deadline = time.monotonic() + 0.5
            # drain what is left in the pipes / pty
            while proc.out_fds and time.monotonic() < deadline:
                r, _, _ = select.select(list(proc.out_fds), [], [], 0.05)
                if not r:
                    break
                for fd in r:
                    forward(fd)
            break
    code = proc.proc.wait()
    proc.close()
    if client_open:
        if report_status:
            if code == 0:
                status = {"metadata": {}, "status": "Success"}
            else:
                status = {"metadata": {}, "status": "Failure",
                          "message": f"command terminated with non-zero exit code: error executing command "
                                     f"{proc.argv}, exit code {code}",
                          "reason": "NonZeroExitCode",
                          "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
            try:
                _send(sock, frame(b"\x03" + json.dumps(status).encode()))
            except OSError:
                pass
        try:
            _send(sock, frame(struct.pack(">H", 1000), 8))
        except OSError:
            pass
    return code
