"""Renderers: turn events into output.  The only code that imports rich.

:func:`make_renderer` picks JSON lines (scripts) or rich (humans); the JSON
renderer does not import rich, so ``--json`` starts fast.
"""

from __future__ import annotations

from typing import Protocol

from netkit.events import Event


class Renderer(Protocol):
    def __call__(self, event: Event) -> None: ...

    def close(self) -> None: ...


def make_renderer(
    *, json_output: bool, no_color: bool = False, quiet: bool = False, hex_view: bool = False
) -> Renderer:
    """*hex_view* (``--hex``) is for humans: the JSON lines carry the bytes already."""
    if json_output:
        from netkit.render.jsonl import JsonRenderer

        return JsonRenderer()
    from netkit.render.human import HumanRenderer

    out = HumanRenderer(no_color=no_color, quiet=quiet)
    out.hex = hex_view
    return out
