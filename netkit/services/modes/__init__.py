"""upper-server's concurrency modes: one module each, named in :data:`MODES`.

A mode serves the connections a :class:`netkit.services.upper.UpperServer`
accepts; every mode moves bytes to and from the same sans-IO session
(:class:`netkit.protocols.upper.UpperSession`).  The interface is
:class:`netkit.services.modes.base.Mode`.  Adding a mode is one new module
here and one entry in :data:`MODES`; the CLI's ``--mode`` choices come from
this table, so it names the classes without importing them.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: the forker (_forker) imports this package
if TYPE_CHECKING:
    from netkit.services.modes.base import Mode

#: --mode value -> "module:class" (imported on use: the CLI's start-up stays lean)
MODES: dict[str, str] = {
    "sync": "netkit.services.modes.sync:SyncMode",
    "thread": "netkit.services.modes.thread:ThreadMode",
    "fork": "netkit.services.modes.fork:ForkMode",
    "async": "netkit.services.modes.asyncio:AsyncMode",
}


def get(name: str) -> type[Mode]:
    """The class of the mode named *name* (a key of :data:`MODES`)."""
    from importlib import import_module

    module, _, cls = MODES[name].partition(":")
    mode: type[Mode] = getattr(import_module(module), cls)
    return mode
