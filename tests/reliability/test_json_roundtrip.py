"""--json gives back the exact bytes received (item 12): 10,000 random payloads each.

Real ``udp-echo serve --json`` and ``creosote listen --json`` processes; the
sender is paced by the events they print.  Every line must parse with
``json.loads`` and its ``text`` (or ``data_b64`` where present) must be the
datagram, byte for byte.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest

from tests.helpers import Server
from tests.reliability.util import Paced

N = 10_000


def _payloads(seed: int) -> list[bytes]:
    """Random bytes, random UTF-8 text, terminal junk, empty, and a few of 65,507 bytes."""
    rng = random.Random(seed)
    junk = [b"\x1b[31m", b"\x1b]52;c;eA==\x07", b"\xc2\x9b", b"\xe2\x80\xae", b"\r\n", b"\x00"]
    out: list[bytes] = []
    for i in range(N):
        kind = i % 4
        if kind == 0:
            out.append(rng.randbytes(rng.randrange(0, 1500)))
        elif kind == 1:
            chars = [chr(rng.choice((rng.randrange(0x20, 0x7F), rng.randrange(0xA0, 0xD800))))]
            out.append("".join(chars * rng.randrange(0, 300)).encode())
        elif kind == 2:
            out.append(b"".join(rng.choice(junk) + rng.randbytes(3) for _ in range(20)))
        else:
            out.append(rng.randbytes(rng.randrange(0, 40)))
    out[0] = b""
    for i in (1, 5000, N - 1):
        out[i] = rng.randbytes(65_507)
    return out


def _exact_bytes(event: dict[str, Any]) -> bytes:
    if "data_b64" in event:
        data = base64.b64decode(event["data_b64"], validate=True)
        assert "\\x" in event["text"] or not data.isascii()  # text alone could not carry it
        return data
    text = event["text"]
    assert isinstance(text, str)
    return text.encode("utf-8")  # strict: a valid UTF-8 payload is carried as text


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("argv", "kind", "size_key"),
    [
        (["udp-echo", "serve", "--plain"], "datagram", "size"),
        (["creosote", "listen"], "message", "bytes"),
    ],
    ids=["udp-echo", "creosote"],
)
def test_json_ten_thousand_random_payloads_exact_bytes(
    argv: list[str], kind: str, size_key: str
) -> None:
    """10,000 random payloads: 10,000 lines that parse and give back the exact bytes."""
    payloads = _payloads(seed=12)
    with Server(*argv, "--port", "0", "--json") as srv:
        # at most 100 KiB in flight: half of a default receive buffer (udp-echo's)
        pace = Paced(srv.proc, srv.port, window=500, keep=True, window_bytes=100 << 10)
        try:
            pace.send(payloads)
            pace.drain()
        finally:
            pace.close()
        code, rest, err = srv.stop()
    assert code == 0, err
    lines = (bytes(pace.out) + rest).splitlines()
    events = [json.loads(line) for line in lines]  # every line parses
    assert all(line.isascii() for line in lines)
    assert events[-1]["event"] == "summary"
    got = [e for e in events if e["event"] == kind]
    assert len(got) == N == len(events) - 1
    for event, sent in zip(got, payloads, strict=True):
        assert _exact_bytes(event) == sent
        assert event[size_key] == len(sent)
    print(f"{kind}: {sum('data_b64' in e for e in got)} of {N} carried data_b64")
