"""A floor: the least an upper-case line server can do on an event loop.

    python benchmarks/floors/bare_protocol.py uvloop|asyncio PORT

One ``asyncio.Protocol`` whose ``data_received`` writes ``data.upper()``:
no session, no timers, no stop logic.  What it gets is what
``upper-server --mode async`` could get on the same loop at most
(benchmarks/tcp.py --floors, benchmarks/instructions.py).
"""

from __future__ import annotations

import asyncio
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


def main() -> None:
    loop, port = sys.argv[1], int(sys.argv[2])
    if loop == "uvloop":
        import uvloop

        uvloop.run(serve(port))
    else:
        asyncio.run(serve(port))


if __name__ == "__main__":
    main()
