"""netkit anatomy: run one real exchange, capture its frames, take them apart.

- :class:`FrameCapture` reads frames from an ``AF_PACKET`` socket bound to
  one interface, with a kernel filter (classic BPF) letting through only
  the exchange's ports (and ARP), in a background thread that stops
  within a bounded time.  On loopback every frame passes the tap twice
  (once going out, once coming in); the outgoing copy is dropped and
  counted.
- :class:`Namespaces` makes two network namespaces joined by a veth pair
  (``--netns``) and always removes them again; code runs inside one of
  them on a thread of its own (``setns(2)`` changes only that thread).
- The exchanges: udp-echo and upper-server through their public API, and
  a small HTTP server and DNS responder of this module's own.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import select
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from netkit.events import Sink
from netkit.net import NetError
from netkit.protocols import capture as cap
from netkit.protocols.dissect import Dissector, Layer
from netkit.protocols.steps import direction, lecture_steps

T = TypeVar("T")

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_ATTACH_FILTER = 26
SO_TIMESTAMP = 29
CLONE_NEWNET = 0x40000000
EXCHANGES = ("udp", "tcp", "http", "dns", "all")
DNS_NAME = "www.example.test"
CLIENT_IP, SERVER_IP = "192.0.2.1", "192.0.2.2"  # RFC 5737 documentation range
TIMEOUT = 5.0

NEED_RAW = (
    "capturing frames needs CAP_NET_RAW: run `sudo netkit anatomy`, or give the interpreter "
    "the capability (`sudo setcap cap_net_raw+ep $(readlink -f $(command -v python3))`); "
    "`netkit anatomy --no-capture` shows what a socket alone can tell"
)
NEED_ADMIN = (
    "--netns needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to make network namespaces: "
    "run `sudo netkit anatomy --netns`"
)


# -- capture -----------------------------------------------------------------------------------


@dataclass
class Captured:
    time_us: int
    frame: bytes
    outgoing: bool


class FrameCapture:
    """Frames on one interface to or from *ports*, read in a background thread."""

    def __init__(self, interface: str, ports: list[int], *, arp: bool = False) -> None:
        self.interface = interface
        self.ports = ports
        self.arp = arp
        self.loopback = interface == "lo"
        self.frames: list[Captured] = []
        self.duplicates = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._filter: ctypes.Array[ctypes.c_char] | None = None

    def open(self) -> None:
        """Make the socket in this thread's namespace; PermissionError without CAP_NET_RAW."""
        # protocol 0: nothing is queued before the filter is on and the socket is bound
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            program = cap.filter_bytes(cap.port_filter(self.ports, arp=self.arp))
            self._filter = ctypes.create_string_buffer(program)
            fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(self._filter))
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
            sock.bind((self.interface, ETH_P_ALL))
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._thread = threading.Thread(target=self._read, name="netkit-capture", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        sock = self._sock
        assert sock is not None
        space = socket.CMSG_SPACE(16)
        while not self._stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.05)
            if not ready:
                continue
            try:
                data, anc, _flags, addr = sock.recvmsg(65536, space)
            except OSError:
                return
            stamp = time.time_ns() // 1000
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMP and len(value) >= 16:
                    sec, usec = struct.unpack("qq", value[:16])
                    stamp = sec * 1_000_000 + usec
            outgoing = addr[2] == PACKET_OUTGOING
            with self._cond:
                if outgoing and self.loopback:
                    self.duplicates += 1  # the same frame comes back in as PACKET_HOST
                else:
                    self.frames.append(Captured(stamp, data, outgoing))
                self._cond.notify_all()

    def wait_until(self, done: Callable[[list[Captured]], bool], timeout: float = TIMEOUT) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: done(self.frames), timeout)

    def close(self, timeout: float = 1.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()


def tcp_closed(server_ports: set[int]) -> Callable[[list[Captured]], bool]:
    """True once both sides' FIN and the ACK of the second are captured (or a RST)."""

    def done(frames: list[Captured]) -> bool:
        fins: list[int] = []
        last_fin_at = -1
        for n, c in enumerate(frames):
            info = _tcp_flags(c.frame, server_ports)
            if info is None:
                continue
            flags, from_server = info
            if flags & 0x04:
                return True
            if flags & 0x01:
                side = 1 if from_server else 0
                if side not in fins:
                    fins.append(side)
                    last_fin_at = n
            elif len(fins) == 2 and n > last_fin_at and flags & 0x10:
                return True
        return False

    return done


def _tcp_flags(frame: bytes, server_ports: set[int]) -> tuple[int, bool] | None:
    """(flags, from the server) of an Ethernet/IPv4-or-IPv6/TCP frame to one of the ports."""
    if len(frame) < 14:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype == 0x0800 and len(frame) >= 34 and frame[23] == 6:
        at = 14 + (frame[14] & 0x0F) * 4
    elif ethertype == 0x86DD and len(frame) >= 54 and frame[20] == 6:
        at = 54
    else:
        return None
    if len(frame) < at + 14:
        return None
    sport, dport = struct.unpack_from("!HH", frame, at)
    if not {sport, dport} & server_ports:
        return None
    return frame[at + 13], sport in server_ports


def count_udp(n: int) -> Callable[[list[Captured]], bool]:
    def done(frames: list[Captured]) -> bool:
        return sum(1 for c in frames if _is_udp(c.frame)) >= n

    return done


def _is_udp(frame: bytes) -> bool:
    if len(frame) < 34:
        return False
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    return (ethertype == 0x0800 and frame[23] == 17) or (ethertype == 0x86DD and frame[20] == 17)


# -- network namespaces ------------------------------------------------------------------------


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)


