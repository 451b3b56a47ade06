"""netkit demo: each lecture exercise answered by running the services in-process.

Every server starts on 127.0.0.1 port 0 inside this process, the matching
client talks to it, and each exchange is emitted as a :class:`DemoStep` as it
happens; each lecture question gets a :class:`DemoClaim` whose ``holds`` is
computed from what was measured, not asserted.  Everything is stopped before
an exercise returns; nothing is written to disk.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from netkit import net
from netkit.events import Recorder, Sink
from netkit.events.creosote import Message
from netkit.events.demo import DemoClaim, DemoProgress, DemoSection, DemoStep, DemoTable
from netkit.events.udp_echo import Reply
from netkit.events.upper_server import ClientWaiting, Disconnected
from netkit.protocols.text import escape, truncate

EXERCISES: dict[str, str] = {
    "1": "UDP client and server",
    "2": "Mr. Creosote, the UDP remote debugger",
    "3": "TCP client and server: time and upper-case lines",
    "4": "socketserver: one client at a time, or a thread each",
    "5": "Asynchronous servers: thread, fork and async side by side",
    "addresses": "Addresses and layers: names, packing, byte order, headers",
}
#: exercise 5's load: idle connections held, busy ones driven, lines per busy connection
IDLE, BUSY, LINES = 200, 4, 50
#: exercise 5's table (short words: it fits 80 columns)
TABLE_COLUMNS = (
    "mode",
    "req/s",
    "p50 ms",
    "p99 ms",
    "CPU µs/req",
    "threads",
    "procs",
    "RSS MiB",
    "PSS MiB",
)
ALIASES = {"udp": "1", "creosote": "2", "tcp": "3", "socketserver": "4", "async": "5"}


def _free_udp_port() -> int:
    """A loopback UDP port that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Demo:
    """Runs exercises and reports through *sink*; ``ok`` is false if a claim failed."""

    def __init__(self, sink: Sink, *, seconds: float = 2.0, progress: bool = False) -> None:
        self.sink = sink
        self.seconds = seconds
        self.show_progress = progress
        self.ok = True
        self._exercise = ""

    # -- reporting ---------------------------------------------------------------------
    def section(self, exercise: str, question: str) -> None:
        self._exercise = exercise
        self.sink(DemoSection(exercise=exercise, title=EXERCISES[exercise], question=question))

    def step(self, actor: str, what: str, **detail: Any) -> None:
        self.sink(DemoStep(exercise=self._exercise, actor=actor, what=what, detail=detail))

    def progress(self, what: str, fraction: float, *, done: bool = False) -> None:
        if self.show_progress:
            ev = DemoProgress(exercise=self._exercise, what=what, fraction=fraction, done=done)
            self.sink(ev)

    def claim(self, claim: str, holds: bool, **evidence: Any) -> None:
        self.ok = self.ok and holds
        self.sink(DemoClaim(exercise=self._exercise, claim=claim, holds=holds, evidence=evidence))

    def run(self, exercises: list[str]) -> bool:
        table: dict[str, Callable[[], None]] = {
            "1": self.udp,
            "2": self.creosote,
            "3": self.tcp,
            "4": self.socketserver,
            "5": self.asynchronous,
            "addresses": self.addresses,
        }
        for name in exercises:
            table[name]()
        return self.ok

    # -- 1 -------------------------------------------------------------------------------
    def udp(self) -> None:
        from netkit.clients.udp_echo import send_messages
        from netkit.services.udp_echo import UdpEchoServer

        self.section(
            "1",
            "Where do the client and server get their address and port, and what does a "
            "client do when nothing listens?",
        )
        log = Recorder()
        with UdpEchoServer(log, port=0) as server:
            host, port = server.address
            self.step(
                "server",
                f"netkit udp-echo serve --port 0: the kernel chose {host}:{port} "
                "(the listening event tells scripts)",
                host=host,
                port=port,
            )
            replies = Recorder()
            message = b"hello, world"
            send_messages(replies, [message], host=host, port=port, timeout=2.0)
            reply = replies.of(Reply)[0]
            self.step(
                "client",
                f"netkit udp-echo send --port {port} 'hello, world' -> {escape(reply.data)!r}",
                sent=message.decode(),
                reply=reply.data.decode("utf-8", "backslashreplace"),
                rtt_ms=reply.rtt_ms,
            )
            self.claim(
                "the server upper-cases each datagram, and a reply is never longer than "
                "its request",
                reply.data == message.upper() and len(reply.data) <= len(message),
            )
        closed = _free_udp_port()
        timeout = 2.0
        started = time.monotonic()
        try:
            send_messages(Recorder(), [b"anyone there?"], port=closed, timeout=timeout)
            error = "a reply came"
        except net.NetError as exc:
            error = str(exc)
        elapsed = time.monotonic() - started
        self.step(
            "client",
            f"netkit udp-echo send --port {closed} (nothing listens): {error}",
            port=closed,
            exit_code=1,
        )
        self.claim(
            "sent to a port where nothing listens, the client is told 'refused' at once "
            "(ICMP port unreachable on a connected UDP socket) instead of hanging",
            "refused" in error and elapsed < timeout / 4,
            elapsed_ms=round(elapsed * 1000, 1),
            timeout_s=timeout,
        )

    # -- 2 -------------------------------------------------------------------------------
    def creosote(self) -> None:
        from netkit.clients.creosote import spew
        from netkit.clients.creosote_handler import CreosoteHandler
        from netkit.services.creosote import CreosoteListener

        self.section(
            "2",
            "How does a message longer than one datagram get across, and how does a "
            "program send its log records to the listener?",
        )
        log = Recorder()
        with CreosoteListener(log, port=0, quiet=False) as listener:
            host, port = listener.address
            self.step("listener", f"netkit creosote listen --port 0 on {host}:{port}", port=port)
            words = " ".join(f"step {i}: x={i * i}" for i in range(1, 201))
            message = f"traceback-sized message ({len(words)} bytes): {words}".encode()
            sent = spew(message, host=host, port=port, chunk_size=1024)
            self.step(
                "spew",
                f"netkit creosote spew: {sent.bytes} bytes sent as {sent.chunks} datagrams "
                f"of at most 1024 bytes ({sent.datagram_bytes} bytes on the wire)",
                bytes=sent.bytes,
                chunks=sent.chunks,
            )
            got = log.wait_for(Message, timeout=5.0)[0]
            self.step(
                "listener",
                f"collected one message of {got.bytes} bytes from {got.chunks} chunks: "
                f"{truncate(escape(got.data), 60)!r}",
                bytes=got.bytes,
                chunks=got.chunks,
            )
            self.claim(
                "a long message is spewed in chunks and collected whole by the listener",
                got.data == message and sent.chunks > 1 and got.chunks == sent.chunks,
                chunks=sent.chunks,
            )
            logger = logging.getLogger("netkit.demo")
            logger.propagate = False
            handler = CreosoteHandler(host, port)
            logger.addHandler(handler)
            try:
                logger.warning("reached step %d of %d", 3, 5)
            finally:
                logger.removeHandler(handler)
                handler.close()
            record = log.wait_for(Message, n=2, timeout=5.0)[1]
            self.step(
                "logging",
                "logging.getLogger().warning('reached step %d of %d', 3, 5) with "
                f"CreosoteHandler -> listener shows {truncate(escape(record.data), 70)!r}",
            )
            self.claim(
                "a Python logging call reaches the listener through CreosoteHandler",
                b"reached step 3 of 5" in record.data,
            )

    # -- 3 -------------------------------------------------------------------------------
    def _sntp(self) -> float | None:
        """SNTP on the same clock: refused while the server is honest, read when it claims."""
        from netkit.clients.sntp import get_sntp
        from netkit.protocols.ntp import parse_refid
        from netkit.services.sntp_server import SntpSettings
        from netkit.services.tcp_time import TimeServer

        with TimeServer(Recorder(), port=0, protocol="sntp") as server:
            host, port = server.address
            try:
                get_sntp(host, port, timeout=2.0)
                refused = ""
            except net.NetError as exc:
                refused = str(exc)
        self.step(
            "client",
            f"netkit tcp-time get --protocol sntp --port {port} against the default server: "
            f"refused ({refused.split(': ', 1)[-1]})",
            protocol="sntp",
            refused=refused,
        )
        settings = SntpSettings(stratum=2, refid=parse_refid("LOCL"))
        with TimeServer(Recorder(), port=0, protocol="sntp", sntp=settings) as server:
            host, port = server.address
            got = get_sntp(host, port, timeout=2.0)
        self.step(
            "client",
            f"netkit tcp-time get --protocol sntp --port {port} against serve --stratum 2 "
            f"--refid LOCL: {got.text}, offset {got.offset_seconds:+.6f} "
            f"± {got.root_distance:.6f} s -> unix {got.unix:.6f}",
            protocol="sntp",
            unix=got.unix,
            stratum=got.stratum,
            offset_seconds=got.offset_seconds,
        )
        self.claim(
            "an SNTP server that says it is unsynchronised (stratum 16) is refused",
            "stratum 16" in refused,
        )
        return got.unix

    def tcp(self) -> None:
        from netkit.clients.tcp_time import get_time
        from netkit.clients.upper import LineClient
        from netkit.services.tcp_time import TimeServer
        from netkit.services.upper import UpperServer

        self.section(
            "3",
            "What does the time server send, and what does the line server do when a "
            "client aborts in the middle of a session?",
        )
        results = {}
        for protocol in ("daytime", "time"):
            with TimeServer(Recorder(), port=0, protocol=protocol) as server:
                host, port = server.address
                got = get_time(host, port, protocol=protocol, timeout=2.0)
                results[protocol] = got
                raw = f"{got.rfc868} (seconds since 1900, 4 bytes)" if got.rfc868 else got.text
                self.step(
                    "client",
                    f"netkit tcp-time get --protocol {protocol} --port {port}: {raw} "
                    f"-> unix {got.unix}",
                    protocol=protocol,
                    unix=got.unix,
                    text=got.text,
                    zone=got.zone,
                )
        sntp_unix = self._sntp()
        daytime, rfc868 = results["daytime"].unix, results["time"].unix
        self.claim(
            "daytime (RFC 867 text, like time.ctime()), time (RFC 868 binary) and sntp "
            "(NTP timestamps) tell the same instant",
            daytime is not None
            and rfc868 is not None
            and sntp_unix is not None
            and abs(daytime - rfc868) <= 2
            and abs(sntp_unix - rfc868) <= 2,
            daytime_unix=daytime,
            rfc868_unix=rfc868,
            sntp_unix=sntp_unix,
        )
        log = Recorder()
        with UpperServer(log, port=0, mode="thread") as server:
            host, port = server.address
            with LineClient(host, port, timeout=2.0) as client:
                reply = client.exchange(b"spam and eggs")
                client.finish()
            self.step(
                "client",
                f"netkit upper-server send --port {port} 'spam and eggs' -> {escape(reply.data)!r}",
            )
            with socket.create_connection((host, port), timeout=2.0) as rude:
                rude_peer = net.format_peer(rude.getsockname())
                rude.sendall(b"half a line with no end")
            # its own disconnect: the first client's may be logged after it
            gone = log.wait_for(Disconnected, timeout=5.0, where=lambda e: e.peer == rude_peer)[0]
            self.step(
                "server",
                f"a client sent half a line and closed: the server logged "
                f"'disconnect {gone.peer}: {gone.reason}' after {gone.lines} "
                + ("line" if gone.lines == 1 else "lines"),
                reason=gone.reason,
            )
            with LineClient(host, port, timeout=2.0) as client:
                again = client.exchange(b"still there?")
                client.finish()
            self.step("client", f"next client: 'still there?' -> {escape(again.data)!r}")
            self.claim(
                "a client that aborts mid-session ends only its own session: the server "
                "logs it and keeps serving",
                gone.reason == "eof" and again.data == b"STILL THERE?",
                reason=gone.reason,
            )

    # -- 4 -------------------------------------------------------------------------------
    def _second_client_wait(self, mode: str, hold: float) -> tuple[float, float, list[str]]:
        """First client holds its session for *hold* s; how long does a second one wait?

        Returns the wait, how long the first stayed, and what the server logged
        about waiting clients.
        """
        from netkit.clients.upper import LineClient
        from netkit.services.upper import UpperServer

        log = Recorder()
        with UpperServer(log, port=0, mode=mode) as server:
            host, port = server.address
            first = LineClient(host, port, timeout=5.0)
            first.exchange(b"first")
            waited: list[float] = []

            def second() -> None:
                started = time.monotonic()
                with LineClient(host, port, timeout=5.0) as client:
                    client.exchange(b"second")
                    waited.append(time.monotonic() - started)
                    client.finish()

            thread = threading.Thread(target=second)
            started = time.monotonic()
            thread.start()
            thread.join(hold)  # the first client keeps its session open this long
            held = time.monotonic() - started
            first.finish()
            first.sock.close()
            thread.join(5.0)
        logged = [
            f"{w.peer} waits, {w.queued} queued, while {w.serving} is served"
            for w in log.of(ClientWaiting)
        ]
        return (waited[0] if waited else float("inf")), held, logged

    def socketserver(self) -> None:
        self.section(
            "4",
            "With TCPServer, what happens to a second client while the first is connected? "
            "And with ThreadingMixIn?",
        )
        hold = 0.5
        sync_wait, held, logged = self._second_client_wait("sync", hold)
        for line in logged:
            self.step("server", f"--mode sync logged: {line}")
        self.step(
            "client",
            f"--mode sync: the first client stays {held:.2f} s; the second client's "
            f"reply came after {sync_wait:.2f} s",
            mode="sync",
            waited_s=round(sync_wait, 3),
        )
        thread_wait, _, _ = self._second_client_wait("thread", hold)
        self.step(
            "client",
            f"--mode thread: the second client's reply came after {thread_wait * 1000:.1f} ms",
            mode="thread",
            waited_s=round(thread_wait, 4),
        )
        self.claim(
            "sync serves one client at a time: the second waits until the first leaves",
            sync_wait >= held * 0.9,
            waited_s=round(sync_wait, 3),
            first_stayed_s=round(held, 3),
        )
        self.claim(
            "thread serves both at once: the second is answered while the first is still connected",
            thread_wait < held / 2,
            waited_s=round(thread_wait, 4),
        )

    # -- 5 -------------------------------------------------------------------------------
    def asynchronous(self) -> None:
        from netkit.demo_measure import measure
        from netkit.services.upper import can_fork

        self.section(
            "5",
            "What does each model cost: a thread per client, a process per client, one event loop?",
        )
        modes = ["thread", "fork", "async"] if can_fork() else ["thread", "async"]
        self.step(
            "client",
            f"each mode in a server process of its own, loaded from {1 + BUSY} client "
            f"processes of their own: {IDLE} idle connections held open and {BUSY} busy ones "
            f"(a line, its reply, the next line; {LINES} lines per connection) for "
            f"{self.seconds:g} s",
            idle=IDLE,
            busy=BUSY,
            lines_per_connection=LINES,
            seconds=self.seconds,
        )
        rows: list[list[Any]] = []
        results = {}
        loops: list[str] = []
        for mode in modes:
            what = f"measuring --mode {mode}"
            self.progress(what, 0.0)

            def shown(done: float, what: str = what) -> None:
                self.progress(what, done)

            got = measure(mode, self.seconds, idle=IDLE, busy=BUSY, lines=LINES, progress=shown)
            self.progress("", 1.0, done=True)
            results[mode] = got
            use = got.usage
            p50, p99 = got.p(0.5), got.p(0.99)
            cpu = got.cpu_us_per_request
            on = f" on {got.loop}" if got.loop else ""
            if got.loop:
                loops.append(f"--mode {mode} ran on {got.loop}.")
            procs = f"{use.processes} process" + ("es" if use.processes != 1 else "")
            self.step(
                "server",
                f"--mode {mode}{on}: {got.rate:,.0f} requests/s, latency p50 {_ms(p50)} "
                f"p99 {_ms(p99)}; {_us(cpu)} of server CPU a request; {use.threads} threads "
                f"in {procs}, {use.rss_kib / 1024:.1f} MiB RSS ({use.pss_kib / 1024:.1f} MiB "
                "PSS)",
                mode=mode,
                loop=got.loop or None,
                requests=got.requests,
                connections=got.connections,
                errors=got.errors,
                requests_per_second=round(got.rate),
                cpu_us_per_request=None if cpu is None else round(cpu, 1),
                p50_ms=p50,
                p99_ms=p99,
                threads=use.threads,
                processes=use.processes,
                rss_kib=use.rss_kib,
                pss_kib=use.pss_kib,
            )
            rows.append(
                [
                    mode,
                    round(got.rate),
                    _ms(p50, unit=False),
                    _ms(p99, unit=False),
                    "-" if cpu is None else round(cpu),
                    use.threads,
                    use.processes,
                    round(use.rss_kib / 1024, 1),
                    round(use.pss_kib / 1024, 1),
                ]
            )
        self.sink(
            DemoTable(
                exercise="5",
                title=f"upper-server with {IDLE} idle and {BUSY} busy connections, "
                "clients in processes of their own",
                columns=list(TABLE_COLUMNS),
                rows=rows,
                note=f"Measured just now on this machine, {self.seconds:g} s per mode; "
                "req/s: requests a second from the 4 busy clients; p50 / p99: the median "
                "and 99th percentile of a request's round trip; "
                "CPU µs/req is the CPU time the server (and its children) spent per request; "
                "threads, processes and memory are the server's and its children's, "
                "from /proc, the largest of three looks while the load ran (RSS counts "
                "the pages a fork shares once per process, PSS divides them among the "
                "processes). A figure for this machine at this moment, not a benchmark "
                "(benchmarks/tcp.py measures against a C reference)."
                + "".join(f" {what}" for what in loops),
            )
        )
        self.claim(
            "every mode speaks the same protocol and served every request",
            all(r.requests > 0 and r.errors == 0 and r.idle == IDLE for r in results.values()),
            errors=sum(r.errors for r in results.values()),
        )
        thread, loop = results["thread"].usage, results["async"].usage
        self.claim(
            f"a thread per client costs a thread per client: --mode thread ran at least "
            f"{IDLE} threads for {IDLE} idle clients, one event loop a handful",
            thread.threads >= IDLE and loop.threads < 10 and loop.processes == 1,
            thread_threads=thread.threads,
            async_threads=loop.threads,
        )
        if "fork" in results:
            fork = results["fork"].usage
            self.claim(
                f"a process per client costs a process and its memory per client: --mode fork "
                f"ran at least {IDLE} processes and used more memory than --mode async",
                fork.processes > IDLE and fork.pss_kib > loop.pss_kib,
                fork_processes=fork.processes,
                fork_pss_mib=round(fork.pss_kib / 1024, 1),
                async_pss_mib=round(loop.pss_kib / 1024, 1),
            )

    # -- addresses ---------------------------------------------------------------------------
    def addresses(self) -> None:
        import sys

        from netkit.protocols import ipaddr
        from netkit.services.resolve import resolve_system

        self.section(
            "addresses",
            "What does a name resolve to, and how does an address look in network and "
            "host byte order?",
        )
        found = resolve_system("localhost", timeout=5.0)
        self.step(
            "resolve",
            f"netkit resolve localhost: canonical {escape(found.canonical)!r}, "
            f"addresses {', '.join(found.addresses)}",
            addresses=found.addresses,
        )
        parsed = ipaddr.parse_strict("192.168.1.1").address
        packed = parsed.packed
        host_value = ipaddr.host_order_integer(packed)
        self.step(
            "pack-ip",
            f"netkit pack-ip 192.168.1.1: packed {packed.hex(' ')}, network-order integer "
            f"{int(parsed)}, read in this {sys.byteorder}-endian machine's order "
            f"{host_value}",
            packed=packed.hex(),
            integer=int(parsed),
            host_order_integer=host_value,
        )
        self.claim(
            "localhost resolves to a loopback address",
            any(a.startswith("127.") or a == "::1" for a in found.addresses),
        )
        self.claim(
            "network byte order is big-endian: 192.168.1.1 is c0 a8 01 01 on the wire, "
            "and ntohl() of the host-order reading gives the address back",
            packed == bytes([192, 168, 1, 1]) and socket.ntohl(host_value) == int(parsed),
        )
        self.layers()

    def layers(self) -> None:
        """netkit anatomy udp when this process may capture; how to run it when not."""
        from netkit.services import anatomy

        try:
            outcome = anatomy.run_exchange("udp", lambda e: None)
        except net.NetError:
            self.step("anatomy", "netkit anatomy udp needs CAP_NET_RAW: run `sudo netkit anatomy`")
            return
        anatomy.dissect_outcome(outcome, loopback=True)
        request = outcome.layers[0]
        sizes = {x.kind: x.header.length for x in request}
        data = len(outcome.captured[0].frame) - sum(sizes.values())
        self.step(
            "anatomy",
            f"netkit anatomy udp: {data} bytes of data in a UDP datagram (+{sizes['udp']}) in an "
            f"IPv4 packet (+{sizes['ip']}) in an Ethernet frame (+{sizes['eth']}); "
            f"{outcome.duplicates} loopback duplicates dropped",
            frames=len(outcome.captured),
        )
        self.claim(
            "each layer adds its header to the data of the one above",
            len(outcome.captured) == 2 and data == len(b"hello, layers\n"),
        )


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} µs"


def _ms(value: float | None, *, unit: bool = True) -> str:
    """A latency in milliseconds as shown: ``0.21 ms`` (``-`` for none)."""
    if value is None:
        return "-"
    text = f"{value:.2f}" if value < 10 else f"{value:.0f}"
    return f"{text} ms" if unit else text


def run_demo(
    sink: Sink, exercises: list[str], seconds: float = 2.0, *, progress: bool = False
) -> bool:
    """Run *exercises* (keys of :data:`EXERCISES`); True when every claim held.

    With *progress*, long measurements emit :class:`DemoProgress` events
    (for a terminal: nothing to keep, nothing for a pipe).
    """
    return Demo(sink, seconds=seconds, progress=progress).run(exercises)
