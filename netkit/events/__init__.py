"""Events that flow from services to renderers, one module per family.

:mod:`netkit.events.base` holds :class:`Event`, the sink type and the events
every server emits (``listening``, ``notice``, ``summary``), re-exported
here.  Each command's own events live in the module named after it
(:mod:`netkit.events.udp_echo`, :mod:`netkit.events.creosote`,
:mod:`netkit.events.creosote_spew`,
:mod:`netkit.events.tcp_time`, :mod:`netkit.events.upper_server`,
:mod:`netkit.events.upper_client`,
:mod:`netkit.events.resolve`, :mod:`netkit.events.pack_ip`,
:mod:`netkit.events.completion`, :mod:`netkit.events.demo`) and are imported
from there, fully typed: a command loads only its own family.  The human
renderer for a family is the module of the same name in :mod:`netkit.render`.
"""

from netkit.events.base import Event, Listening, Notice, Recorder, Sink, Summary

__all__ = ["Event", "Listening", "Notice", "Recorder", "Sink", "Summary"]
