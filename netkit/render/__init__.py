"""Renderers: turn events into output.  The only code that imports rich.

:func:`make_renderer` picks JSON lines (scripts) or human output.  Neither
the JSON renderer nor the human one's lite back end (:mod:`netkit.render.lite`:
the one-shot commands' lines, byte for byte what rich would write) imports
rich, so ``--json`` and the one-shot commands start fast; rich is loaded by
the first event lite does not write itself.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Protocol

from netkit.events import Event


def family_module(kind: type[Event]) -> ModuleType | None:
    """The render module of *kind*'s family, imported on first use
    (``netkit.render.udp_echo`` for ``netkit.events.udp_echo``), so a command
    loads only the renderers of the events it shows; None for an event outside
    ``netkit.events``, the base family (each back end holds its own) or a
    family with no render module (shown field by field)."""
    package, _, family = kind.__module__.rpartition(".")
    if package != "netkit.events" or family == "base":
        return None
    import importlib

    name = f"netkit.render.{family}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


class Renderer(Protocol):
    def __call__(self, event: Event) -> None: ...

    def close(self) -> None: ...


def make_renderer(
    *, json_output: bool, no_color: bool = False, quiet: bool = False, hex_view: bool = False
) -> Renderer:
    """*hex_view* (``--hex``) is for humans: the JSON lines carry the bytes already;
    its hex views are rich's.  ``NETKIT_RENDER=rich`` (internal, for the tests
    that compare the back ends) makes human output rich's throughout."""
    if json_output:
        from netkit.render.jsonl import JsonRenderer

        return JsonRenderer()
    if not hex_view and os.environ.get("NETKIT_RENDER") != "rich":  # internal: tests
        from netkit.render.lite import LiteRenderer, lite_usable

        if lite_usable():
            return LiteRenderer(no_color=no_color, quiet=quiet)
    from netkit.render.human import HumanRenderer

    out = HumanRenderer(no_color=no_color, quiet=quiet)
    out.hex = hex_view
    return out
