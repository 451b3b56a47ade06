"""The RELP forwarder against small RELP servers of the test's own (real loopback sockets).

rsyslogd's imrelp is the real peer (tests/interop/test_creosote_forward.py);
these servers do what it rarely does on demand: refuse records, never answer
open, drop a connection with records unanswered, answer out of order.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from netkit.protocols import relp
from netkit.protocols.records import Record
from netkit.services.forward import Forwarder, parse_target

OPEN_OK = b"200 OK\nrelp_version=0\nrelp_software=test\ncommands=syslog"

# a connection's policy: (connection number, frame) -> the bytes to answer, or None to hang up
Policy = Callable[[int, relp.Frame], bytes | None]


class RelpServer:
    """Accepts connections one after another and answers each frame as *policy* says."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.received: list[tuple[int, bytes]] = []  # (connection, syslog message)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(10)
                parser = relp.FrameParser()
                try:
                    while data := conn.recv(1 << 16):
                        for frame in parser.feed(data):
                            if frame.command == "syslog":
                                self.received.append((self.connections, frame.data))
                            answer = self.policy(self.connections, frame)
                            if answer is None:
                                raise ConnectionAbortedError
                            conn.sendall(answer)
                            if answer.endswith(b"0 serverclose 0\n"):
                                # close without a reset: read (and ignore) until the
                                # client has closed, so that everything sent arrives
                                conn.shutdown(socket.SHUT_WR)
                                while conn.recv(1 << 16):
                                    pass
                                raise ConnectionAbortedError
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self.listener.close()
        self._thread.join(15)


Serve = Callable[[Policy], RelpServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[RelpServer] = []

    def start(policy: Policy) -> RelpServer:
        servers.append(RelpServer(policy))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def answer(frame: relp.Frame, status: bytes = b"200 OK") -> bytes:
    if frame.command == "open":
        return relp.encode_frame(frame.txnr, "rsp", OPEN_OK)
    if frame.command == "close":
        return relp.encode_frame(frame.txnr, "rsp")
    return relp.encode_frame(frame.txnr, "rsp", status)


def forward(port: int, n: int, notices: list[str], query: str = "") -> Forwarder:
    forwarder = Forwarder(
        parse_target(f"relp://127.0.0.1:{port}{query}"),
        notify=lambda level, message: notices.append(message),
    )
    forwarder.start()
    for i in range(n):
        forwarder.submit(Record("json", b"record %d" % i), "127.0.0.1:9")
    return forwarder


def number(message: bytes) -> int:
    return int(message.rsplit(b" ", 1)[1])


def test_records_the_server_refuses_are_counted_as_dropped(serve: Serve) -> None:
    def policy(_conn: int, frame: relp.Frame) -> bytes:
        if frame.command == "syslog" and number(frame.data) % 3 == 0:
            return answer(frame, b"500 not today")
        return answer(frame)

    server = serve(policy)
    notices: list[str] = []
    forwarder = forward(server.port, 300, notices)
    assert forwarder.wait_idle(10)
    forwarder.close()
    assert (forwarder.sent, forwarder.refused, forwarder.dropped) == (200, 100, 100)
    assert forwarder.resent == 0 and server.connections == 1
    assert [number(m) for _c, m in server.received] == list(range(300))
    refusals = [m for m in notices if "refused a record" in m]
    assert refusals and "(500 not today); " in refusals[0]
    assert len(refusals) <= 2  # at most once a second


def test_unacknowledged_records_go_first_on_the_next_connection(serve: Serve) -> None:
    """The first connection answers open and 50 records, reads 20 more and hangs up.

    It hangs up with records unread, so its kernel resets the connection, and
    answers still on their way to the forwarder may be lost with it: those
    records are sent again too, and the server has them twice (at-least-once).
    """

    def policy(conn: int, frame: relp.Frame) -> bytes | None:
        if conn == 1 and frame.command == "syslog":
            i = number(frame.data)
            if i >= 70:
                return None
            return answer(frame) if i < 50 else b""
        return answer(frame)

    server = serve(policy)
    notices: list[str] = []
    forwarder = forward(server.port, 1000, notices)
    assert forwarder.wait_idle(15), notices
    forwarder.close()
    assert (forwarder.sent, forwarder.dropped) == (1000, 0)
    assert server.connections == 2
    first = [number(m) for c, m in server.received if c == 1]
    second = [number(m) for c, m in server.received if c == 2]
    assert first == list(range(71))  # 0-69 read (50-69 unanswered), 70 made it hang up
    # everything whose answer did not arrive goes first on the new connection, in order
    assert second == list(range(second[0], 1000)) and second[0] <= 50
    # what was in flight when the connection went: at least 50-70, at most a window
    assert 71 - second[0] <= forwarder.resent <= relp.WINDOW
    assert any("unacknowledged records are sent again" in m for m in notices), notices
    assert any("connected again" in m for m in notices), notices


def test_a_server_that_never_answers_open_is_retried_and_nothing_counts_as_sent(
    serve: Serve,
) -> None:
    server = serve(lambda _conn, _frame: b"")  # reads, answers nothing: not a RELP server
    notices: list[str] = []
    forwarder = forward(server.port, 5, notices)
    forwarder.close(0.5)  # connect, open: 2 s without an answer, then out of time
    assert (forwarder.sent, forwarder.dropped) == (0, 5)
    assert server.received == []  # no syslog before open is answered
    assert any("no answer to RELP open (is it a RELP server?)" in m for m in notices), notices
    assert any("5 records not sent (or not acknowledged) before stopping" in m for m in notices)


def test_an_answer_out_of_order_breaks_the_session_and_records_are_sent_again(serve: Serve) -> None:
    def policy(conn: int, frame: relp.Frame) -> bytes:
        if conn == 1 and frame.command == "syslog":
            return relp.encode_frame(frame.txnr + 1, "rsp", b"200 OK")
        return answer(frame)

    server = serve(policy)
    notices: list[str] = []
    forwarder = forward(server.port, 10, notices)
    assert forwarder.wait_idle(10), notices
    forwarder.close()
    assert (forwarder.sent, forwarder.dropped) == (10, 0)
    assert [number(m) for c, m in server.received if c == 2] == list(range(10))
    assert any("RELP rsp for txnr 3 while 2 (syslog) is the oldest" in m for m in notices)


def test_serverclose_ends_the_session_and_the_rest_is_sent_on_a_new_one(serve: Serve) -> None:
    def policy(conn: int, frame: relp.Frame) -> bytes:
        if conn == 1 and frame.command == "syslog" and number(frame.data) == 4:
            return answer(frame) + b"0 serverclose 0\n"
        return answer(frame)

    server = serve(policy)
    notices: list[str] = []
    forwarder = forward(server.port, 200, notices)
    assert forwarder.wait_idle(10), notices
    forwarder.close()
    assert (forwarder.sent, forwarder.dropped) == (200, 0)
    second = [number(m) for c, m in server.received if c == 2]
    assert second[0] == 5 and second == list(range(5, 200))
    assert any("(RELP serverclose)" in m for m in notices), notices


def test_nothing_listening_then_stop_counts_everything_as_dropped() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    notices: list[str] = []
    forwarder = forward(port, 3, notices)
    forwarder.close(0.5)
    assert (forwarder.sent, forwarder.dropped) == (0, 3)
    assert any("refused" in m for m in notices), notices
