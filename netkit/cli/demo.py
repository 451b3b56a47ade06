"""netkit demo: the lecture's exercises, each answered by running netkit."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

import click

from netkit.cli import exit_interrupted
from netkit.cli._common import TIMEOUT, handle_failures, output_options, renderer

_CHOICES = ("1", "2", "3", "4", "5", "addresses", "udp", "creosote", "tcp", "socketserver", "async")


@click.command("demo")
@click.argument(
    "exercises",
    nargs=-1,
    type=click.Choice(_CHOICES, case_sensitive=False),
    metavar="[EXERCISE]...",
)
@click.option(
    "--seconds",
    type=TIMEOUT,
    default=2.0,
    show_default=True,
    help="How long exercise 5 loads each server mode (the exercise takes about "
    "three times this plus 5 s).",
)
@output_options
@handle_failures
def demo(exercises: tuple[str, ...], seconds: float, json_output: bool, no_color: bool) -> None:
    """Run the lecture's exercises on loopback and show each exchange.

    Every service starts in this process on 127.0.0.1 port 0, the matching
    client talks to it, and each of the lecture's questions is answered by
    what happens (a claim, checked against what was measured).  Everything
    is stopped at the end; nothing is written to disk.  Exit 0 when every
    claim holds, 1 when one does not.

    \b
    EXERCISES (default: all, in order):
      1 / udp           UDP client and server; a client refused at once
      2 / creosote      chunked messages collected whole; CreosoteHandler
      3 / tcp           daytime and RFC 868 time; upper-case lines; an aborted
                        client
      4 / socketserver  sync makes the second client wait; thread does not
      5 / async         thread, fork and async side by side: 200 idle and 4 busy
                        clients in processes of their own; requests/s, latency,
                        threads, processes and memory per mode
      addresses         resolve localhost, pack-ip 192.168.1.1, byte order, the
                        layers of one UDP datagram (anatomy udp, when it may
                        capture)
    """
    from netkit.demo import ALIASES, EXERCISES, run_demo

    chosen = [ALIASES.get(e.lower(), e.lower()) for e in exercises] or list(EXERCISES)
    chosen = list(dict.fromkeys(chosen))
    out = renderer(json_output, no_color)
    progress = not json_output and sys.stderr.isatty()
    with _interruptible(out):
        ok = run_demo(out, chosen, seconds=seconds, progress=progress)
    out.close()
    if not ok:
        raise click.ClickException("a claim of the demo did not hold on this machine (see above)")


@contextlib.contextmanager
def _interruptible(out: object) -> Iterator[None]:
    """Ctrl-C stops the demo: what it started is stopped on the
    way out, and the clients that lose their server then (exercise 5's
    measuring threads) end quietly instead of printing ``Exception in
    thread``; one line on stderr and exit 130, as a shell expects."""
    interrupted = threading.Event()
    default_hook = threading.excepthook

    def on_signal(_signum: int, _frame: object) -> None:
        interrupted.set()
        raise KeyboardInterrupt

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if not interrupted.is_set():
            default_hook(args)

    previous = signal.signal(signal.SIGINT, on_signal)
    threading.excepthook = thread_hook  # left in place after an interrupt: threads may end late
    try:
        yield
    except KeyboardInterrupt:
        interrupted.set()
        live = getattr(out, "live", None)  # a progress display is taken down first
        if live is not None:
            live.stop()
        exit_interrupted("the demo was interrupted; everything it started is stopped")
    finally:
        signal.signal(signal.SIGINT, previous)
    threading.excepthook = default_hook
