"""Serving the app: a listening socket of our own, handed to granian (or uvicorn)."""

from __future__ import annotations

import errno
import socket
import sys

LISTEN_BACKLOG = 1024


class PortInUse(Exception):
    """Something already listens on the address asked for."""


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port; PortInUse when another one already listens there.

    granian's own sockets set SO_REUSEPORT, which lets a second server share the port of the
    first and silently take part of its connections. This one does not set it, so neither
    can it join another server, nor another server join it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past connections linger
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {port} is in use on {host}: stop what listens there, "
                "or choose another port with --port"
            ) from exc
        raise
    listener.listen(LISTEN_BACKLOG)
    return listener


def serve(listener: socket.socket, *, server: str, host: str, port: int, workers: int) -> None:
    """Serve the app on `listener` until stopped (SIGINT, SIGTERM). `host` and `port` are
    only named in the server's messages."""
    if server == "uvicorn":
        _serve_uvicorn(listener, host=host, port=port, workers=workers)
    else:
        _serve_granian(listener, host=host, port=port, workers=workers)


def _serve_granian(listener: socket.socket, *, host: str, port: int, workers: int) -> None:
    from granian import Granian
    from granian._granian import SocketHolder
    from granian.constants import Interfaces, Loops

    class GranianOnListener(Granian):  # type: ignore[misc,valid-type]
        def _init_shared_socket(self) -> None:
            # granian's hook where it makes its socket (on Linux, one per worker, each with
            # SO_REUSEPORT): its workers accept on ours instead.
            fd = listener.fileno()
            linux = sys.platform.startswith(("linux", "freebsd"))
            self._ssp = None
            self._shd = SocketHolder(fd, False, self.backlog) if linux else SocketHolder(fd, False)  # type: ignore[call-arg]
            self._sfd = fd
            self._sso = listener  # inherited by the workers, closed at shutdown

    GranianOnListener(
        "portal.app:create_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        log_access=False,
        backlog=LISTEN_BACKLOG,
    ).serve()


def _serve_uvicorn(listener: socket.socket, *, host: str, port: int, workers: int) -> None:
    """What `uvicorn.run` does, on our socket."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "portal.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        log_level="info",
        access_log=False,  # as granian: no line per request
    )
    server = uvicorn.Server(config)
    if workers > 1:
        Multiprocess(config, sockets=[listener]).run()  # each worker makes its own Server
    else:
        server.run(sockets=[listener])
