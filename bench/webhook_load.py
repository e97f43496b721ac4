#!/usr/bin/env python3
"""Load benchmark of the route admission webhook (``webservice-admission serve``).

Usage (from a clone)::

    .venv/bin/python bench/webhook_load.py [--reviews 100000] [--clients 8] [--procs 2] [--out bench/results]

What it does:

* makes a throwaway CA and server certificate (``tests/standin/certs.py``);
* starts the real server as a subprocess (``python -m webservice.webhook serve`` on
  ``127.0.0.1:0``), reads its port from its log, waits for ``/healthz``;
* runs ``--clients`` keep-alive HTTPS connections (spread over ``--procs`` processes, one
  thread per connection), as kube-apiserver does: each sends AdmissionReviews one after
  another on its connection (a mix: allowed Ingress, look-alike host, allowed HTTPRoute,
  HTTPRoute to another namespace's Service, out-of-scope namespace) and checks each answer
  (HTTP 200, the uid echoed, the expected decision); anything else counts as an error;
* the reviews are sent in ``--rounds`` equal rounds; the server's RSS (``/proc/PID/status``
  VmRSS) is read before the first and after each round, so a leak shows as growth;
* prints reviews/s, p50/p90/p99/max latency (client side, request written to answer read),
  errors and RSS; ``--out`` writes ``webhook.json`` and ``webhook.md`` there.

Targets (issue 15): >= 1,000 reviews/s, p99 < 20 ms, no errors, flat memory. Nothing here
is a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = {"reviews_per_s": 1000.0, "p99_ms": 20.0}


def _ingress(host: str) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "bench-subdomain", "namespace": "tool-bench",
                         "labels": {"toolforge": "tool", "name": "bench"}},
            "spec": {"rules": [{"host": host, "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "bench", "port": {"number": 8000}}}}]}}]}}


def _route(namespace: str | None = None) -> dict:
    ref = {"group": "", "kind": "Service", "name": "bench", "port": 8000}
    if namespace:
        ref["namespace"] = namespace
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "bench", "namespace": "tool-bench"},
            "spec": {"parentRefs": [{"name": "toolforge", "namespace": "istio-gateway"}],
                     "hostnames": ["bench.toolforge.org"],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [ref]}]}}


# (object, namespace, group, kind, expected allowed)
MIX = [
    (_ingress("bench.toolforge.org"), "tool-bench", "networking.k8s.io", "Ingress", True),
    (_ingress("bench.toolforge.org.example"), "tool-bench", "networking.k8s.io", "Ingress", False),
    (_route(), "tool-bench", "gateway.networking.k8s.io", "HTTPRoute", True),
    (_route("tool-other"), "tool-bench", "gateway.networking.k8s.io", "HTTPRoute", False),
    (_ingress("anything.example"), "kube-system", "networking.k8s.io", "Ingress", True),
]


def review_request(i: int, obj, namespace, group, kind) -> tuple[bytes, str]:
    uid = f"bench-{os.getpid()}-{i}"
    body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                       "request": {"uid": uid, "kind": {"group": group, "version": "v1", "kind": kind},
                                   "resource": {"group": group, "version": "v1",
                                                "resource": kind.lower() + "s"},
                                   "namespace": namespace, "name": obj["metadata"]["name"],
                                   "operation": "CREATE", "userInfo": {"username": "bench"},
                                   "object": obj, "dryRun": False}}).encode()
    head = (f"POST /?timeout=10s HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head + body, uid


def _read_response(sock, buf: bytearray) -> tuple[int, bytes]:
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        buf += data
    end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:end])
    del buf[:end]
    status = int(head.split(b" ", 2)[1])
    match = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
    length = int(match.group(1)) if match else 0
    while len(buf) < length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection in the body")
        buf += data
    body = bytes(buf[:length])
    del buf[:length]
    return status, body


def _connection_worker(port: int, ca: str, count: int, offset: int, results: list, errors: list,
                       interval: float = 0.0):
    context = ssl.create_default_context(cafile=ca)
    latencies = []
    try:
        raw = socket.create_connection(("127.0.0.1", port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = context.wrap_socket(raw, server_hostname="localhost")
    except OSError as error:
        errors.append(f"connect: {error}")
        return
    buf = bytearray()
    prepared = [review_request(offset + k, *case[:4]) + (case[4],) for k, case in enumerate(MIX)]
    try:
        first = time.perf_counter()
        for i in range(count):
            data, uid, expected = prepared[i % len(prepared)]
            started = time.perf_counter()
            if interval:  # open loop: send at the scheduled time; latency counts from it
                scheduled = first + i * interval
                if scheduled > started:
                    time.sleep(scheduled - started)
                started = scheduled
            sock.sendall(data)
            status, body = _read_response(sock, buf)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"HTTP {status}")
                continue
            response = json.loads(body)["response"]
            if response["uid"] != uid or response["allowed"] is not expected:
                errors.append(f"wrong answer {response}")
    except (OSError, ValueError, KeyError) as error:
        errors.append(f"{type(error).__name__}: {error}")
    finally:
        sock.close()
    results.extend(latencies)


def _process_worker(port, ca, per_connection, threads, proc_index, queue, interval):
    results, errors = [], []
    workers = [threading.Thread(target=_connection_worker,
                                args=(port, ca, per_connection, (proc_index * threads + t) * 1000, results, errors,
                                      interval))
               for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put((results, errors))


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_server(directory: str):
    from tests.standin.certs import Authority

    ca = Authority.create("webhook-bench-ca")
    cert, key = ca.issue("webhook", server=True)
    paths = {}
    for name, data in (("ca.crt", ca.cert_pem), ("cert.pem", cert), ("key.pem", key)):
        paths[name] = os.path.join(directory, name)
        with open(paths[name], "wb") as f:
            f.write(data)
    env = {k: v for k, v in os.environ.items() if k not in ("LISTENON", "TLSCERT", "TLSKEY", "DOMAINS", "DEBUG")}
    env["PYTHONPATH"] = str(ROOT)
    server = subprocess.Popen([sys.executable, "-m", "webservice.webhook", "serve", "--listen", "127.0.0.1:0",
                               "--tls-cert", paths["cert.pem"], "--tls-key", paths["key.pem"], "--no-debug"],
                              env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    for line in server.stderr:
        match = re.search(r"listening on https://127\.0\.0\.1:(\d+)", line)
        if match:
            break
    else:
        raise SystemExit(f"the webhook did not start (exit {server.wait()})")
    # the server logs each denial: drain its stderr so it never blocks on a full pipe
    threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
    return server, int(match.group(1)), paths["ca.crt"]


def run(reviews: int, clients: int, procs: int, rounds: int, rate: float = 0.0) -> dict:
    procs = max(1, min(procs, clients))
    threads = clients // procs
    clients = threads * procs
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as directory:
        server, port, ca = start_server(directory)
        try:
            per_round = max(1, reviews // rounds)
            per_connection = max(1, per_round // clients)
            rss = [rss_kb(server.pid)]
            latencies, errors, elapsed = [], [], 0.0
            mp = multiprocessing.get_context("fork")
            for _ in range(rounds):
                queue = mp.Queue()
                workers = [mp.Process(target=_process_worker, args=(port, ca, per_connection, threads, p, queue,
                                                                   clients / rate if rate else 0.0))
                           for p in range(procs)]
                started = time.perf_counter()
                for w in workers:
                    w.start()
                for _ in workers:
                    lat, err = queue.get()
                    latencies.extend(lat)
                    errors.extend(err)
                elapsed += time.perf_counter() - started
                for w in workers:
                    w.join()
                rss.append(rss_kb(server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
    latencies.sort()
    done = len(latencies)

    def pct(p):
        return round(latencies[min(done - 1, int(p * done))] * 1000, 2) if done else None

    # round time includes process start and TLS handshakes: the rate is a lower bound
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "clients": clients, "procs": procs,
            "rate": rate or None,
            "rounds": rounds, "reviews": done, "errors": len(errors), "error_samples": errors[:5],
            "seconds": round(elapsed, 3), "reviews_per_s": round(done / elapsed, 1) if elapsed else None,
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "max_ms": round(latencies[-1] * 1000, 2) if done else None,
            "mean_ms": round(statistics.fmean(latencies) * 1000, 3) if done else None,
            "rss_kb": rss, "server_exit": server.returncode}


def verdicts(result: dict) -> list[tuple[str, bool]]:
    rss = result["rss_kb"]
    growth = rss[-1] - rss[1] if len(rss) > 2 else 0
    return [
        (f">= {TARGETS['reviews_per_s']:.0f} reviews/s", (result["reviews_per_s"] or 0) >= TARGETS["reviews_per_s"]),
        (f"p99 < {TARGETS['p99_ms']:.0f} ms", result["p99_ms"] is not None and result["p99_ms"] < TARGETS["p99_ms"]),
        ("no errors", result["errors"] == 0 and result["reviews"] > 0),
        ("flat memory (growth after the first round < 5 MiB)", growth < 5 * 1024),
    ]


def markdown(result: dict) -> str:
    rss = result["rss_kb"]
    lines = [f"# webhook load benchmark ({result['date']}, {result['machine']}, {result['cpus']} cpus, "
             f"Python {result['python']})", "",
             f"`bench/webhook_load.py --reviews {result['reviews']} --clients {result['clients']} "
             f"--procs {result['procs']} --rounds {result['rounds']}"
             + (f" --rate {result['rate']:g}" if result.get("rate") else "")
             + f"`: {result['clients']} keep-alive HTTPS connections in {result['procs']} client processes on the "
             "same machine as the server, "
             + (f"open loop at {result['rate']:g} reviews/s (latency from each scheduled send)." if result.get("rate")
                else "closed loop (each connection sends its next review when the answer is in)."), "",
             "| reviews | seconds | reviews/s | p50 ms | p90 ms | p99 ms | max ms | errors |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
             f"| {result['reviews']} | {result['seconds']} | {result['reviews_per_s']} | {result['p50_ms']} | "
             f"{result['p90_ms']} | {result['p99_ms']} | {result['max_ms']} | {result['errors']} |", "",
             "Server RSS (MiB) at start and after each round: "
             + ", ".join(f"{kb / 1024:.1f}" for kb in rss), "",
             "| target | met |", "| --- | --- |"]
    lines += [f"| {name} | {'met' if ok else 'NOT met'} |" for name, ok in verdicts(result)]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="open loop: send this many reviews/s in all (latency counted from the scheduled send); "
                             "0 (default): closed loop, each connection as fast as answers come")
    parser.add_argument("--out", default=None, help="directory for webhook.json and webhook.md")
    args = parser.parse_args(argv)
    result = run(args.reviews, args.clients, args.procs, args.rounds, args.rate)
    text = markdown(result)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "webhook.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "webhook.md").write_text(text)
    return 0 if all(ok for _, ok in verdicts(result)) else 1


if __name__ == "__main__":
    sys.exit(main())
