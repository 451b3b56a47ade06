"""tcp-time get --protocol sntp: an SNTP client (RFC 4330) stricter than most.

Each request's transmit timestamp is a random 64-bit nonce, not the local
clock: a reply must echo it, so an old, duplicated or forged packet cannot
pass for the answer, and the request tells nobody our time.  Replies from
any address but the server's are ignored.  The round trip is timed with the
monotonic clock; the offset and delay come from the four timestamps.  Of
``samples`` exchanges the one with the lowest delay is kept (its offset is
the least disturbed by queueing).  A kiss-o'-death DENY or RSTR ends it; RATE
makes it wait longer before asking again.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from netkit import net
from netkit.events.sntp import SntpTime
from netkit.protocols import ntp

#: kiss-o'-death RATE answers tolerated (each one doubles the wait) before giving up
MAX_RATE_KISSES = 3
#: the first wait after a RATE, and the longest
RATE_BACKOFF = (1.0, 8.0)


@dataclass(frozen=True)
class Sample:
    offset: float
    delay: float
    packet: ntp.Packet
    received: float  # local wall clock at receipt
    round_trip: float  # monotonic seconds from send to receipt


def _same_address(got: tuple[object, ...], want: tuple[object, ...]) -> bool:
    return got[:2] == want[:2]


def _nonce() -> int:
    while True:
        value = secrets.randbits(64)
        if value:  # 0 means "no timestamp" in NTP
            return value


class SntpClient:
    """One UDP socket to one server; :meth:`sample` asks once, :meth:`query` N times."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        version: int | None = None,
        timeout: float = 2.0,
        ntp_version: int = ntp.VERSION,
        clock: Callable[[], float] = time.time,
        notice: Callable[[str], None] = lambda message: None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # one deadline for the lookup and the first answer
        self._first_deadline: float | None = time.monotonic() + timeout
        found = net.lookup(host, port, socktype=socket.SOCK_DGRAM, version=version, timeout=timeout)
        self.ep = found[0]
        self.where = self.ep.text
        self.timeout = timeout
        self.ntp_version = ntp_version
        self.clock = clock
        self.notice = notice
        self.sleep = sleep
        self.sock = socket.socket(self.ep.family, socket.SOCK_DGRAM)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SntpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self, reason: str) -> net.NetError:
        return net.NetError(f"sntp from {self.where}: {reason}")

    def sample(self) -> Sample:
        """One exchange; ntp.KissOfDeath for RATE, NetError for anything else that fails."""
        nonce = _nonce()
        request = ntp.request(nonce, version=self.ntp_version)
        start = time.monotonic()
        t1 = self.clock()
        try:
            self.sock.sendto(request, self.ep.sockaddr)
        except OSError as exc:
            raise net.NetError(net.describe_error(exc, f"sntp to {self.where}")) from None
        deadline = start + self.timeout
        if self._first_deadline is not None:
            deadline = min(deadline, self._first_deadline)
            self._first_deadline = None
        ignored: list[str] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                why = f" (ignored {len(ignored)}: {ignored[-1]})" if ignored else ""
                waited = net.seconds(deadline - start)
                raise self._fail(f"no valid reply within {waited} s{why}")
            self.sock.settimeout(left)
            try:
                data, addr = self.sock.recvfrom(net.UDP_MAX_PAYLOAD)
            except TimeoutError:
                continue
            except OSError as exc:
                raise net.NetError(net.describe_error(exc, f"sntp from {self.where}")) from None
            elapsed = time.monotonic() - start
            if not _same_address(addr, self.ep.sockaddr):
                ignored.append(f"a reply from {net.format_peer(addr)}, not from the server")
                continue
            try:
                pkt = ntp.check_reply(data, nonce)
            except ntp.KissOfDeath as kod:
                if kod.fatal:
                    raise self._fail(str(kod)) from None
                raise
            except ntp.ReplyRejected as exc:
                if exc.ignore:
                    ignored.append(str(exc))
                    continue
                raise self._fail(str(exc)) from None
            t4 = t1 + elapsed  # the monotonic clock times the round trip
            t2 = ntp.from_ntp(pkt.receive, t1)
            t3 = ntp.from_ntp(pkt.transmit, t1)
            offset, delay = ntp.offset_delay(t1, t2, t3, t4)
            if delay < 0:
                raise self._fail(
                    f"the server says it held the request {t3 - t2:.6f} s, longer than the "
                    f"whole round trip ({elapsed:.6f} s): its timestamps are wrong"
                )
            return Sample(offset, delay, pkt, t4, elapsed)

    def query(self, samples: int = 1, pause: float = 1.0) -> SntpTime:
        """Take *samples* samples, *pause* seconds apart; the lowest delay wins."""
        if samples < 1:
            raise ValueError("samples must be at least 1")
        taken: list[Sample] = []
        kisses = 0
        wait = RATE_BACKOFF[0]
        while len(taken) < samples:
            if taken:
                self.sleep(pause)
            try:
                taken.append(self.sample())
            except ntp.KissOfDeath as kod:
                kisses += 1
                if kisses > MAX_RATE_KISSES:
                    raise self._fail(f"{kod}; {kisses} times: giving up") from None
                wait = max(wait, pause * 2)
                self.notice(
                    f"{self.where} sent kiss-o'-death RATE: waiting {wait:g} s before asking again"
                )
                self.sleep(wait)
                wait = min(wait * 2, RATE_BACKOFF[1])
        best = min(taken, key=lambda s: s.delay)
        return self._event(best, len(taken))

    def _event(self, best: Sample, count: int) -> SntpTime:
        pkt = best.packet
        root_delay = ntp.short_to_seconds(pkt.root_delay)
        root_dispersion = ntp.short_to_seconds(pkt.root_dispersion)
        unix = best.received + best.offset
        moment = time.gmtime(unix)
        text = time.strftime("%Y-%m-%d %H:%M:%S", moment) + f".{int(unix % 1 * 1e6):06d} UTC"
        return SntpTime(
            protocol="sntp",
            unix=unix,
            text=text,
            offset_seconds=best.offset,
            delay_seconds=best.delay,
            root_distance=ntp.root_distance(best.delay, best.round_trip, pkt),
            stratum=pkt.stratum,
            refid=ntp.refid_text(pkt.stratum, pkt.refid),
            leap=pkt.leap,
            version=pkt.version,
            root_delay=root_delay,
            root_dispersion=root_dispersion,
            server=self.where,
            samples=count,
        )


def get_sntp(
    host: str,
    port: int,
    *,
    version: int | None = None,
    timeout: float = 2.0,
    samples: int = 1,
    pause: float = 1.0,
    notice: Callable[[str], None] = lambda message: None,
) -> SntpTime:
    """Ask an SNTP server *samples* times; NetError with the reason when no answer is usable."""
    with SntpClient(host, port, version=version, timeout=timeout, notice=notice) as client:
        return client.query(samples, pause)
