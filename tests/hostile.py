"""The hostile-text corpus: bytes from the network that must never act on a
terminal or a log file, and the check that output is inert.

:data:`LINES` holds one-line payloads (no line feed: usable on a line
protocol); :data:`CORPUS` is those plus :data:`FORGE`, which tries to forge
a log line of its own.  Each entry starts with a word saying what it tries.
"""

from __future__ import annotations

import socket
import threading
import unicodedata

FORGE = b"ok\nFAKE 12:00 admin login\r"

# the bidi embedding / override / isolate controls, and the marks
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"

LINES: list[bytes] = [
    b"csi \x1b[31mred\x1b[0m \x1b[2J\x1b[H",
    b"osc0 bel \x1b]0;owned title\x07",
    b"osc0 st \x1b]0;owned title\x1b\\",
    b"osc8 bel \x1b]8;;http://evil.example/\x07click\x1b]8;;\x07",
    b"osc8 st \x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    b"osc52 bel \x1b]52;c;cm0gLXJmIH4K\x07",
    b"osc52 st \x1b]52;c;ZWNobyBwd25lZA==\x1b\\",
    b"dcs \x1bP1$r0m\x1b\\",
    b"raw c1 \x9b31m \x9d0;t\x9c \x90q\x9c \x85",
    "c1 utf-8 \u009b31m \u009d52;c;eA==\u009c \u0085".encode(),
    "bidi \u202a\u202b\u202c\u202d\u202e evil.exe \u2066\u2067\u2068\u2069".encode(),
    *(f"bidi {ch}evil{ch} end".encode() for ch in BIDI[:9]),
    "marks \u200egnp.exe\u200f \u061c".encode(),
    "soft hyphen pay\u00adpal".encode(),  # invisible on most terminals
    "tags ok\U000e0041\U000e0042\U000e007f".encode(),  # tag characters: hidden text
    "format \u2061\u2064\u206a\ufff9\U0001d173\U00013430".encode(),  # other format controls
    b"nul a\x00b",
    b"cr \roverwrite",
    b"ok\rFAKE 12:00 admin login",
    b"backspace abc\x08\x08\x08xyz del \x7f",
    b"invalid \xff\xfe \xc3( \xed\xa0\x80 \xf4\x90\x80\x80",
    b"[link=http://x]click[/link]",
    b"[/bold] closes",
    b"[/] closes all",
    b"[bold red]styled?",
]
CORPUS: list[bytes] = [*LINES, FORGE]


def raw_controls(text: str, allow: str = "\n\t") -> list[str]:
    """What in *text* must never reach a terminal or a log raw (but *allow*).

    Control characters (C0 such as ESC, NUL, CR, BS; DEL; C1), format
    characters (bidi controls and marks, soft hyphen, tags, ...), the Unicode
    line and paragraph separators, and lone surrogates.
    """
    return [
        ch
        for ch in text
        if ch not in allow and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")
    ]


def serve_hostile_dns(sock: socket.socket, stop: threading.Event) -> None:
    """A DNS server on *sock* (UDP, with a timeout) until *stop*: every TXT query
    gets the corpus as strings, every PTR query the corpus as names."""
    import dns.message
    import dns.name
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset
    from dns.rdtypes.ANY.PTR import PTR
    from dns.rdtypes.ANY.TXT import TXT

    in_ = dns.rdataclass.IN
    while not stop.is_set():
        try:
            wire, addr = sock.recvfrom(4096)
        except TimeoutError:
            continue
        except OSError:
            return
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        question = query.question[0]
        rrset = dns.rrset.RRset(question.name, in_, question.rdtype)
        if question.rdtype == dns.rdatatype.TXT:
            rrset.add(TXT(in_, dns.rdatatype.TXT, [d[:255] for d in CORPUS]), 60)
        elif question.rdtype == dns.rdatatype.PTR:
            for d in CORPUS:
                target = dns.name.Name([d[:63], b"example", b""])
                rrset.add(PTR(in_, dns.rdatatype.PTR, target), 60)  # type: ignore[no-untyped-call]
        response.answer.append(rrset)
        sock.sendto(response.to_wire(want_shuffle=False), addr)  # the same order each time
