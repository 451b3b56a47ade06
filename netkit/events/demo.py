"""Events of netkit demo."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from netkit.events.base import Event


@dataclass(frozen=True)
class DemoSection(Event):
    """demo: an exercise begins, with the lecture's question it answers."""

    event: ClassVar[str] = "exercise"
    exercise: str
    title: str
    question: str


@dataclass(frozen=True)
class DemoStep(Event):
    """demo: one exchange as it happened (who did what, and the figures)."""

    event: ClassVar[str] = "step"
    exercise: str
    actor: str
    what: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoClaim(Event):
    """demo: an answer to the lecture's question, checked against what was measured."""

    event: ClassVar[str] = "claim"
    exercise: str
    claim: str
    holds: bool
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoTable(Event):
    """demo: a small measured comparison."""

    event: ClassVar[str] = "table"
    exercise: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str


@dataclass(frozen=True)
class DemoProgress(Event):
    """demo, on a terminal only: how far a long measurement is (drawn, then erased)."""

    event: ClassVar[str] = "progress"
    exercise: str
    what: str
    fraction: float  # 0.0 to 1.0
    done: bool = False  # the measurement ended: erase the line
