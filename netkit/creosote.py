"""Send Python log records to ``netkit creosote listen`` (the lecture's remote debugger).

::

    import logging
    from netkit.creosote import CreosoteHandler

    logging.getLogger().addHandler(CreosoteHandler("127.0.0.1", 7739))
    logging.getLogger().warning("reached step %d", 3)

The handler never raises into the program and never blocks it (see
:class:`netkit.clients.creosote.CreosoteHandler`).
"""

from netkit.clients.creosote_handler import CreosoteHandler

__all__ = ["CreosoteHandler"]
