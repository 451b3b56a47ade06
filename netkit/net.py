"""Addresses, ports, bind/connect helpers and error translation.

This is the one place that turns ``OSError``, ``socket.gaierror`` and
timeouts into a single clear line (:func:`describe_error`), so every command
reports network failures the same way.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

UDP_MAX_PAYLOAD = 65_535  # receive-buffer size that never truncates a datagram


class NetError(Exception):
    """An expected runtime failure: reported as one line, exit code 1."""

    exit_code = 1


class UsageError(ValueError):
    """Bad input from the user: reported as a usage error, exit code 2."""


# --------------------------------------------------------------------------
# parsing


def parse_port(text: str | int, *, allow_zero: bool = True) -> int:
    """Parse a port number 0..65535 (1..65535 when *allow_zero* is false)."""
    if isinstance(text, int):
        value = text
    else:
        s = text.strip()
        if not s.isascii() or not s.isdigit():
            raise UsageError(f"{text!r} is not a port number (0-65535)")
        value = int(s)
    low = 0 if allow_zero else 1
    if not low <= value <= 65535:
        raise UsageError(f"port {value} is out of range ({low}-65535)")
    return value


def split_host_port(text: str) -> tuple[str, int | None]:
    """Split ``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address.

    Returns the host (brackets removed) and the port or ``None``.
    """
    s = text.strip()
    if not s:
        raise UsageError("empty host")
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise UsageError(f"{text!r}: missing ']' after IPv6 address")
        host, rest = s[1:end], s[end + 1 :]
        if not host:
            raise UsageError(f"{text!r}: empty address in brackets")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise UsageError(f"{text!r}: expected ':PORT' after ']'")
        return host, parse_port(rest[1:])
    if s.count(":") == 1:
        host, port = s.split(":")
        if not host:
            raise UsageError(f"{text!r}: empty host before ':'")
        return host, parse_port(port)
    # no colon: a name or IPv4; two or more: a bare IPv6 address
    if any(c.isspace() for c in s):
        raise UsageError(f"{text!r}: a host name cannot contain spaces")
    return s, None


def family_of(version: int | None) -> socket.AddressFamily:
    if version == 4:
        return socket.AF_INET
    if version == 6:
        return socket.AF_INET6
    return socket.AF_UNSPEC


def format_host(host: str) -> str:
    """``host`` as it goes before ``:port``: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host else host


def format_peer(addr: tuple[object, ...] | str) -> str:
    """``host:port`` for an IPv4 sockaddr, ``[host]:port`` for IPv6.

    An IPv4 client of a dual-stack ``::`` socket arrives as ``::ffff:a.b.c.d``;
    it is shown as the IPv4 address it is (``a.b.c.d:port``), as ncat does.
    """
    if isinstance(addr, str):  # AF_UNIX
        return addr
    host, port = str(addr[0]), int(str(addr[1]))
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return f"{format_host(host)}:{port}"


def _packed(text: str) -> bytes | None:
    """The 4 or 16 bytes of an IPv4 or IPv6 address (a ``%scope`` allowed), or None.

    ``inet_pton`` decides, as ``ipaddress.ip_address`` would (dotted quads
    without leading zeros, every IPv6 form), without importing ipaddress:
    every client asks this of its host before a lookup.
    """
    addr = text.split("%", 1)[0]
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, addr)
        except (OSError, ValueError):  # ValueError: a NUL byte, or not ASCII
            continue
    return None


def is_ip_address(text: str) -> bool:
    """An IPv4 or IPv6 address (a ``%scope`` allowed), not a name."""
    return _packed(text) is not None


def is_loopback(text: str) -> bool:
    """127.0.0.0/8, ``::1`` or 127.0.0.0/8 mapped into IPv6 (``::ffff:127.0.0.1``,
    what a dual-stack socket sees), a ``%scope`` allowed; False for a name."""
    packed = _packed(text)
    if packed is None:
        return False
    if len(packed) == 4:
        return packed[0] == 127
    return packed == bytes(15) + b"\x01" or packed[:13] == bytes(10) + b"\xff\xff\x7f"


# --------------------------------------------------------------------------
# error translation

