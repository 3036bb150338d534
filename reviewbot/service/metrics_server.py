"""The metrics listener: ``GET /metrics`` alone, on ``REVIEWBOT_METRICS_PORT``, for ``reviewbot worker``
and for ``reviewbot serve`` (whose webhook port then has no ``/metrics``).

It is the client library's WSGI app on a threaded ``wsgiref`` server, as the library's own
``start_http_server``, except that any other path is 404 (the library answers every path with
the metrics) and that it can be stopped and says so.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import make_wsgi_app

from reviewbot.errors import ConfigError
from reviewbot.service.metrics import JobCounts, scrape_registry

log = logging.getLogger("reviewbot.metrics")

METRICS_PATH: Final = "/metrics"


class MetricsServer:
    """A running listener; :meth:`close` stops it and frees its port."""

    def __init__(self, httpd: WSGIServer, thread: threading.Thread, where: str) -> None:
        self._httpd = httpd
        self._thread = thread
        self._closed = False
        #: ``host:port`` as it was asked for, for log lines.
        self.where = where

    @property
    def port(self) -> int:
        return self._httpd.server_port

    def close(self) -> None:
        """Stop answering and close the socket (a scrape in flight still gets its answer); once."""
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
        log.info("stopped serving /metrics on %s", self.where)


#: A connection that sends nothing for this long is closed: each one holds a thread.
IDLE_TIMEOUT_SECONDS: Final = 10.0
#: Connections served at once; one past it is closed unanswered. A scraper needs one.
MAX_CONNECTIONS: Final = 16


def start_metrics_server(
    job_counts: JobCounts,
    *,
    host: str,
    port: int,
    idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    max_connections: int = MAX_CONNECTIONS,
) -> MetricsServer:
    """Serve ``GET /metrics`` on ``host:port`` from a daemon thread: the process's metrics and the
    jobs gauge read through ``job_counts``. A port that cannot be had is a :class:`ConfigError`."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    app = _only_metrics(make_wsgi_app(scrape_registry(job_counts)))
    try:
        family, *_, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        # The address in the family it resolved to.
        httpd = _Server(family, (str(address[0]), port), idle_timeout=idle_timeout, max_connections=max_connections)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"REVIEWBOT_METRICS_PORT={port}: {where} is already in use; choose a free port for the "
                "metrics, or stop what holds it (each reviewbot serve and worker on one host needs its own)"
            ) from None
        raise ConfigError(
            f"REVIEWBOT_METRICS_PORT={port}: cannot listen on {where} ({exc.strerror or exc}); "
            "check REVIEWBOT_METRICS_HOST and REVIEWBOT_METRICS_PORT"
        ) from None
    httpd.set_app(app)
    thread = threading.Thread(target=httpd.serve_forever, name="reviewbot-metrics", daemon=True)
    thread.start()
    log.info("serving /metrics on %s (REVIEWBOT_METRICS_PORT)", where)
    return MetricsServer(httpd, thread, where)


def _only_metrics(app: WSGIApplication) -> WSGIApplication:
    def serve(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != METRICS_PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Not Found\n"]
        return app(environ, start_response)

    return serve


class _Server(ThreadingMixIn, WSGIServer):
    # One thread per connection, never waited for at exit; at most ``max_connections`` at once.
    daemon_threads = True

    def __init__(
        self, family: socket.AddressFamily, address: tuple[str, int], *, idle_timeout: float, max_connections: int
    ) -> None:
        self.address_family = family  # read by the constructor, which binds
        self.idle_timeout = idle_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _QuietHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, client_address = super().get_request()
        connection.settimeout(self.idle_timeout)  # a read that waits longer ends the connection
        return connection, client_address

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # closed unanswered: the scraper tries again next interval
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape."""

    def log_message(self, format: str, *args: object) -> None:
        pass
