"""upper-server's client side: send lines, read replies, never hang."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType

from netkit import net
from netkit.events import Sink
from netkit.events.upper_client import LineReply
from netkit.protocols import lines as framing
from netkit.protocols.upper import BUSY_REPLY

_BUSY = framing.content(BUSY_REPLY)

MAX_REPLY = framing.DEFAULT_MAX_LINE + 2


class LineClient:
    """One connection (or UDP socket) to an upper-server."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        version: int | None = None,
        timeout: float = 2.0,
        udp: bool = False,
        on_note: Callable[[str], None] | None = None,
    ) -> None:
        self.timeout = timeout
        self.udp = udp
        self.dgram: net.DatagramPeer | None = None
        if udp:
            # no handshake: the address that answers the first line is the server's
            self.dgram = net.DatagramPeer(
                host, port, version=version, timeout=timeout, on_note=on_note
            )
            self.server = self.dgram.peer
        else:
            self.sock = net.connect_socket(
                host, port, socktype=socket.SOCK_STREAM, version=version, timeout=timeout
            )
            self.server = net.format_peer(self.sock.getpeername())
        self.framer = framing.LineFramer(MAX_REPLY)
        self._replies: list[bytes] = []

    def __enter__(self) -> LineClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.dgram is not None:
            self.dgram.close()
        else:
            self.sock.close()

    def _recv_line(self) -> bytes:
        deadline = time.monotonic() + self.timeout
        while not self._replies:
            left = deadline - time.monotonic()
            if left <= 0:
                raise net.NetError(f"no reply from {self.server} within {self.timeout:g} s")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65_536)
            except TimeoutError:
                continue
            except OSError as exc:
                raise net.NetError(net.describe_error(exc, f"reading from {self.server}")) from None
            if not data:
                raise net.NetError(f"{self.server} closed the connection")
            self._replies.extend(self.framer.feed(data))
            if self.framer.too_long:
                raise net.NetError(f"{self.server} sent a reply longer than {MAX_REPLY} bytes")
        return self._replies.pop(0)

    def exchange(self, line: bytes) -> LineReply:
        """Send one line, return the reply (its ending removed)."""
        shown = line.decode("utf-8", "backslashreplace")
        if self.dgram is not None:
            data = self.dgram.request(line)
            self.server = self.dgram.peer
            return LineReply(
                sent=shown, data=data, server=self.server, sent_wire=line, reply_wire=data
            )
        wire = line + b"\r\n"
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(wire)
        except OSError as exc:
            raise net.NetError(net.describe_error(exc, f"sending to {self.server}")) from None
        raw = self._recv_line()
        data = framing.content(raw)
        if data == _BUSY and line != _BUSY:
            # the server's own line, not our line upper-cased (nor echoed)
            raise net.NetError(f"{self.server} turned us away: {_BUSY.decode()}")
        return LineReply(
            sent=shown,
            data=data,
            server=self.server,
            sent_wire=wire,
            reply_wire=raw,
        )

    def finish(self, *, eof: bool = False) -> None:
        """End the session (TCP): the empty line, or with *eof* just the end of
        what we send (the server logs ``eof``), then close our side."""
        if self.udp:
            return
        try:
            if not eof:
                self.sock.sendall(b"\r\n")
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may have closed first: the session is over either way


def chat_loop(client: LineClient, sink: Sink, *, prompt: str = "> ", stdin_fd: int = 0) -> None:
    """Read lines from *stdin_fd*, show each reply; an empty line or EOF ends it.

    While waiting for the user, the socket is watched too: the server going
    away ends the chat at once with :class:`NetError` (exit 1).
    """
    typed = framing.LineFramer(framing.DEFAULT_MAX_LINE)
    pending: list[bytes] = []
    eof = False
    with _selector(stdin_fd) as sel:
        sel.register(client.sock, selectors.EVENT_READ, "sock")
        while True:
            if not pending and not eof:
                if prompt:
                    sys.stderr.write(prompt)
                    sys.stderr.flush()
                while not pending and not eof:
                    ready = {key.data for key, _ in sel.select()}
                    if "sock" in ready:
                        _server_spoke(client, prompt)
                    if "stdin" in ready:
                        data = os.read(stdin_fd, 65_536)
                        if not data:
                            eof = True
                            tail = typed.flush()
                            if tail:
                                pending.append(tail)
                        else:
                            pending.extend(typed.feed(data))
                            if typed.too_long:
                                raise net.NetError(
                                    f"a typed line is longer than {typed.max_line} bytes"
                                )
            if not pending:  # EOF (Ctrl-D): the server sees EOF too, not an empty line
                if prompt:
                    sys.stderr.write("\n")
                client.finish(eof=True)
                return
            line = framing.content(pending.pop(0))
            if not line:
                client.finish()
                return
            sink(client.exchange(line))