def setns(name: str) -> None:
    """Move the calling thread into network namespace *name* (``ip netns`` made it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def in_namespace(name: str | None, fn: Callable[[], T], timeout: float = 30.0) -> T:
    """Run *fn* on a thread inside namespace *name* (here when None); its result or its error."""
    if name is None:
        return fn()
    box: queue.Queue[tuple[bool, Any]] = queue.Queue()

    def body() -> None:
        try:
            setns(name)
            box.put((True, fn()))
        except BaseException as exc:
            box.put((False, exc))

    threading.Thread(target=body, name=f"netkit-in-{name}", daemon=True).start()
    try:
        ok, value = box.get(timeout=timeout)
    except queue.Empty:
        raise NetError(f"no answer from namespace {name} within {timeout:g} s") from None
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


@dataclass
class Namespaces:
    """Two namespaces joined by a veth pair: client 192.0.2.1/24, server 192.0.2.2/24."""

    tag: str = field(default_factory=lambda: str(os.getpid()))
    client: str = ""
    server: str = ""
    client_if: str = ""
    server_if: str = ""

    def __post_init__(self) -> None:
        self.client, self.server = f"netkit-{self.tag}-client", f"netkit-{self.tag}-server"
        self.client_if, self.server_if = f"nk{self.tag}c"[:15], f"nk{self.tag}s"[:15]

    def __enter__(self) -> Namespaces:
        try:
            self._make()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _run(self, *args: str) -> None:
        done = _ip(*args)
        if done.returncode != 0:
            message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
            if "Operation not permitted" in message or "Permission denied" in message:
                raise NetError(NEED_ADMIN)
            raise NetError(f"ip {' '.join(args)} failed: {message or done.returncode}")

    def _make(self) -> None:
        self._run("netns", "add", self.client)
        self._run("netns", "add", self.server)
        self._run(
            "link", "add", self.client_if, "netns", self.client, "type", "veth",
            "peer", "name", self.server_if, "netns", self.server,
        )  # fmt: skip
        self._run("-n", self.client, "addr", "add", f"{CLIENT_IP}/24", "dev", self.client_if)
        self._run("-n", self.server, "addr", "add", f"{SERVER_IP}/24", "dev", self.server_if)
        self._run("-n", self.client, "link", "set", self.client_if, "up")
        self._run("-n", self.server, "link", "set", self.server_if, "up")

    def remove(self) -> None:
        """Delete both namespaces (the veth pair goes with them); never fails."""
        for name in (self.client, self.server):
            _ip("netns", "delete", name)

    def mac(self, side: str) -> str:
        ns, dev = (
            (self.client, self.client_if) if side == "client" else (self.server, self.server_if)
        )
        done = _ip("-n", ns, "-j", "link", "show", "dev", dev)
        try:
            return str(json.loads(done.stdout)[0]["address"])
        except (ValueError, LookupError, TypeError):
            return "?"

    def neighbours(self, side: str) -> list[dict[str, str]]:
        ns = self.client if side == "client" else self.server
        done = _ip("-n", ns, "-j", "neigh", "show")
        try:
            entries = json.loads(done.stdout or "[]")
        except ValueError:
            return []
        return [
            {
                "address": str(e.get("dst", "")),
                "mac": str(e.get("lladdr", "")),
                "state": ",".join(e.get("state", [])),
            }
            for e in entries
        ]


def leftover_namespaces() -> list[str]:
    """Names of netkit's namespaces that exist now (the tests check there are none left)."""
    done = _ip("netns", "list")
    return [line.split()[0] for line in done.stdout.splitlines() if line.startswith("netkit-")]


