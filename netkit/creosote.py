"""Send Python log records to ``netkit creosote listen`` (the lecture's remote debugger).

::

    import logging
    from netkit.creosote import CreosoteHandler

    logging.getLogger().addHandler(CreosoteHandler("127.0.0.1", 7739))
    logging.getLogger().warning("reached step %d", 3)
"""

from netkit.clients.creosote import CreosoteHandler

__all__ = ["CreosoteHandler"]
