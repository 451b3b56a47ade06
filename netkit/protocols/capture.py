"""Pure helpers for capturing frames: the pcapng writer, a kernel packet filter, TCP_INFO.

- :class:`PcapngWriter` writes the pcapng blocks Wireshark and tshark read
  (section header, one interface description, one enhanced packet block a
  frame with its direction), little-endian, to any binary file object.
- :func:`port_filter` assembles a classic BPF program (``SO_ATTACH_FILTER``)
  that lets through only IPv4/IPv6 TCP and UDP to or from the given ports,
  and ARP when asked, so the kernel drops everything else before it is
  queued to the capture socket.
- :func:`parse_tcp_info` reads the start of Linux's ``struct tcp_info``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113

_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_EPB = 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D


def _option(code: int, value: bytes) -> bytes:
    pad = -len(value) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * pad


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


class PcapngWriter:
    """pcapng (draft-ietf-opsawg-pcapng): one section, one interface, microsecond times."""

    def __init__(
        self,
        out: BinaryIO,
        *,
        linktype: int = LINKTYPE_ETHERNET,
        interface: str = "lo",
        application: str = "netkit",
        snaplen: int = 262144,
    ) -> None:
        self.out = out
        shb = struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1)
        shb += _option(4, application.encode()) + _option(0, b"")  # shb_userappl, end
        out.write(_block(_SHB, shb))
        idb = struct.pack("<HHI", linktype, 0, snaplen)
        idb += _option(2, interface.encode()) + _option(9, b"\x06") + _option(0, b"")
        out.write(_block(_IDB, idb))

    def write(self, frame: bytes, time_us: int, *, outbound: bool | None = None) -> None:
        """One frame captured at *time_us* microseconds since the epoch."""
        pad = -len(frame) % 4
        body = struct.pack("<IIIII", 0, time_us >> 32, time_us & 0xFFFFFFFF, len(frame), len(frame))
        body += frame + b"\x00" * pad
        if outbound is not None:  # epb_flags: bits 0-1 are the direction, 1 in, 2 out
            body += _option(2, struct.pack("<I", 2 if outbound else 1)) + _option(0, b"")
        self.out.write(_block(_EPB, body))


def read_pcapng(data: bytes) -> list[tuple[int, bytes]]:
    """The (time in µs, frame) of each enhanced packet block (little-endian files only)."""
    frames = []
    i = 0
    while i + 12 <= len(data):
        kind, length = struct.unpack_from("<II", data, i)
        if length < 12 or i + length > len(data):
            raise ValueError(f"pcapng block at {i} has a bad length {length}")
        if kind == _EPB:
            _, high, low, caplen, _ = struct.unpack_from("<IIIII", data, i + 8)
            frames.append(((high << 32) | low, data[i + 28 : i + 28 + caplen]))
        i += length
    return frames


# -- classic BPF -----------------------------------------------------------------------------

_LDH_ABS, _LDB_ABS, _LDH_IND, _LDXB_MSH = 0x28, 0x30, 0x48, 0xB1
_JEQ, _JSET, _RET = 0x15, 0x45, 0x06
Insn = tuple[int, int, str, str]  # opcode, k, label if true, label if false ("" = next)


def _assemble(program: list[Insn | str]) -> list[tuple[int, int, int, int]]:
    labels: dict[str, int] = {}
    code: list[Insn] = []
    for item in program:
        if isinstance(item, str):
            labels[item] = len(code)
        else:
            code.append(item)
    out = []
    for pc, (op, k, jt, jf) in enumerate(code):
        t = labels[jt] - pc - 1 if jt else 0
        f = labels[jf] - pc - 1 if jf else 0
        if not (0 <= t < 256 and 0 <= f < 256):
            raise ValueError("BPF jump out of range")
        out.append((op, t, f, k))
    return out


def port_filter(ports: list[int], *, arp: bool = False) -> list[tuple[int, int, int, int]]:
    """(code, jt, jf, k) instructions: TCP/UDP to or from *ports* (and ARP) on Ethernet."""

    def match(offset_op: int, offset: int) -> list[Insn | str]:
        out: list[Insn | str] = [(offset_op, offset, "", "")]
        out += [(_JEQ, p, "accept", "") for p in ports]
        return out

    prog: list[Insn | str] = [(_LDH_ABS, 12, "", "")]
    prog.append((_JEQ, 0x0806, "accept" if arp else "reject", ""))
    prog.append((_JEQ, 0x0800, "ipv4", ""))
    prog.append((_JEQ, 0x86DD, "ipv6", "reject"))
    prog += [
        "ipv4",
        (_LDB_ABS, 23, "", ""),
        (_JEQ, 6, "ports4", ""),
        (_JEQ, 17, "ports4", "reject"),
    ]
    prog += ["ports4", (_LDH_ABS, 20, "", ""), (_JSET, 0x1FFF, "reject", "")]
    prog += [(_LDXB_MSH, 14, "", "")]
    prog += match(_LDH_IND, 14) + match(_LDH_IND, 16) + [(_RET, 0, "", "")]
    prog += [
        "ipv6",
        (_LDB_ABS, 20, "", ""),
        (_JEQ, 6, "ports6", ""),
        (_JEQ, 17, "ports6", "reject"),
    ]
    prog += ["ports6", *match(_LDH_ABS, 54), *match(_LDH_ABS, 56)]
    prog += ["reject", (_RET, 0, "", ""), "accept", (_RET, 262144, "", "")]
    return _assemble(prog)


def filter_bytes(program: list[tuple[int, int, int, int]]) -> bytes:
    """The instructions as the kernel's ``struct sock_filter`` array."""
    return b"".join(struct.pack("=HBBI", *insn) for insn in program)


# -- TCP_INFO --------------------------------------------------------------------------------

TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
}
_TCP_INFO = struct.Struct("=8B21I")


@dataclass(frozen=True)
class TcpInfo:
    state: str
    rtt_us: int
    rttvar_us: int
    snd_mss: int
    rcv_mss: int
    snd_cwnd: int
    snd_wscale: int
    rcv_wscale: int
    retransmits: int

    def as_dict(self) -> dict[str, int | str]:
        return dict(self.__dict__)


def parse_tcp_info(raw: bytes) -> TcpInfo:
    """The first 104 bytes of Linux's ``struct tcp_info`` (getsockopt TCP_INFO)."""
    if len(raw) < _TCP_INFO.size:
        raise ValueError(f"tcp_info: {len(raw)} bytes, {_TCP_INFO.size} needed")
    v = _TCP_INFO.unpack_from(raw)
    state, retransmits, wscale = v[0], v[2], v[6]
    words = v[8:]
    return TcpInfo(
        state=TCP_STATES.get(state, str(state)),
        rtt_us=words[15],
        rttvar_us=words[16],
        snd_mss=words[2],
        rcv_mss=words[3],
        snd_cwnd=words[18],
        snd_wscale=wscale & 0x0F,
        rcv_wscale=wscale >> 4,
        retransmits=retransmits,
    )
