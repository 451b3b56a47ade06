"""Thin service classes: own sockets, threads and event loops; emit events; never print."""