class _ServerGone(Exception):
    """Raised in the main thread (by a signal) to interrupt input() when the server left."""


def chat_readline(client: LineClient, sink: Sink, *, prompt: str = "> ") -> None:
    """The chat on a terminal: input() with readline's line editing and history.

    input() blocks, so while the user types a thread watches the socket; the
    server going away interrupts the prompt (SIGUSR1 to the main thread) and
    ends the chat with :class:`NetError` (exit 1).  An empty line ends the
    session; Ctrl-D ends it with EOF.
    """
    import readline  # noqa: F401  (loading it gives input() line editing and history)

    state = _Prompting()

    def on_gone(_signum: int, _frame: object) -> None:
        if state.waiting:
            raise _ServerGone

    previous = signal.signal(signal.SIGUSR1, on_gone)
    try:
        while True:
            typed = _input_watching(client, prompt, state)
            if typed is None:  # Ctrl-D
                sys.stderr.write("\n")
                client.finish(eof=True)
                return
            line = typed.encode("utf-8", "surrogateescape")
            if not line:
                client.finish()
                return
            if len(line) > framing.DEFAULT_MAX_LINE:
                raise net.NetError(f"a typed line is longer than {framing.DEFAULT_MAX_LINE} bytes")
            sink(client.exchange(line))
    finally:
        signal.signal(signal.SIGUSR1, previous)


class _Prompting:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = False  # the main thread is in input()
        self.gone = False


def _input_watching(client: LineClient, prompt: str, state: _Prompting) -> str | None:
    """One input() (None at EOF) while a thread reads what the server sends meanwhile."""
    wake_r, wake_w = socket.socketpair()
    main = threading.main_thread().ident
    assert main is not None

    def watch() -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(client.sock, selectors.EVENT_READ, "sock")
            sel.register(wake_r, selectors.EVENT_READ, "wake")
            while True:
                ready = {key.data for key, _ in sel.select()}
                if "wake" in ready:
                    return
                try:
                    _server_spoke(client, "")
                except net.NetError:
                    with state.lock:
                        state.gone = True
                        if state.waiting:
                            signal.pthread_kill(main, signal.SIGUSR1)
                    return

    watcher = threading.Thread(target=watch, name="chat-watch", daemon=True)
    typed: str | None = None
    try:
        with state.lock:
            state.waiting = True
        watcher.start()
        try:
            typed = input(prompt)
        except EOFError:
            typed = None
        finally:
            with state.lock:
                state.waiting = False
            wake_w.send(b"x")
            watcher.join(5)
    except _ServerGone:
        pass
    finally:
        wake_r.close()
        wake_w.close()
    if state.gone:
        sys.stderr.write("\n")
        raise net.NetError(f"{client.server} closed the connection")
    return typed


def _selector(stdin_fd: int) -> selectors.BaseSelector:
    """A selector watching *stdin_fd*: epoll refuses regular files and
    /dev/null (EPERM; `chat < lines.txt`), select() takes them (always ready)."""
    sel: selectors.BaseSelector = selectors.DefaultSelector()
    try:
        sel.register(stdin_fd, selectors.EVENT_READ, "stdin")
    except PermissionError:
        sel.close()
        sel = selectors.SelectSelector()
        sel.register(stdin_fd, selectors.EVENT_READ, "stdin")
    return sel


def _server_spoke(client: LineClient, prompt: str) -> None:
    """The socket became readable while we waited for the user."""
    client.sock.settimeout(0)
    try:
        data: bytes | None = client.sock.recv(65_536)
    except (BlockingIOError, InterruptedError):
        data = None
    except OSError:
        data = b""
    if data == b"":
        if prompt:
            sys.stderr.write("\n")
        raise net.NetError(f"{client.server} closed the connection")
    if data:
        client._replies.extend(client.framer.feed(data))
