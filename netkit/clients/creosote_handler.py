"""CreosoteHandler: Python logging records sent to a creosote listener.

:class:`CreosoteHandler` is the
:class:`logging.Handler` a program adds (``from netkit.creosote import
CreosoteHandler``); it never hurts the program it serves: nothing is
resolved or opened in the constructor, :meth:`CreosoteHandler.emit` only
puts the record in a bounded queue (a full queue drops it and counts it),
and one background thread resolves the host (lazily, again after a
failure), sends and counts what it could not deliver.  After a loss, the
next ten records that go out carry the number lost so far (``dropped``;
UDP has no acknowledgement, so one report could be lost too), and the
listener says that something is missing.  Each record is one JSON object
(``message``, ``level``, ``levelname``, ``logger``, ``exc_text``, ...),
chunked by netkit's format when long, so a traceback arrives whole.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import socket
import threading
import time
from typing import Any

from netkit.clients.creosote import DEFAULT_CHUNK_SIZE, DEFAULT_PORT, refusal_wait
from netkit.protocols import creosote_chunks

DEFAULT_QUEUE = 1000
RESOLVE_RETRY = 5.0  # seconds between lookups of a name that did not resolve
CLOSE_WAIT = 0.5  # seconds close() waits for queued records to go out
REPORT_RECORDS = 10  # after a loss, the next records that go out carry the count


class _RefusedThis(Exception):
    """The address refused the record just sent (seen at once: a local address)."""


_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


class CreosoteHandler(logging.Handler):
    """A :class:`logging.Handler` that sends records to a creosote listener over UDP.

    *queue_size* records wait at most; :attr:`dropped` counts every record
    known not to be delivered (queue full, host unresolvable, send buffer
    full, refused: an ICMP "port unreachable" is seen at the next send).
    ``extra=`` values that are plain (str, int, float) are sent as fields.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        level: int = logging.NOTSET,
        queue_size: int = DEFAULT_QUEUE,
    ) -> None:
        super().__init__(level)
        if chunk_size < creosote_chunks.HEADER_LEN + 4:
            raise ValueError(f"chunk_size must be at least {creosote_chunks.HEADER_LEN + 4}")
        self.host = host
        self.port = port
        self.chunk_size = chunk_size
        self.queue_size = queue_size
        self.dropped = 0  # records not delivered, in all
        self.sent = 0
        self._report_left = 0  # records still to carry the drop count
        self._busy = False  # the sender thread holds a record
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._closed = False
        self._pid = os.getpid()
        self._sock: socket.socket | None = None
        self._local = False  # the socket's peer is an address of this host
        self._addresses: list[Any] = []  # getaddrinfo results, the working one first
        self._next_resolve = 0.0

    # -- the application's side: never raises, never blocks ----------------------
    def emit(self, record: logging.LogRecord) -> None:
        try:
            item = self._item(record)
        except Exception:
            self.handleError(record)
            return
        with self._cond:
            if self._closed or len(self._queue) >= self.queue_size:
                self.dropped += 1
                self._report_left = REPORT_RECORDS
                return
            self._queue.append(item)
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()  # a forked child gets a sender of its own
                self._thread = threading.Thread(
                    target=self._run, name="netkit-creosote-handler", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _item(self, record: logging.LogRecord) -> dict[str, Any]:
        if self.formatter is not None:  # the user chose a format: it makes the text
            item: dict[str, Any] = {"message": self.format(record)}
        else:
            item = {"message": record.getMessage()}
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                item["exc_text"] = record.exc_text
            if record.stack_info:
                item["stack_info"] = record.stack_info
        item.update(
            level=record.levelno,
            levelname=record.levelname,
            logger=record.name,
            time=record.created,
            process=record.process,
            thread=record.threadName,
            where=f"{record.pathname}:{record.lineno}",
        )
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in item and isinstance(value, (str, int, float)):
                item[key] = value
        return item

    # -- the sender thread -----------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    self._cond.notify_all()
                    return
                item = self._queue.popleft()
                self._busy = True
                if self.dropped and self._report_left:
                    item["dropped"] = self.dropped  # lost so far, in all
            try:
                delivered, lost_before = self._send(item)
            except Exception:  # never let the thread die: count and go on
                delivered, lost_before = False, 0
            with self._cond:
                # an ICMP refusal reports the datagram before: it was lost after all
                self.sent -= lost_before
                self.dropped += lost_before + (0 if delivered else 1)
                if lost_before or not delivered:
                    self._report_left = REPORT_RECORDS
                if delivered:
                    self.sent += 1
                    if "dropped" in item:
                        self._report_left -= 1
                self._busy = False
                self._cond.notify_all()

    def _resolve(self) -> bool:
        if self._addresses:
            return True
        now = time.monotonic()
        if now < self._next_resolve:
            return False
        try:
            self._addresses = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_DGRAM)
        except (OSError, UnicodeError):
            self._next_resolve = now + RESOLVE_RETRY
            return False
        return bool(self._addresses)

    def _send(self, item: dict[str, Any]) -> tuple[bool, int]:
        """(delivered as far as can be known, earlier datagrams found refused)."""
        if not self._resolve():
            return False, 0
        data = json.dumps(item, ensure_ascii=False, default=str).encode("utf-8", "replace")
        datagrams = creosote_chunks.split(data, self.chunk_size, os.urandom(4).hex())
        lost_before = 0
        for _ in range(2 * len(self._addresses)):
            try:
                if self._sock is None:
                    family, socktype, proto, _canon, sockaddr = self._addresses[0]
                    self._sock = socket.socket(family, socktype, proto)
                    self._sock.setblocking(False)
                    self._sock.connect(sockaddr)  # connected: ICMP refusals are seen
                    self._local = refusal_wait(self._sock, 1.0) == 0
                for datagram in datagrams:
                    self._sock.send(datagram)
                if self._local and self._refused_now(self._sock):
                    raise _RefusedThis  # this very record: it goes to the next address
                return True, lost_before
            except BlockingIOError:
                return False, lost_before  # the send buffer is full: drop, never wait
            except _RefusedThis:
                pass
            except OSError as exc:
                if isinstance(exc, ConnectionRefusedError) and self.sent > lost_before:
                    lost_before += 1  # the refusal was for the record sent before
            # nothing listens at this address (or no route): try the next one
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            self._addresses.append(self._addresses.pop(0))
        return False, lost_before

    @staticmethod
    def _refused_now(sock: socket.socket) -> bool:
        """Whether an ICMP refusal is already pending (an address of this host
        refuses during the send call: look, never wait)."""
        try:
            sock.recv(1)
        except BlockingIOError:
            return False
        except ConnectionRefusedError:
            return True
        return False  # a datagram from the listener: it never sends any, ignore it

    def flush(self, timeout: float = CLOSE_WAIT) -> None:
        """Wait at most *timeout* seconds for the queued records to be sent (or dropped)."""
        with self._cond:
            if self._thread is not None and self._thread is not threading.current_thread():
                self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self) -> None:
        """Send what is queued (waiting at most half a second), then close; never raises."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(CLOSE_WAIT)
        with self._cond:
            sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        super().close()
