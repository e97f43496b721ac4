"""A small Ingress -> nginx.conf translator that behaves like ingress-nginx for what we use.

It is test support code, not a reimplementation of the controller: it covers the parts
of ingress-nginx's template that decide where a request goes and what path it arrives
with (controller v1.x, ``nginx.tmpl``/``buildLocation``/``buildProxyPass``):

* one ``server`` block per host (rules of every Ingress merged), plus a catch-all
  ``default_server`` that proxies to the default backend;
* ``pathType: Exact`` -> ``location = /p``; ``Prefix`` -> ``location /p/`` and
  ``location = /p`` (``location /`` for ``/``); ``ImplementationSpecific`` -> ``location /p``;
* if any Ingress of a host has ``use-regex: "true"`` or a ``rewrite-target``, every
  location of that host becomes a case-insensitive regex ``location ~* "^<path>"``,
  longest path first;
* ``rewrite-target`` -> ``rewrite "(?i)<path>" <target> break;`` before ``proxy_pass``;
* ``configuration-snippet`` copied into the location, before the rewrite;
* a host without a ``/`` path gets ``location /`` to the default backend;
* the headers ingress-nginx sets upstream (Host, X-Forwarded-*, X-Original-URI).

Backends are given as a mapping ``(namespace, service name, port) -> "127.0.0.1:PORT"``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field

ANNOTATION = "nginx.ingress.kubernetes.io/"
PROXY_HEADERS = """\
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_http_version 1.1;
            proxy_redirect off;
"""


class IngressError(ValueError):
    pass


@dataclass
class Location:
    matcher: str  # "= /p", "/p/", "~* \"^/p(/|$)(.*)\""
    path: str
    upstream: str
    rewrite_target: str | None = None
    snippet: str | None = None
    regex: bool = False

    def render(self) -> str:
        lines = [f"        location {self.matcher} {{", PROXY_HEADERS.rstrip("\n")]
        if self.snippet:
            lines += ["            " + line for line in self.snippet.strip().splitlines()]
        if self.rewrite_target is not None:
            lines.append(f'            rewrite "(?i){self.path}" {self.rewrite_target} break;')
        lines.append(f"            proxy_pass http://{self.upstream};")
        lines.append("        }")
        return "\n".join(lines)


@dataclass
class Server:
    host: str
    locations: list[Location] = field(default_factory=list)
    regex: bool = False


def _annotations(ingress: dict) -> dict:
    return {k[len(ANNOTATION) :]: v for k, v in (ingress.get("metadata", {}).get("annotations") or {}).items() if k.startswith(ANNOTATION)}


def _upstream(ingress: dict, backend: dict, backends: dict) -> str:
    service = backend.get("service") or {}
    port = service.get("port", {}).get("number")
    key = (ingress["metadata"].get("namespace", "default"), service.get("name"), port)
    if key not in backends:
        raise IngressError(f"no endpoint for service {key}")
    return backends[key]


def servers_from_ingresses(ingresses: list[dict], backends: dict, default_backend: str) -> list[Server]:
    servers: dict[str, Server] = {}
    for ingress in ingresses:
        if ingress.get("apiVersion") != "networking.k8s.io/v1" or ingress.get("kind") != "Ingress":
            raise IngressError(f"not a networking.k8s.io/v1 Ingress: {ingress.get('apiVersion')} {ingress.get('kind')}")
        ann = _annotations(ingress)
        regex = ann.get("use-regex") == "true" or "rewrite-target" in ann
        for rule in ingress["spec"].get("rules", []):
            host = rule.get("host")
            if not host:
                raise IngressError("rules without host are not supported here")
            server = servers.setdefault(host, Server(host))
            server.regex = server.regex or regex
            for p in rule.get("http", {}).get("paths", []):
                path_type = p.get("pathType")
                if path_type not in ("Exact", "Prefix", "ImplementationSpecific"):
                    raise IngressError(f"pathType {path_type!r} is required (Exact, Prefix or ImplementationSpecific)")
                server.locations.append(
                    Location(
                        matcher=path_type,  # resolved once the host's regex mode is known
                        path=p["path"],
                        upstream=_upstream(ingress, p["backend"], backends),
                        rewrite_target=ann.get("rewrite-target"),
                        snippet=ann.get("configuration-snippet"),
                        regex=regex,
                    )
                )
    result = []
    for server in servers.values():
        locations = []
        for loc in sorted(server.locations, key=lambda l: len(l.path), reverse=True):
            if server.regex:
                if loc.matcher == "Exact":
                    loc.matcher = f'= {loc.path}'
                else:
                    loc.matcher = f'~* "^{loc.path}"'
                locations.append(loc)
            elif loc.matcher == "Exact":
                loc.matcher = f"= {loc.path}"
                locations.append(loc)
            elif loc.matcher == "Prefix" and loc.path != "/":
                base = loc.path.rstrip("/")
                exact = Location(f"= {base}", loc.path, loc.upstream, loc.rewrite_target, loc.snippet)
                loc.matcher = f"{base}/"
                locations += [loc, exact]
            else:
                loc.matcher = loc.path
                locations.append(loc)
        if not any(l.path == "/" and not l.matcher.startswith("=") for l in locations):
            locations.append(Location(f'~* "^/"' if server.regex else "/", "/", default_backend))
        server.locations = locations
        result.append(server)
    return result


def render(ingresses: list[dict], backends: dict, default_backend: str, listen: int, workdir: str) -> str:
    """A complete nginx.conf: foreground, unprivileged, everything under ``workdir``."""
    temp = {name: os.path.join(workdir, name) for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        os.makedirs(path, exist_ok=True)
    blocks = []
    for server in servers_from_ingresses(ingresses, backends, default_backend):
        if not re.match(r"^[a-z0-9.-]+$", server.host):
            raise IngressError(f"bad host {server.host!r}")
        blocks.append(
            f"    server {{\n        listen 127.0.0.1:{listen};\n        server_name {server.host};\n"
            + "\n".join(l.render() for l in server.locations)
            + "\n    }"
        )
    default = Location("/", "/", default_backend)
    blocks.append(f"    server {{\n        listen 127.0.0.1:{listen} default_server;\n        server_name _;\n{default.render()}\n    }}")
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""# generated from Ingress objects by tests/runner/nginx_ingress.py
{user}daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 128; }}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {temp['client_body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    server_names_hash_bucket_size 128;
{chr(10).join(blocks)}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


class Nginx:
    """Real nginx on 127.0.0.1:``port`` with the configuration of ``ingresses``."""

    def __init__(self, workdir: str, port: int):
        self.workdir = workdir
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.conf = os.path.join(workdir, "nginx.conf")

    def start(self, ingresses: list[dict], backends: dict, default_backend: str) -> "Nginx":
        self.stop()
        with open(self.conf, "w") as f:
            f.write(render(ingresses, backends, default_backend, self.port, self.workdir))
        check = subprocess.run([nginx_binary(), "-t", "-p", self.workdir, "-c", self.conf, "-e", "stderr"], capture_output=True, text=True)
        if check.returncode != 0:
            raise IngressError(f"nginx -t failed:\n{check.stderr}\n{open(self.conf).read()}")
        self.proc = subprocess.Popen(
            [nginx_binary(), "-p", self.workdir, "-c", self.conf, "-e", "stderr"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.workdir, "error.log"), "ab"), start_new_session=True,
        )
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise IngressError(f"nginx exited: {open(os.path.join(self.workdir, 'error.log')).read()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.02)
        raise IngressError("nginx did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
