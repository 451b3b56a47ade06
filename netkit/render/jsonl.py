"""JSON lines: one object per event on stdout, each with an ``event`` key.

``ensure_ascii`` keeps every byte of output printable ASCII: control
characters, bidi controls and anything else from the network is written as
a JSON escape, so piping ``--json`` to a terminal is safe too.  Notices
(diagnostics) go to stderr as plain escaped lines.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import TextIO

from netkit.events import Event, Notice
from netkit.protocols.text import escape, json_safe


class JsonRenderer:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self._out = out
        self._err = err
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if isinstance(event, Notice):
            err = self._err or sys.stderr
            with self._lock:
                err.write(f"netkit: {event.level}: {escape(event.message)}\n")
                err.flush()
            return
        line = json.dumps(json_safe(event.as_dict()), ensure_ascii=True, separators=(", ", ": "))
        out = self._out or sys.stdout
        with self._lock:
            out.write(line + "\n")
            out.flush()

    def close(self) -> None:
        with self._lock:
            (self._out or sys.stdout).flush()