# -- the small servers of anatomy's own ------------------------------------------------------

HTTP_BODY = b"<html><body><h1>Hello from netkit anatomy</h1></body></html>\n"


class OneShotServer:
    """A server socket that answers one request in a background thread (http or dns)."""

    def __init__(self, kind: str, host: str, answer_ip: str = "127.0.0.1") -> None:
        self.kind = kind
        self.host = host
        self.answer_ip = answer_ip
        self.served = threading.Event()
        self.error: BaseException | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.requests = 1

    def start(self) -> OneShotServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        kind = socket.SOCK_STREAM if self.kind == "http" else socket.SOCK_DGRAM
        sock = socket.socket(family, kind)
        sock.bind((self.host, 0))
        if self.kind == "http":
            sock.listen(4)
        sock.settimeout(TIMEOUT)
        self._sock = sock
        target = self._http if self.kind == "http" else self._dns
        self._thread = threading.Thread(target=self._guard(target), daemon=True)
        self._thread.start()
        return self

    @property
    def address(self) -> tuple[str, int]:
        assert self._sock is not None
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def _guard(self, fn: Callable[[socket.socket], None]) -> Callable[[], None]:
        def run() -> None:
            assert self._sock is not None
            try:
                for _ in range(self.requests):
                    fn(self._sock)
            except OSError as exc:
                self.error = exc
            finally:
                self.served.set()

        return run

    def _http(self, sock: socket.socket) -> None:
        conn, _ = sock.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return  # a connection without a request (the dns exchange)
                head += chunk
            response = (
                b"HTTP/1.1 200 OK\r\n"
                b"Server: netkit-anatomy\r\n"
                b"Content-Type: text/html; charset=utf-8\r\n"
                b"Content-Length: " + str(len(HTTP_BODY)).encode() + b"\r\n"
                b"Connection: close\r\n\r\n" + HTTP_BODY
            )
            conn.sendall(response)

    def _dns(self, sock: socket.socket) -> None:
        import dns.message
        import dns.rrset

        wire, peer = sock.recvfrom(4096)
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        for question in query.question:
            rdtype = "AAAA" if ":" in self.answer_ip else "A"
            response.answer.append(
                dns.rrset.from_text(question.name, 300, "IN", rdtype, self.answer_ip)
            )
        sock.sendto(response.to_wire(), peer)

    def stop(self, grace: float = 1.0) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        if self._thread is not None:
            self._thread.join(grace)


# -- the clients -----------------------------------------------------------------------------


@dataclass
class SocketView:
    role: str
    transport: str
    local: str
    peer: str
    tcp_info: dict[str, Any] | None


def _peer(addr: tuple[Any, ...]) -> str:
    host = str(addr[0])
    return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"


def _tcp_view(sock: socket.socket, role: str) -> SocketView:
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return SocketView(
        role,
        "tcp",
        _peer(sock.getsockname()),
        _peer(sock.getpeername()),
        cap.parse_tcp_info(raw).as_dict(),
    )


def udp_client(server: tuple[str, int], payload: bytes, views: list[SocketView]) -> bytes:
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(server)
        sock.send(payload)
        reply = sock.recv(65536)
        views.append(SocketView("client", "udp", _peer(sock.getsockname()), _peer(server), None))
        return reply