_ERRNO_HINTS = {
    errno.EADDRINUSE: "address already in use (is another server running? try another --port, "
    "or --port 0 for any free port)",
    errno.EACCES: "permission denied (ports below 1024 need root; try a port of 1024 or more)",
    errno.EADDRNOTAVAIL: "address not available on this machine (check --host)",
    errno.ECONNREFUSED: "connection refused (is the server running on that port?)",
    errno.ECONNRESET: "connection reset by peer",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
    errno.EMFILE: "too many open files (raise the limit with 'ulimit -n')",
    errno.ENFILE: "too many open files in the system",
    errno.ENOSPC: "no space left on device",
    errno.EPIPE: "broken pipe (the peer closed the connection)",
    errno.EAFNOSUPPORT: "address family not supported (IPv6 disabled? try -4)",
    errno.EMSGSIZE: "message too long for one datagram",
}


# errors of file operations (the OSError carries a filename)
_FILE_HINTS = {
    errno.EACCES: "permission denied (check the permissions of the file and its directory)",
    errno.EPERM: "operation not permitted (an immutable or append-only file?)",
    errno.ENOENT: "no such file or directory (does its directory exist?)",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EISDIR: "is a directory",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ELOOP: "a symbolic link (refused)",
    errno.ENAMETOOLONG: "file name too long",
    errno.ETXTBSY: "file busy",
}


def _ancestors(path: str) -> list[str]:
    out = [path]
    while os.path.dirname(out[-1]) != out[-1]:
        out.append(os.path.dirname(out[-1]))
    return out[::-1]


def _file_hint(exc: OSError, name: str) -> str:
    if exc.errno == errno.EACCES:
        parent = os.path.dirname(os.path.abspath(name))
        closed = [d for d in _ancestors(parent) if not os.access(d, os.X_OK)]
        if closed:
            return f"permission denied: this user may not enter the directory {closed[0]}"
        if not os.path.lexists(name) and not os.access(parent, os.W_OK):
            return f"permission denied: this user may not create files in {parent}"
        if os.path.exists(name) and not os.access(name, os.W_OK):
            return "permission denied: the file is not writable for this user"
    return _FILE_HINTS.get(exc.errno or 0) or exc.strerror or type(exc).__name__


def describe_error(exc: BaseException, action: str = "") -> str:
    """One clear line for an expected failure: what failed and why.

    *action* says what was being done (``"connect to 127.0.0.1:8888"``).
    """
    prefix = f"{action}: " if action else ""
    if isinstance(exc, NetError):
        return f"{prefix}{exc}"
    if isinstance(exc, socket.gaierror):
        reason = exc.strerror or str(exc)
        return f"{prefix}cannot resolve: {reason}"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"{prefix}timed out"
    if isinstance(exc, OSError):
        filename = getattr(exc, "filename", None)
        if filename is not None:
            # a file, not a socket: name it, and never blame port numbers
            name = os.fsdecode(filename)
            hint = _file_hint(exc, name)
            return f"{prefix}{hint}" if name in prefix else f"{prefix}{name}: {hint}"
        known = _ERRNO_HINTS.get(exc.errno or 0)
        return f"{prefix}{known or exc.strerror or str(exc) or type(exc).__name__}"
    return f"{prefix}{exc}"


# --------------------------------------------------------------------------
# getaddrinfo-based helpers


@dataclass(frozen=True)
class Endpoint:
    family: socket.AddressFamily
    socktype: socket.SocketKind
    sockaddr: tuple[object, ...]

    @property
    def text(self) -> str:
        return format_peer(self.sockaddr)


