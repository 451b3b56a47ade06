"""tcp-time serve --protocol sntp: the datagram handler around ntp.Responder.

The decisions (what to answer, with what, or why not) are the responder's;
this reads the clocks, counts, and emits one event a request (drops at most
one event a second, so a flood does not flood the log).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from netkit import net
from netkit.events import Event
from netkit.events.sntp import SntpDropped, SntpServed
from netkit.protocols import ntp

DROP_LOG_INTERVAL = 1.0


@dataclass(frozen=True)
class SntpSettings:
    stratum: int | None = None  # None: unsynchronised (leap 3, stratum 16)
    refid: bytes | None = None
    rate: float | None = None  # answers a second per source


class SntpHandler:
    def __init__(
        self,
        settings: SntpSettings,
        *,
        emit: Callable[[Event], None],
        bump: Callable[[str], object],
        clock: Callable[[], float],
        quiet: bool = False,
    ) -> None:
        self.responder = ntp.Responder(
            stratum=settings.stratum, refid=settings.refid, rate=settings.rate, started=clock()
        )
        self.emit = emit
        self.bump = bump
        self.clock = clock
        self.quiet = quiet
        self._drop_logged = -DROP_LOG_INTERVAL
        self._unlogged = 0

    def datagram(self, data: bytes, addr: tuple[object, ...], received: float) -> bytes | None:
        """The reply to send to *addr* (read the clock for its transmit timestamp), or None."""
        port = addr[1]
        assert isinstance(port, int)
        now = time.monotonic()
        answer = self.responder.respond(data, port, addr[0], now, received, self.clock())
        if answer.reply is None:
            self.bump(f"dropped_{answer.kind}")
            if not self.quiet:
                if now - self._drop_logged >= DROP_LOG_INTERVAL:
                    self._drop_logged = now
                    self.emit(
                        SntpDropped(
                            net.format_peer(addr),
                            len(data),
                            answer.kind,
                            answer.reason,
                            self._unlogged,
                        )
                    )
                    self._unlogged = 0
                else:
                    self._unlogged += 1
            return None
        self.bump("kod_rate" if answer.kind == "kod" else "answered")
        if not self.quiet and answer.packet is not None:
            pkt = answer.packet
            self.emit(
                SntpServed(
                    peer=net.format_peer(addr),
                    kind=answer.kind,
                    stratum=pkt.stratum,
                    leap=pkt.leap,
                    refid=ntp.refid_text(pkt.stratum, pkt.refid),
                    reference=ntp.from_ntp(pkt.reference, received) if pkt.reference else None,
                    originate=f"{pkt.originate:016x}",
                    receive=ntp.from_ntp(pkt.receive, received),
                    transmit=ntp.from_ntp(pkt.transmit, received),
                    size=len(data),
                )
            )
        return answer.reply
