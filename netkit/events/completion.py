"""Events of completion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netkit.events.base import Event


@dataclass(frozen=True)
class CompletionScript(Event):
    """completion SHELL --json: the script as a string."""

    event: ClassVar[str] = "completion"
    shell: str
    script: str


@dataclass(frozen=True)
class CompletionInstalled(Event):
    """completion install --json: where the script was written."""

    event: ClassVar[str] = "installed"
    shell: str
    path: str
