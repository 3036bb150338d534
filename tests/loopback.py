"""Serve an ASGI app with a real uvicorn server on a loopback address, in a thread, for tests."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp


class LoopbackServer:
    """One uvicorn server on a free loopback port; ``start`` returns once it accepts connections.

    ``host`` is where it listens: ``127.0.0.1``, ``::1``, or ``::ffff:127.0.0.1`` (an IPv6 socket
    that takes IPv4 clients of 127.0.0.1 and sees them as IPv4-mapped addresses, as a server
    listening on ``::`` does).
    """

    def __init__(self, name: str, host: str = "127.0.0.1") -> None:
        self.name = name
        self.host = host
        self.port = 0
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        address = ipaddress.ip_address(self.host)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return f"http://{address.ipv4_mapped}:{self.port}"
        return f"http://[{address}]:{self.port}" if address.version == 6 else f"http://{address}:{self.port}"

    def start(self, app: ASGIApp, timeout: float = 10.0) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP spelled out: asyncio turns Nagle off only on sockets it can see are TCP.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # an IPv4-mapped address takes IPv4
        sock.bind((self.host, 0))
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            http="h11",
            loop="asyncio",
            lifespan="on",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the {self.name} server stopped while starting")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the {self.name} server did not start within {timeout} s")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
