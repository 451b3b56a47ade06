"""The stdlib's ``DatagramHandler`` / ``SocketHandler`` records, decoded without running code.

Both handlers send ``struct.pack(">L", len(p)) + p`` where ``p`` is
``pickle.dumps(dict(record.__dict__))`` with ``msg`` already formatted and
``args`` / ``exc_info`` set to ``None``: a dict of strings, numbers,
``None`` and (for ``extra=``) plain containers.  The logging cookbook's
receiver calls ``pickle.loads`` on it, which runs whatever the sender asks
for (``__reduce__`` -> ``os.system``).

Why :func:`loads` is safe: pickle can only call code by first obtaining a
callable, and the only ways to obtain one are the ``GLOBAL`` /
``STACK_GLOBAL`` / ``INST`` / ``EXT*`` opcodes (all of which go through
``find_class``) and persistent ids (``persistent_load``).  Both always raise
here, so ``REDUCE``, ``BUILD``, ``NEWOBJ`` and ``OBJ`` never have anything to
call.  What remains can only build dicts, lists, tuples, sets, strings,
bytes, numbers, booleans and ``None``.  The input is bounded in size before
decoding, and the result is walked iteratively with a bound on depth and on
the number of nodes (a pickle can share one list many times), so neither a
deep nor a wide structure can exhaust the stack or the memory of whatever
shows it afterwards.
"""

from __future__ import annotations

import io
import pickle
import reprlib
import struct
from typing import Any

from netkit.protocols.records import Record, Refused, decoded_record

MAX_PICKLE = 1 << 20  # bytes of one pickled record
MAX_DEPTH = 16
MAX_NODES = 10_000

_PLAIN = (str, bytes, int, float, bool, type(None))


class UnsafePickle(ValueError):
    """The pickle is not a plain log record (the message says why)."""


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickle(f"refers to {module}.{name} (no global is ever loaded)")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickle("uses a persistent id")


def _check(value: Any) -> None:
    """Raise :class:`UnsafePickle` unless *value* is plain data within the bounds."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise UnsafePickle(f"more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise UnsafePickle(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, _PLAIN):
            if isinstance(item, int) and not isinstance(item, bool) and item.bit_length() > 256:
                raise UnsafePickle("an integer of more than 256 bits")
            continue
        if isinstance(item, dict):
            for k, v in item.items():
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend((v, depth + 1) for v in item)
        else:  # cannot happen without a global, but say so rather than trust it
            raise UnsafePickle(f"holds a {type(item).__name__}")


def loads(data: bytes) -> Any:
    """Decode *data* as plain data, or raise :class:`UnsafePickle`."""
    if len(data) > MAX_PICKLE:
        raise UnsafePickle(f"{len(data)} bytes, more than {MAX_PICKLE}")
    try:
        value = _NoGlobals(io.BytesIO(data)).load()
    except UnsafePickle:
        raise
    except RecursionError:
        raise UnsafePickle(f"nested deeper than {MAX_DEPTH} levels") from None
    except Exception as exc:  # truncated, malformed: whatever pickle says
        raise UnsafePickle(f"not a valid pickle ({type(exc).__name__}: {exc})") from None
    _check(value)
    return value


# LogRecord attributes that are not "extra"
_STANDARD = frozenset(
    "name msg args levelname levelno pathname filename module exc_info exc_text stack_info "
    "lineno funcName created msecs relativeCreated thread threadName processName process "
    "taskName message asctime".split()
)
# extra= containers are shown by a bounded repr: a pickle can refer to one long string
# thousands of times, and a full repr of that would be an amplification bomb
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 4, 200, 200
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 20
_KEPT = ("pathname", "lineno", "funcName", "process", "processName", "threadName", "created")


def record_from_dict(d: Any) -> Record:
    """The :class:`Record` a decoded ``LogRecord`` dict describes; ``UnsafePickle`` if none."""
    if not isinstance(d, dict):
        raise UnsafePickle(f"a {type(d).__name__}, not a log record dict")
    msg = d.get("msg")
    if not isinstance(msg, str):
        raise UnsafePickle("no message (msg is not a string)")
    levelno = d.get("levelno")
    level = levelno if isinstance(levelno, int) and not isinstance(levelno, bool) else None
    text = msg
    fields: dict[str, Any] = {}
    for key in ("exc_text", "stack_info"):
        extra = d.get(key)
        if isinstance(extra, str) and extra:
            fields[key] = extra
            text = f"{text}\n{extra}"
    for key in _KEPT:
        if isinstance(d.get(key), (str, int, float)):
            fields[key] = d[key]
    for key, value in d.items():
        if isinstance(key, str) and key not in _STANDARD:
            plain = isinstance(value, (str, int, float, bool))
            fields[key] = value if plain else _REPR.repr(value)
    return decoded_record("pickle", text, level=level, logger=d.get("name"), fields=fields)


def looks_like(datagram: bytes) -> bool:
    """A 4-byte big-endian length equal to the rest, then a pickle's first opcode."""
    if len(datagram) < 6:
        return False
    (length,) = struct.unpack(">L", datagram[:4])
    return length == len(datagram) - 4 and datagram[4] in (0x80, 0x7D, 0x28)  # PROTO, }, (


def decode_frame(payload: bytes) -> Record | Refused:
    """One pickled record (the part after the length) as a Record, or why not."""
    try:
        return record_from_dict(loads(payload))
    except UnsafePickle as exc:
        return Refused("pickle", str(exc))
