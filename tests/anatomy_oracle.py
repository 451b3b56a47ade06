"""tshark as the oracle for ``netkit anatomy --json``: every field, frame by frame.

``compare(events, pcap)`` decodes the pcapng netkit wrote with ``tshark -r
FILE -T json`` (decode-as for the exchange's ephemeral DNS and HTTP ports)
and returns the differences: for each frame event, each layer, each field
netkit reported, tshark's value for the same frame must be the same (a
number as a number, ``0x..`` read as hex; text as text).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.helpers import peer


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Keep every value of a key tshark repeats (a JSON object with duplicate keys)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def _flatten(tree: Any, into: dict[str, list[str]]) -> None:
    if isinstance(tree, dict):
        for key, values in tree.items():
            for value in values:
                if isinstance(value, dict):
                    _flatten(value, into)
                else:
                    into.setdefault(key, []).append(value)


def tshark_frames(pcap: str, ports: dict[str, int]) -> list[list[tuple[str, dict[str, list[str]]]]]:
    args = [peer("tshark"), "-r", pcap, "-T", "json", "-o", "tcp.check_checksum:TRUE"]
    args += ["-o", "udp.check_checksum:TRUE", "-o", "tcp.relative_sequence_numbers:TRUE"]
    if "dns" in ports:
        args += ["-d", f"udp.port=={ports['dns']},dns"]
    if "http" in ports:
        args += ["-d", f"tcp.port=={ports['http']},http"]
    done = subprocess.run(args, capture_output=True, timeout=60, check=True)
    packets = json.loads(done.stdout, object_pairs_hook=_pairs)
    frames = []
    for packet in packets:
        (source,) = packet["_source"]
        (layers,) = source["layers"]
        flat_layers = []
        for name, values in layers.items():
            for value in values:
                flat: dict[str, list[str]] = {}
                _flatten(value, flat)
                flat_layers.append((name, flat))
        frames.append(flat_layers)
    return frames


def _same(ours: Any, theirs: str) -> bool:
    if isinstance(ours, bool) or not isinstance(ours, int):
        return str(ours) == theirs
    try:
        return ours == int(theirs, 0)
    except ValueError:
        return False


def compare(events: list[dict[str, Any]], pcap: str) -> tuple[int, list[str]]:
    """(fields compared, differences) between netkit's frame events and tshark's decoding."""
    summary = next(e for e in events if e["event"] == "summary")
    frames = [e for e in events if e["event"] == "frame"]
    theirs = tshark_frames(pcap, summary["ports"])
    problems: list[str] = []
    if len(theirs) != len(frames):
        problems.append(f"netkit shows {len(frames)} frames, the pcapng holds {len(theirs)}")
    compared = 0
    for frame, tlayers in zip(frames, theirs, strict=False):
        used: set[int] = set()
        for layer in frame["layers"]:
            match = next(
                (
                    i
                    for i, (name, _) in enumerate(tlayers)
                    if name == layer["layer"] and i not in used
                ),
                None,
            )
            if match is None:
                problems.append(f"frame {frame['index']}: tshark has no {layer['layer']} layer")
                continue
            used.add(match)
            tfields = tlayers[match][1]
            for key, value in layer["fields"].items():
                compared += 1
                got = tfields.get(key)
                if not got:
                    problems.append(
                        f"frame {frame['index']}: tshark has no {key} (netkit {value!r})"
                    )
                elif not _same(value, got[0]):
                    problems.append(
                        f"frame {frame['index']}: {key} netkit {value!r}, tshark {got[0]!r}"
                    )
            verdict = layer.get("checksum")
            if verdict and layer["layer"] in ("tcp", "udp"):
                compared += 1
                calc = tfields.get(f"{layer['layer']}.checksum_calculated")
                if verdict["status"] == "correct":
                    ok = tfields.get(f"{layer['layer']}.checksum.status") == ["1"]
                else:
                    ok = calc is not None and bool(calc) and int(calc[0], 16) == verdict["computed"]
                if not ok:
                    problems.append(
                        f"frame {frame['index']}: {layer['layer']} checksum netkit {verdict}, "
                        f"tshark calculated {calc}"
                    )
    return compared, problems
