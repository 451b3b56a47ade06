"""Events of upper-server serve.

What the client emits (:class:`LineReply`, for ``send`` and ``chat``) is its
own family, :mod:`netkit.events.upper_client`, so a client loads none of the
server's events or renderers; re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netkit.events.base import Event
from netkit.events.upper_client import LineReply

__all__ = [
    "SOCKETSERVER_CLASSES",
    "ClientWaiting",
    "Connected",
    "Disconnected",
    "LineEvent",
    "LineReply",
    "Rejected",
    "UpperDatagram",
]

#: upper-server --impl socketserver: --mode -> the class of the standard
#: library's socketserver that runs (the service picks it, the banner names it)
SOCKETSERVER_CLASSES: dict[str, str] = {
    "sync": "TCPServer",
    "thread": "ThreadingTCPServer",
    "fork": "ForkingTCPServer",
}


@dataclass(frozen=True)
class Connected(Event):
    """A client connected (upper-server)."""

    event: ClassVar[str] = "connect"
    optional = ("worker",)
    peer: str
    open: int  # connections open now, this one included
    total: int  # connections accepted so far
    #: who serves it: "pid N" (fork mode's child, a prefork worker), "thread NAME"
    #: (thread mode); left out of the JSON when None
    worker: str | None = None


@dataclass(frozen=True)
class ClientWaiting(Event):
    """sync mode: a client was accepted but waits until the one being served leaves."""

    event: ClassVar[str] = "waiting"
    peer: str
    queued: int  # clients waiting now, this one included
    serving: str  # the peer being served


@dataclass(frozen=True)
class LineEvent(Event):
    """One line received (upper-server); ``text``/``data_b64`` hold it without its ending."""

    event: ClassVar[str] = "line"
    peer: str
    data: bytes
    length: int

    def common_fields(self) -> dict[str, Any]:
        return {"size": self.length}


@dataclass(frozen=True)
class Disconnected(Event):
    """A client's session ended (upper-server)."""

    event: ClassVar[str] = "disconnect"
    peer: str
    lines: int
    duration: float  # seconds
    reason: str  # "empty line", "eof", "reset", "idle timeout", "line too long", "server stopping"
    open: int  # connections still open
    total: int


@dataclass(frozen=True)
class Rejected(Event):
    """A connection refused by a limit (``--max-clients``)."""

    event: ClassVar[str] = "rejected"
    peer: str
    reason: str


@dataclass(frozen=True)
class UpperDatagram(Event):
    """upper-server --udp: one datagram upper-cased and sent back."""

    event: ClassVar[str] = "datagram"
    hidden = ("reply_wire",)
    peer: str
    size: int
    data: bytes
    #: the reply on the wire, for --hex only (never in the JSON)
    reply_wire: bytes | None = None