def line_client(server: tuple[str, int], line: bytes, views: list[SocketView]) -> bytes:
    with socket.create_connection(server, timeout=TIMEOUT) as sock:
        views.append(_tcp_view(sock, "client, after connect()"))
        sock.sendall(line)
        reply = b""
        while not reply.endswith(b"\n") and len(reply) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        views.append(_tcp_view(sock, "client, after the reply"))
        return reply


def http_client(server: tuple[str, int], host_header: str, views: list[SocketView]) -> bytes:
    request = (
        f"GET / HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: netkit-anatomy\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(server, timeout=TIMEOUT) as sock:
        views.append(_tcp_view(sock, "client, after connect()"))
        sock.sendall(request)
        response = b""
        while len(response) < 1 << 20:
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
        views.append(_tcp_view(sock, "client, after the server closed"))
        return response


def connect_only(server: tuple[str, int], views: list[SocketView]) -> None:
    with socket.create_connection(server, timeout=TIMEOUT) as sock:
        views.append(_tcp_view(sock, "client, after connect()"))


def dns_client(server: tuple[str, int], name: str, views: list[SocketView]) -> str:
    import dns.message
    import dns.rdatatype

    query = dns.message.make_query(name, "AAAA" if ":" in server[0] else "A", id=0x1A2B)
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(server)
        sock.send(query.to_wire())
        wire = sock.recv(65536)
        views.append(SocketView("resolver", "udp", _peer(sock.getsockname()), _peer(server), None))
    answer = dns.message.from_wire(wire)
    for rrset in answer.answer:
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            return str(next(iter(rrset)))
    raise NetError(f"the DNS responder gave no address for {name}")


# -- the whole run ---------------------------------------------------------------------------


@dataclass
class Plan:
    """Where things run: hosts, namespaces and the capture interface."""

    netns: Namespaces | None
    client_host: str
    server_host: str
    interface: str

    @property
    def client_ns(self) -> str | None:
        return self.netns.client if self.netns else None

    @property
    def server_ns(self) -> str | None:
        return self.netns.server if self.netns else None


@dataclass
class Outcome:
    exchange: str
    captured: list[Captured]
    duplicates: int
    ports: dict[str, int]
    views: list[SocketView]
    results: dict[str, str]
    layers: list[list[Layer]] = field(default_factory=list)


def _start_servers(exchange: str, plan: Plan, sink: Sink) -> dict[str, Any]:
    """The servers the exchange needs, started (inside the server namespace with --netns)."""
    from netkit.services.udp_echo import UdpEchoServer
    from netkit.services.upper import UpperServer

    started: dict[str, Any] = {}

    def start_all() -> None:
        host = plan.server_host
        if exchange == "udp":
            started["udp-echo"] = UdpEchoServer(sink, host=host, port=0, count=1, quiet=True)
        elif exchange == "tcp":
            started["upper-server"] = UpperServer(
                sink, host=host, port=0, mode="thread", count=1, quiet=True
            )
        else:
            if exchange in ("dns", "all"):
                started["dns"] = OneShotServer("dns", host, answer_ip=host)
            started["http"] = OneShotServer("http", host)
        for service in started.values():
            service.start()

    try:
        in_namespace(plan.server_ns, start_all)
    except BaseException:
        for service in started.values():
            with contextlib.suppress(Exception):
                service.stop()
        raise
    return started


def run_exchange(
    exchange: str,
    sink: Sink,
    *,
    capture: bool = True,
    netns: Namespaces | None = None,
    version: int | None = None,
) -> Outcome:
    """Run *exchange* (udp, tcp, http, dns, all) once; the captured frames and what sockets saw."""
    if netns is not None:
        plan = Plan(netns, CLIENT_IP, SERVER_IP, netns.client_if)
    elif version == 6:
        plan = Plan(None, "::1", "::1", "lo")
    else:
        plan = Plan(None, "127.0.0.1", "127.0.0.1", "lo")
    servers = _start_servers(exchange, plan, sink)
    try:
        ports = {name: int(s.address[1]) for name, s in servers.items()}
        grabber: FrameCapture | None = None
        if capture:
            grabber = FrameCapture(plan.interface, sorted(ports.values()), arp=netns is not None)
            try:
                in_namespace(plan.client_ns, grabber.open)
            except PermissionError:
                raise NetError(NEED_RAW) from None
        try:
            views: list[SocketView] = []
            results = in_namespace(
                plan.client_ns, lambda: _client_side(exchange, plan, ports, views)
            )
            if grabber is not None:
                server_ports = set(ports.values())
                if exchange == "udp":
                    done = count_udp(2)
                elif exchange == "dns":
                    both = count_udp(2)
                    closed = tcp_closed(server_ports)

                    def done(f: list[Captured]) -> bool:
                        return both(f) and closed(f)
                else:
                    closed = tcp_closed(server_ports)
                    udp_n = 2 if exchange == "all" else 0

                    def done(f: list[Captured]) -> bool:
                        return closed(f) and count_udp(udp_n)(f)

                if not grabber.wait_until(done):
                    sink_note = "the capture did not see the whole exchange within 5 s"
                    results["capture"] = sink_note
        finally:
            if grabber is not None:
                grabber.close()
    finally:
        for service in servers.values():
            service.stop(1.0)
    return Outcome(
        exchange,
        list(grabber.frames) if grabber else [],
        grabber.duplicates if grabber else 0,
        ports,
        views,
        results,
    )


def _client_side(
    exchange: str, plan: Plan, ports: dict[str, int], views: list[SocketView]
) -> dict[str, str]:
    host = plan.server_host
    results: dict[str, str] = {}
    if exchange == "udp":
        reply = udp_client((host, ports["udp-echo"]), b"hello, layers\n", views)
        results["reply"] = reply.decode("utf-8", "backslashreplace")
    elif exchange == "tcp":
        reply = line_client((host, ports["upper-server"]), b"hello, layers\n", views)
        results["reply"] = reply.decode("utf-8", "backslashreplace")
    else:
        target = host
        if exchange in ("dns", "all"):
            target = dns_client((host, ports["dns"]), DNS_NAME, views)
            results["address"] = target
        if exchange == "dns":
            connect_only((target, ports["http"]), views)
        else:
            shown = DNS_NAME if exchange == "all" else target
            host_header = (
                f"[{shown}]:{ports['http']}" if ":" in shown else f"{shown}:{ports['http']}"
            )
            response = http_client((target, ports["http"]), host_header, views)
            results["status"] = response.split(b"\r\n", 1)[0].decode("latin-1")
    return results


def dissect_outcome(outcome: Outcome, *, loopback: bool) -> list[list[Layer]]:
    dissector = Dissector(
        dns_ports=frozenset({outcome.ports["dns"]}) if "dns" in outcome.ports else frozenset(),
        http_ports=frozenset({outcome.ports["http"]}) if "http" in outcome.ports else frozenset(),
        loopback=loopback,
    )
    outcome.layers = [dissector.dissect(c.frame) for c in outcome.captured]
    return outcome.layers


@contextlib.contextmanager
def maybe_namespaces(enabled: bool) -> Iterator[Namespaces | None]:
    if not enabled:
        yield None
        return
    if os.geteuid() != 0:
        raise NetError(NEED_ADMIN)
    with Namespaces() as ns:
        yield ns


# -- from frames to events ---------------------------------------------------------------------


def report(
    outcome: Outcome,
    sink: Sink,
    *,
    client_ip: str,
    loopback: bool,
    interface: str = "lo",
    pcap: Any = None,
) -> list[str]:
    """Emit one frame event per captured frame; write them to *pcap*; return the directions."""
    from netkit.events.anatomy import AnatomyFrame

    layers = dissect_outcome(outcome, loopback=loopback)
    server_ports = set(outcome.ports.values())
    dirs = [direction(ls, server_ports, client_ip) for ls in layers]
    writer = cap.PcapngWriter(pcap, interface=interface) if pcap is not None else None
    start = outcome.captured[0].time_us if outcome.captured else 0
    for n, (c, ls, d) in enumerate(zip(outcome.captured, layers, dirs, strict=True)):
        if writer is not None:
            writer.write(c.frame, c.time_us, outbound=None if loopback else c.outgoing)
        sink(
            AnatomyFrame(
                index=n + 1,
                direction=d,
                time=round((c.time_us - start) / 1e6, 6),
                length=len(c.frame),
                layers=[x.as_dict() for x in ls],
                hex=c.frame.hex(),
                dissected=ls,
            )
        )
    return dirs


LOOPBACK_NOTES = [
    "loopback: every frame passes the capture twice (going out, coming in); "
    "the outgoing copy is dropped and counted",
    "loopback: MAC addresses are all zero and there is no ARP (try --netns)",
    "loopback: TCP/UDP checksums are left to the NIC (checksum offload) and hold only the "
    "pseudo-header sum; netkit's own computation is shown beside each",
]
NETNS_NOTES = [
    "two network namespaces joined by a veth pair: client 192.0.2.1, server 192.0.2.2 "
    "(RFC 5737 documentation addresses); captured on the client's end",
    "veth leaves TCP/UDP checksums to the NIC as well (checksum offload); netkit's own "
    "computation is shown beside each",
]
NO_CAPTURE_MISSING = (
    "without a capture: no headers, no sequence numbers on the wire, no MAC addresses, "
    "no checksums, no frame sizes (needs CAP_NET_RAW)"
)


def run_anatomy(
    sink: Sink,
    exchange: str,
    *,
    netns: bool = False,
    capture: bool = True,
    pcap: str | None = None,
    version: int | None = None,
) -> Outcome:
    """The whole command: namespaces, servers, capture, exchange, events; cleans up always."""
    from netkit.events.anatomy import AnatomyExchange, AnatomySocket, AnatomySummary

    if exchange not in EXCHANGES:
        raise ValueError(f"exchange must be one of {EXCHANGES}")
    if netns and os.geteuid() != 0:
        raise NetError(NEED_ADMIN)
    if capture and os.geteuid() != 0:
        _check_capture_privilege()
    with contextlib.ExitStack() as stack:
        # the file first: a bad path fails before anything runs
        pcap_file = stack.enter_context(open(pcap, "wb")) if pcap is not None else None
        ns = stack.enter_context(maybe_namespaces(netns))
        client_ip = CLIENT_IP if ns else ("::1" if version == 6 else "127.0.0.1")
        interface = ns.client_if if ns else "lo"
        before = [_neighbours(ns, "before", side) for side in ("client", "server")] if ns else []
        outcome = run_exchange(exchange, lambda e: None, capture=capture, netns=ns, version=version)
        sink(
            AnatomyExchange(
                exchange=exchange,
                interface=interface,
                servers={k: str(v) for k, v in outcome.ports.items()},
                netns=ns is not None,
                capture=capture,
                notes=(NETNS_NOTES if ns else LOOPBACK_NOTES) if capture else [NO_CAPTURE_MISSING],
            )
        )
        for event in before:
            sink(event)
        dirs: list[str] = []
        if capture:
            dirs = report(
                outcome, sink, client_ip=client_ip, loopback=ns is None,
                interface=interface, pcap=pcap_file,
            )  # fmt: skip
        else:
            for view in outcome.views:
                sink(
                    AnatomySocket(
                        view.role,
                        view.transport,
                        view.local,
                        view.peer,
                        view.tcp_info,
                        NO_CAPTURE_MISSING,
                    )
                )
        if ns is not None:
            for side in ("client", "server"):
                sink(_neighbours(ns, "after", side))
        lengths = [len(c.frame) for c in outcome.captured]
        steps = lecture_steps(outcome.layers, lengths, dirs, outcome.ports) if capture else []
        sink(
            AnatomySummary(
                exchange=exchange,
                frames=len(outcome.captured),
                duplicates_dropped=outcome.duplicates,
                steps=steps,
                ports=outcome.ports,
                pcap=pcap,
                counts={
                    "captured": int(capture),
                    "frames": len(outcome.captured),
                    "duplicates_dropped": outcome.duplicates,
                },
            )
        )
        if "capture" in outcome.results:
            raise NetError(outcome.results["capture"])
    return outcome


def _neighbours(ns: Namespaces, when: str, side: str) -> Any:
    from netkit.events.anatomy import AnatomyNeighbours

    address = CLIENT_IP if side == "client" else SERVER_IP
    return AnatomyNeighbours(when, side, address, ns.mac(side), ns.neighbours(side))


def _check_capture_privilege() -> None:
    """Fail before anything starts when an AF_PACKET socket cannot be made."""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except PermissionError:
        raise NetError(NEED_RAW) from None
