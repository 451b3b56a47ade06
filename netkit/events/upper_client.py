"""Events of upper-server send and chat (re-exported by :mod:`netkit.events.upper_server`).

A family of its own, the server's apart: the human lines for it are
:mod:`netkit.render.upper_client`, and a client loads neither the server's
events nor its renderer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netkit.events.base import Event


@dataclass(frozen=True)
class LineReply(Event):
    """upper-server send / chat: the server's reply to one line."""

    event: ClassVar[str] = "reply"
    hidden = ("sent_wire", "reply_wire")
    sent: str
    data: bytes
    server: str
    #: the bytes on the wire, for --hex only (never in the JSON)
    sent_wire: bytes | None = None
    reply_wire: bytes | None = None

    def common_fields(self) -> dict[str, Any]:
        return {"peer": self.server, "size": len(self.data)}