def bounded(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run a blocking lookup in a daemon thread; give up after *timeout* seconds.

    The libc resolver has no timeout a caller can set (resolv.conf's, 5 s
    times 2 attempts by default, is the system's); a daemon thread lets the
    command end on time even if the lookup hangs.  The one mechanism for
    ``resolve`` and every client's name lookup: NetError ``WHAT: no answer
    from the system resolver within N s``.
    """
    box: list[tuple[bool, Any]] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:
            box.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=run, name="netkit-resolve", daemon=True).start()
    if not done.wait(max(timeout, 0.0)):
        raise NetError(
            f"{what}: no answer from the system resolver within {timeout:.3g} s"
        ) from None
    ok, value = box[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


def lookup(
    host: str,
    port: int,
    *,
    socktype: socket.SocketKind,
    version: int | None = None,
    passive: bool = False,
    timeout: float | None = None,
) -> list[Endpoint]:
    """getaddrinfo for *host*/*port*; a failure becomes :class:`NetError`.

    With *timeout*, a name (not an address) is looked up in a thread and
    given up after that many seconds (:func:`bounded`).
    """
    flags = socket.AI_PASSIVE if passive else 0
    where = f"{format_host(host)}:{port}"
    family = family_of(version)

    def resolve() -> list[Any]:
        return socket.getaddrinfo(host, port, family, socktype, 0, flags)

    try:
        if timeout is None or is_ip_address(host):
            infos = resolve()
        else:
            infos = bounded(resolve, timeout, f"cannot resolve {host!r}")
    except socket.gaierror as exc:
        scope = _missing_scope(host)
        if scope is not None:
            raise NetError(
                f"cannot use {host!r}: no network interface named {scope!r} "
                "(see 'ip link'; loopback needs no scope)"
            ) from exc
        fam = {4: " as IPv4", 6: " as IPv6"}.get(version or 0, "")
        raise NetError(f"cannot resolve {host!r}{fam}: {exc.strerror}") from exc
    except UnicodeError as exc:
        raise NetError(f"cannot resolve {host!r}: not a valid host name") from exc
    out = [Endpoint(fam, st, tuple(sa)) for fam, st, _proto, _canon, sa in infos]
    if not out:  # pragma: no cover - getaddrinfo raises instead
        raise NetError(f"cannot resolve {where}: no addresses")
    return out


def _missing_scope(host: str) -> str | None:
    """The zone of ``fe80::1%eth9`` when that interface does not exist, else None."""
    addr, sep, scope = host.partition("%")
    if not sep or not scope or scope.isdigit() or not is_ip_address(addr):
        return None
    try:
        socket.if_nametoindex(scope)
    except (OSError, ValueError):
        return scope
    return None


def bind_socket(
    host: str,
    port: int,
    *,
    socktype: socket.SocketKind,
    version: int | None = None,
    backlog: int = 128,
    reuse_port: bool = False,
    configure: Callable[[socket.socket], object] | None = None,
) -> socket.socket:
    """Bind (and for TCP listen on) the first address *host* resolves to.

    *configure* is called with the bound socket before it listens (for
    options the sockets it accepts are to inherit from the first one on).
    Raises :class:`NetError` naming the address and the reason.
    """
    last: OSError | None = None
    where = f"{format_host(host)}:{port}"
    for ep in lookup(host, port, socktype=socktype, version=version, passive=True):
        sock = socket.socket(ep.family, ep.socktype)
        try:
            if socktype == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port and hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if ep.family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
                # '::' serves IPv6 and IPv4 (as ncat -l and socat's UDP6/TCP6
                # listeners do), unless -6 asks for IPv6 only; any other
                # IPv6 address is IPv6 only
                both = version != 6 and is_wildcard(ep.sockaddr)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if both else 1)
            sock.bind(ep.sockaddr)
            if configure is not None:
                configure(sock)
            if socktype == socket.SOCK_STREAM:
                sock.listen(backlog)
        except OSError as exc:
            sock.close()
            last = exc
            where = ep.text
            continue
        return sock
    assert last is not None
    message = describe_error(last, f"cannot listen on {where}")
    if last.errno == errno.EADDRINUSE and version != 6 and host.strip("[]") == "::":
        message += "; '::' takes the port for IPv4 too (-6 for IPv6 only)"
    raise NetError(message) from last


def is_wildcard(sockaddr: tuple[object, ...]) -> bool:
    """``0.0.0.0`` or ``::``: bound to every address."""
    packed = _packed(str(sockaddr[0]))
    return packed is not None and not any(packed)


def dual_stack(sock: socket.socket | None) -> bool | None:
    """For a socket bound to the IPv6 wildcard ``::``: True when it serves IPv4
    too (IPV6_V6ONLY off), False when IPv6 only; None for any other address."""
    if sock is None or sock.family != socket.AF_INET6 or not is_wildcard(sock.getsockname()):
        return None
    return sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0


def seconds(value: float) -> str:
    """A wait for a message, two significant digits: ``2``, ``0.5``, ``0.33``, ``12``
    (a share of a deadline that is a hair short of the whole prints as the whole)."""
    return f"{value:.2g}" if value < 10 else str(round(value))


def remaining(deadline: float | None) -> float | None:
    """Seconds left until the monotonic *deadline* (never below 0); None for none."""
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)


def share(deadline: float | None, parts: int, cap: float | None = None) -> float | None:
    """One of *parts* equal shares of the time left until *deadline*, at most *cap*."""
    left = remaining(deadline)
    if left is None:
        return cap
    part = left / max(parts, 1)
    return part if cap is None else min(part, cap)


def connect_socket(
    host: str,
    port: int,
    *,
    socktype: socket.SocketKind,
    version: int | None = None,
    timeout: float | None = None,
    deadline: float | None = None,
) -> socket.socket:
    """Connect to the first address of *host* that answers; :class:`NetError` if none.

    One deadline (monotonic; *timeout* seconds from now unless given) bounds
    the whole: the name lookup, then each address in turn gets an equal
    share of what is left, so a name with several silent addresses still
    ends on time.  The socket keeps *timeout* for what follows.
    """
    if deadline is None and timeout is not None:
        deadline = time.monotonic() + timeout
    last: OSError | None = None
    where = f"{format_host(host)}:{port}"
    found = lookup(host, port, socktype=socktype, version=version, timeout=remaining(deadline))
    for i, ep in enumerate(found):
        sock = socket.socket(ep.family, ep.socktype)
        try:
            wait = share(deadline, len(found) - i, timeout)
            if wait is not None and wait <= 0:
                raise TimeoutError
            sock.settimeout(wait)
            sock.connect(ep.sockaddr)
            sock.settimeout(timeout)
        except OSError as exc:
            sock.close()
            last = exc
            where = ep.text
            continue
        return sock
    assert last is not None
    raise NetError(describe_error(last, f"cannot connect to {where}")) from last


class NoAnswer(NetError):
    """A datagram got no answer from one address (ICMP refused, timeout, unreachable).

    Raised inside a :meth:`DatagramPeer.exchange` attempt: the next address
    of the name may still answer.  *reason* is the short why (``connection
    refused``, ``timed out``) used when the address is listed among others.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message

    @classmethod
    def from_error(cls, exc: OSError, action: str) -> NoAnswer:
        """*exc* (refused, unreachable, ...) while *action* (``"sending to HOST:PORT"``)."""
        if isinstance(exc, ConnectionRefusedError):
            return cls(describe_error(exc, action), "connection refused")
        return cls(describe_error(exc, action), describe_error(exc))


class DatagramPeer:
    """A connected UDP socket to the first address of *host* that answers.

    UDP has no handshake, so which address of a name has a server is known
    only when an answer comes: on a stock ``/etc/hosts`` ``localhost`` is
    ``::1`` first while a server listens on ``127.0.0.1``.  Each
    :meth:`exchange` runs an attempt on the current address; until one
    address has answered, an attempt that raises :class:`NoAnswer` (or an
    address that cannot even be sent to) moves on to the next address and
    runs again, and *on_note* is told which address was skipped and, after
    a fallback, which one answered.  Once an address has answered, the peer
    stays with it.

    Until then one *deadline* (monotonic; *timeout* seconds from now unless
    given) bounds the whole: the name lookup (at most *timeout*), then every
    address in turn, each getting an equal share of what is left
    (:meth:`wait`), so a name with a silent address still ends on time.
    After the first answer each exchange waits *timeout* again.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        version: int | None = None,
        timeout: float | None = None,
        on_note: Callable[[str], None] | None = None,
        deadline: float | None = None,
        took: str = "answered",
    ) -> None:
        if deadline is None and timeout is not None:
            deadline = time.monotonic() + timeout
        self.deadline = deadline
        self.took = took  # what the note says the address that worked did
        budget = remaining(deadline)
        if budget is not None and timeout is not None:
            budget = min(budget, timeout)
        found = lookup(host, port, socktype=socket.SOCK_DGRAM, version=version, timeout=budget)
        unique = list(dict.fromkeys(ep.sockaddr for ep in found))
        self.endpoints = [next(ep for ep in found if ep.sockaddr == sa) for sa in unique]
        self.timeout = timeout
        self.on_note = on_note
        self.answered = False
        self._index = 0
        self._skipped: list[str] = []  # "ADDRESS (why)" for each address that did not answer
        self._sock: socket.socket | None = None

    def wait(self, tries: int = 1) -> float | None:
        """How long the next try may wait for an answer: *timeout* once an address
        has answered; before that, an equal share of the time left until the
        deadline for each of the *tries* left on each address left."""
        if self.answered:
            return self.timeout
        left = len(self.endpoints) - self._index
        return share(self.deadline, left * max(tries, 1), self.timeout)

    @property
    def last(self) -> bool:
        """The address in use is the name's last one: no other to try."""
        return self._index + 1 >= len(self.endpoints)

    @property
    def peer(self) -> str:
        """``host:port`` of the address in use (the one that answered, once one has)."""
        return self.endpoints[self._index].text

    @property
    def sock(self) -> socket.socket:
        if self._sock is None:
            ep = self.endpoints[self._index]
            sock = socket.socket(ep.family, socket.SOCK_DGRAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(ep.sockaddr)
            except OSError as exc:
                sock.close()
                raise NoAnswer.from_error(exc, f"cannot send to {ep.text}") from exc
            self._sock = sock
        return self._sock

    def exchange(self, attempt: Callable[[socket.socket], T]) -> T:
        """Run *attempt* with the socket; on :class:`NoAnswer` before any answer,
        again with the next address."""
        while True:
            try:
                result = attempt(self.sock)
            except NoAnswer as exc:
                if self.answered or self.last:
                    if self._skipped:
                        tried = "; ".join(self._skipped)
                        raise NoAnswer(
                            f"{exc}; no answer either from {tried}", exc.reason
                        ) from None
                    raise
                self._skipped.append(f"{self.peer}: {exc.reason}")
                self.close()
                self._index += 1
                continue
            if not self.answered and self._skipped and self.on_note is not None:
                skipped = "; ".join(self._skipped)
                self.on_note(f"{self.peer} {self.took}; no answer from {skipped}")
            self.answered = True
            return result

    def request(self, payload: bytes, what: str = "") -> bytes:
        """Send one datagram and return the first reply (each address in turn, as
        :meth:`exchange`); *what* names the request in errors (``"daytime"``)."""

        def attempt(sock: socket.socket) -> bytes:
            peer = format_peer(sock.getpeername())
            action = f"{what} from {peer}" if what else peer
            wait = self.wait()
            try:
                if wait is not None and wait <= 0:
                    raise TimeoutError
                sock.settimeout(wait)
                sock.send(payload)
                return sock.recv(UDP_MAX_PAYLOAD)
            except TimeoutError:
                waited = f"no reply within {seconds(wait or 0)} s"
                raise NoAnswer(f"{action}: {waited}", waited) from None
            except OSError as exc:
                raise NoAnswer.from_error(exc, action) from None

        return self.exchange(attempt)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> DatagramPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bound_address(sock: socket.socket) -> tuple[str, int]:
    name = sock.getsockname()
    return str(name[0]), int(name[1])


def udp_drops(sock: socket.socket) -> int | None:
    """How many datagrams the kernel dropped for this UDP socket (receive buffer full).

    Linux keeps the count per socket and shows it in the last column of
    ``/proc/net/udp`` (``udp6`` for IPv6), on the line of the socket's
    inode.  ``None`` where that is not available.
    """
    table = "/proc/net/udp6" if sock.family == socket.AF_INET6 else "/proc/net/udp"
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
        with open(table, encoding="ascii") as f:
            next(f, None)  # header
            for line in f:
                fields = line.split()
                if len(fields) >= 13 and fields[9] == inode:
                    return int(fields[-1])
    except (OSError, ValueError):
        return None
    return None
