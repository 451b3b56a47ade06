"""netkit: a command-line toolkit for network programming."""

__version__ = "0.1.0"
