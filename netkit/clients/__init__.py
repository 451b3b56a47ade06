"""One-shot clients, apart from the servers: a client imports no server code.

``udp-echo send``, ``tcp-time get``, ``upper-server send``/``chat`` and
``creosote spew`` (and the logging handler) live here, so starting one
loads only what it needs (tests/test_startup_imports.py holds the list).
"""
