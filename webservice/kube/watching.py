"""Streamed answers and watches: one merged stream of events over several kinds.

:class:`StreamedResponse` reads a streamed HTTP answer line by line (watches, followed
logs). :func:`watch` is ``Cluster.watch``: one streaming request per kind, read in
background threads and merged in arrival order, resumed when a stream drops or ends,
listed again after 410 Gone.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from typing import Any, Iterator

import urllib3

from webservice.kube.apierrors import translate_http_error
from webservice.text import shorten
from webservice.kube.apiresources import KINDS
from webservice.errors import ClusterError, ConnectionFailedError, ServerError

MAX_BACKOFF = 4.0  # as webservice.kube.cluster.MAX_BACKOFF: the longest pause before resuming a watch


class StreamedResponse:
    """A streamed answer: iterate ``lines()``; ``close()`` when done (also closes the socket)."""

    def __init__(self, raw):
        self.raw = raw
        self.status = raw.status

    def lines(self) -> Iterator[bytes]:
        pending = b""
        for chunk in self.raw.stream(16384, decode_content=True):
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                yield line
        if pending:
            yield pending

    def close(self) -> None:
        conn = getattr(self.raw, "_connection", None) or getattr(self.raw, "connection", None)
        sock = getattr(conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            self.raw.close()
        except Exception:  # noqa: BLE001 - closing must never fail
            pass


def watch(cluster, *kinds: str, label_selector: str | None = None, field_selector: str | None = None,
          resource_version: str | dict | None = None, timeout: float = 60.0,
          tick: float | None = None) -> Iterator[tuple[str | None, Any]]:
    """Watch several kinds at once; yield ``(event_type, obj)`` until ``timeout`` s pass.

    One streaming request per kind, read in background threads and merged in arrival
    order. ``label_selector`` applies to every kind but Event (events carry no labels:
    all the namespace's events are watched). ``resource_version`` (one for all kinds, or
    a dict per kind) starts after that version; None starts with ADDED events for every
    existing object (list and watch in one request). Types: ADDED, MODIFIED, DELETED;
    ``("SYNC", {"kind": k, "items": [...]})`` after the server expired our version (410)
    and the kind was listed again (replace what you know of that kind); with ``tick``,
    ``(None, None)`` after each ``tick`` seconds without news. Dropped streams are
    resumed from the last version seen. Closing the iterator stops the threads.
    """
    deadline = time.monotonic() + timeout
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    open_responses: list[StreamedResponse] = []
    if not isinstance(resource_version, dict):
        resource_version = {kind: resource_version for kind in kinds}

    def follow(kind: str) -> None:
        version = resource_version.get(kind)
        selector = None if kind == "Event" else label_selector
        failures = 0
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            query = {"watch": True, "allowWatchBookmarks": True, "labelSelector": selector,
                     "fieldSelector": field_selector if kind != "Event" else None,
                     "resourceVersion": version or None, "timeoutSeconds": max(1, int(remaining + 1))}
            try:
                response = cluster.request("GET", cluster.path(kind), query=query, stream=True,
                                        timeout=remaining + 5, what=f"watch {KINDS[kind][1]}")
            except ClusterError as exc:
                failures += 1
                if isinstance(exc, (ConnectionFailedError, ServerError)) and failures <= cluster.retries:
                    time.sleep(min(MAX_BACKOFF, cluster.backoff * 2 ** failures))
                    continue
                events.put(("ERROR", exc))
                return
            open_responses.append(response)
            try:
                for line in response.lines():
                    if stop.is_set():
                        return
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    kind_of = event.get("type")
                    obj = event.get("object") or {}
                    if kind_of == "ERROR":
                        if obj.get("code") == 410:
                            items, version = cluster.list(kind, label_selector=selector)
                            events.put(("SYNC", {"kind": kind, "items": items}))
                            break
                        events.put(("ERROR", translate_http_error(
                            int(obj.get("code") or 500), json.dumps(obj), server=cluster.server,
                            what=f"watch {KINDS[kind][1]}", namespace=cluster.namespace)))
                        return
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if kind_of == "BOOKMARK":
                        continue
                    obj.setdefault("kind", kind)
                    events.put((kind_of, obj))
                    failures = 0
            except urllib3.exceptions.HTTPError:
                failures += 1  # dropped: resume from the last version seen
                if failures > cluster.retries:
                    events.put(("ERROR", ConnectionFailedError(
                        f"the watch of {KINDS[kind][1]} at {cluster.server} keeps dropping",
                        hint="check your network and try again")))
                    return
            except ClusterError as exc:
                events.put(("ERROR", exc))
                return
            except Exception:  # noqa: BLE001 - the stream was closed under us, or broke
                if stop.is_set():
                    return
                failures += 1
                if failures > cluster.retries:
                    events.put(("ERROR", ConnectionFailedError(
                        f"the watch of {KINDS[kind][1]} at {cluster.server} keeps failing",
                        hint="check your network and try again")))
                    return
            finally:
                response.close()
                if response in open_responses:
                    open_responses.remove(response)

    def guarded(kind: str) -> None:
        try:
            follow(kind)
        except BaseException as exc:  # noqa: BLE001 - report in the caller's thread
            if not stop.is_set():
                events.put(("ERROR", exc if isinstance(exc, ClusterError) else ConnectionFailedError(
                    f"the watch of {KINDS[kind][1]} at {cluster.server} failed ({type(exc).__name__}: {shorten(exc, 120)})")))

    threads = [threading.Thread(target=guarded, args=(kind,), daemon=True, name=f"watch-{kind}") for kind in kinds]
    for thread in threads:
        thread.start()
    try:
        last_news = time.monotonic()
        while True:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                return
            wait = min(remaining, 0.25)
            try:
                item = events.get(timeout=wait)
            except queue.Empty:
                if tick is not None and time.monotonic() - last_news >= tick:
                    last_news = time.monotonic()
                    yield None, None
                if not any(t.is_alive() for t in threads) and events.empty():
                    return
                continue
            if item[0] == "ERROR":
                raise item[1]
            last_news = time.monotonic()
            yield item
    finally:
        stop.set()
        for response in list(open_responses):
            response.close()
