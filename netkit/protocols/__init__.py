"""Sans-IO protocol code: pure functions and small state machines, no sockets."""
