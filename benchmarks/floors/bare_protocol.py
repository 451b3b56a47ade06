"""A floor: the least an upper-case line server can do on an event loop.

    python benchmarks/floors/bare_protocol.py uvloop|asyncio|lean PORT

One ``asyncio.Protocol`` whose ``data_received`` writes ``data.upper()``:
no session, no timers, no stop logic.  What it gets is what
``upper-server --mode async`` could get on the same loop at most
(benchmarks/tcp.py --floors, benchmarks/instructions.py).  ``uvloop`` and
``asyncio`` serve it on the loop's own server and transports; ``lean`` on
the standard loop with netkit's lean transport
(``netkit.services.modes.lean_transport``), as ``--loop asyncio`` runs.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import cast


class Upper(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's do not subclass it)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.upper())


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upper, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def serve_lean(port: int) -> None:
    from netkit.services.core import Service
    from netkit.services.modes.lean_transport import LeanServer

    loop = asyncio.new_event_loop()
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    LeanServer(loop, listener, Upper, Service(lambda _event: None))
    loop.run_forever()


def main() -> None:
    loop, port = sys.argv[1], int(sys.argv[2])
    if loop == "lean":
        serve_lean(port)
    elif loop == "uvloop":
        import uvloop

        uvloop.run(serve(port))
    else:
        asyncio.run(serve(port))


if __name__ == "__main__":
    main()
