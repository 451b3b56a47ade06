"""Options and error handling shared by every command (the CLI contract)."""

from __future__ import annotations

import errno
import functools
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from netkit.render import Renderer

    # click >= 8.2 makes ParamType generic; 8.1 (the floor) cannot be
    # subscripted at run time, so the parameters exist for mypy only.
    _IntParam = click.ParamType[int, Any]
    _FloatParam = click.ParamType[float, Any]
    _HostParam = click.ParamType[tuple[str, int | None], Any]
else:
    _IntParam = _FloatParam = _HostParam = click.ParamType

F = TypeVar("F", bound=Callable[..., Any])


class PortType(_IntParam):
    name = "port"

    def __init__(self, allow_zero: bool = True) -> None:
        self.allow_zero = allow_zero

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from netkit import net

        if isinstance(value, int):
            value = str(value)
        try:
            return net.parse_port(value, allow_zero=self.allow_zero)
        except net.UsageError as exc:
            self.fail(str(exc), param, ctx)


class HostType(_HostParam):
    """``HOST``, ``HOST:PORT``, ``[V6]`` or ``[V6]:PORT``; converts to (host, port | None)."""

    name = "host"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, int | None]:
        from netkit import net

        if isinstance(value, tuple):
            return value
        try:
            return net.split_host_port(str(value))
        except net.UsageError as exc:
            self.fail(str(exc), param, ctx)


# patterns compiled on first use (re caches them): a command that never
# parses a number or a host name from its arguments does not pay for them
_DECIMAL = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"


class BoundedFloat(_FloatParam):
    """A finite decimal number within [low, high] (low excluded when *low_open*).

    Every float option uses one of these: ``nan``, ``inf``, ``1e308``, ``0x1p3``,
    ``1_0``, padded or non-ASCII digits are refused with one ``Error:`` line
    (exit 2) instead of reaching a socket timeout or a rate limiter.
    """

    def __init__(
        self, low: float, high: float, *, low_open: bool, name: str, unit: str = ""
    ) -> None:
        self.name = name
        self.low = low
        self.high = high
        self.low_open = low_open
        self.unit = unit

    def _range(self) -> str:
        low = "greater than" if self.low_open else "at least"
        unit = f" {self.unit}" if self.unit else ""
        return f"{low} {self.low:g} and at most {self.high:,.0f}{unit}"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, bool):
            self.fail(f"{value!r} is not a number", param, ctx)
        if isinstance(value, int | float):
            number = float(value)
        else:
            text = str(value)
            if text.strip().lstrip("+-").lower() in ("nan", "inf", "infinity"):
                self.fail(
                    f"{text!r} is not a finite number; it must be {self._range()}", param, ctx
                )
            if re.fullmatch(_DECIMAL, text) is None:
                self.fail(
                    f"{text!r} is not a decimal number (like 2, 0.5 or 1e3); "
                    f"it must be {self._range()}",
                    param,
                    ctx,
                )
            number = float(text)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not finite; it must be {self._range()}", param, ctx)
        too_low = number <= self.low if self.low_open else number < self.low
        if too_low or number > self.high:
            self.fail(f"{value} is out of range: it must be {self._range()}", param, ctx)
        return number


WEEK = 7 * 24 * 3600.0
# seconds to wait for something: positive, at most a week
TIMEOUT = BoundedFloat(0.0, WEEK, low_open=True, name="seconds", unit="seconds")
# seconds that may be zero (--grace 0: close at once)
SECONDS_OR_ZERO = BoundedFloat(0.0, WEEK, low_open=False, name="seconds", unit="seconds")
# events a second (--rate)
RATE = BoundedFloat(0.0, 1e9, low_open=True, name="rate", unit="a second")


def output_options(f: F) -> F:
    f = click.option(
        "--no-color",
        is_flag=True,
        help="No colour (also when NO_COLOR is set, or output is not a terminal).",
    )(f)
    f = click.option(
        "--json",
        "json_output",
        is_flag=True,
        help='One JSON object per line on stdout, each with an "event" key.',
    )(f)
    return f


HEX_KEY = "netkit.hex"


def _remember_hex(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[HEX_KEY] = True
    return value


def hex_requested() -> bool:
    """Whether this command was given --hex."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and bool(ctx.meta.get(HEX_KEY))


def hex_option(f: F) -> F:
    """--hex: the hex view of each payload (read by :func:`renderer`)."""
    return click.option(
        "-x",
        "--hex",
        is_flag=True,
        expose_value=False,
        callback=_remember_hex,
        help="Show each payload as a hex dump too (> sent, < received: offset, hex, "
        "ASCII), like ncat -x / socat -x. Human output only: --json carries the "
        "bytes already (text, data_b64).",
    )(f)


def family_options(f: F) -> F:
    f = click.option("-6", "version", flag_value=6, type=int, help="IPv6 only.")(f)
    f = click.option("-4", "version", flag_value=4, type=int, help="IPv4 only.")(f)
    return f


def server_options(default_port: int) -> Callable[[F], F]:
    """--host, --port, -4/-6, --count, --quiet, --json, --no-color for a server."""

    def decorate(f: F) -> F:
        f = output_options(f)
        f = click.option("-q", "--quiet", is_flag=True, help="No per-request log lines (faster).")(
            f
        )
        f = click.option(
            "--count",
            type=click.IntRange(min=1),
            default=None,
            help="Stop after N handled requests and exit 0.",
        )(f)
        f = family_options(f)
        f = click.option(
            "-p",
            "--port",
            type=PortType(),
            default=default_port,
            show_default=True,
            help="Port to listen on; 0 picks any free port (see the listening event).",
        )(f)
        f = click.option(
            "-H",
            "--host",
            type=HostType(),
            default="127.0.0.1",
            show_default=True,
            help="Address to listen on (127.0.0.1, ::1, 0.0.0.0, [::1]:PORT, ...); "
            ":: serves IPv6 and IPv4 clients alike (dual-stack, as ncat -l does), "
            "-6 -H :: IPv6 only.",
        )(f)
        return f

    return decorate


def client_options(default_port: int, default_timeout: float = 2.0) -> Callable[[F], F]:
    """--host, --port, -4/-6, --timeout, --json, --no-color for a client."""

    def decorate(f: F) -> F:
        f = output_options(f)
        f = click.option(
            "-t",
            "--timeout",
            type=TIMEOUT,
            default=default_timeout,
            show_default=True,
            help="Seconds to wait for the server before giving up (exit 1). One deadline "
            "covers the name lookup, every address of the name (each gets its share) and "
            "the first answer; each later answer gets as long again.",
        )(f)
        f = family_options(f)
        f = click.option(
            "-p",
            "--port",
            type=PortType(allow_zero=False),
            default=default_port,
            show_default=True,
            help="Server port.",
        )(f)
        f = click.option(
            "-H",
            "--host",
            type=HostType(),
            default="127.0.0.1",
            show_default=True,
            help="Server address or name (HOST, HOST:PORT, [V6]:PORT).",
        )(f)
        return f

    return decorate


def endpoint(
    host: tuple[str, int | None], port: int, *, allow_zero: bool = True
) -> tuple[str, int]:
    """Combine --host (which may carry a port) and --port into one (host, port)."""
    from netkit import net

    ctx = click.get_current_context()
    name, host_port = host
    if host_port is None:
        return name, port
    if _given(ctx, "port") and host_port != port:
        raise click.UsageError(
            f"--host {net.format_host(name)}:{host_port} and --port {port} disagree; give one"
        )
    if host_port == 0 and not allow_zero:
        raise click.BadParameter("port 0 cannot be connected to", param_hint="'--host'")
    return name, host_port


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def positional_endpoint(
    target: tuple[str, ...], host: tuple[str, int | None], port: int
) -> tuple[str, int]:
    """A client's server from ``[HOST [PORT]]`` arguments (the ncat way) or --host/--port.

    ``HOST`` may be ``HOST:PORT`` or ``[V6]:PORT`` as with --host.  Giving
    the host (or the port) both as an argument and as an option is a usage
    error, never a silent choice.
    """
    from netkit import net

    ctx = click.get_current_context()
    if len(target) > 2:
        extra = " ".join(target[2:])
        raise click.UsageError(
            f"unexpected extra arguments ({extra}): this command takes at most HOST and PORT"
        )
    if not target:
        return endpoint(host, port, allow_zero=False)
    if _given(ctx, "host"):
        raise click.UsageError(f"HOST {target[0]!r} given as an argument and as --host; give one")
    try:
        name, host_port = net.split_host_port(target[0])
        if len(target) == 2:
            if host_port is not None:
                raise net.UsageError(f"{target[0]!r} carries a port and PORT is given too")
            if _given(ctx, "port"):
                raise net.UsageError(f"PORT {target[1]!r} given as an argument and --port")
            port, host_port = net.parse_port(target[1], allow_zero=False), None
    except net.UsageError as exc:
        raise click.UsageError(
            f"{exc} (the server is HOST PORT, -H HOST -p PORT or -H HOST:PORT)"
        ) from None
    if host_port == 0:
        raise click.BadParameter("port 0 cannot be connected to", param_hint="'HOST'")
    if host_port is not None and _given(ctx, "port") and host_port != port:
        raise click.UsageError(f"{target[0]} and --port {port} disagree; give one")
    return name, host_port if host_port is not None else port


_HOST_NAME = r"(?i)(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z][a-z0-9-]*\.?"


def _looks_like_host(text: str) -> bool:
    from netkit import net

    return (
        net.is_ip_address(text)
        or text.lower() in ("localhost", "localhost.")
        or re.fullmatch(_HOST_NAME, text) is not None
    )


def refuse_host_port_as_data(args: tuple[str, ...], what: str) -> None:
    """Refuse ``send 127.0.0.1 42001 hello`` (ncat's HOST PORT order) instead of
    sending the address and the port as data.

    The first argument is taken for an address when it is an IP address,
    ``localhost`` or a dotted host name, followed by a port number, or when it
    is ``HOST:PORT`` / ``[V6]:PORT``.  With --host or --port given, every
    argument is data.
    """
    from netkit import net

    ctx = click.get_current_context()
    if not args or _given(ctx, "host") or _given(ctx, "port"):
        return
    first = args[0]
    try:
        name, host_port = net.split_host_port(first)
    except net.UsageError:
        return
    if not (first.startswith("[") or _looks_like_host(name)):
        return
    if host_port is not None:
        spelled = first
    elif len(args) >= 2 and args[1].isascii() and args[1].isdigit() and 0 < int(args[1]) < 65536:
        spelled = f"{first} {args[1]}"
        host_port = int(args[1])
    else:
        return
    shown = net.format_host(name)
    raise click.UsageError(
        f"{spelled!r} looks like the server's address, not {what}: give it as "
        f"-H {shown} -p {host_port} or -H {shown}:{host_port} (to send it as {what}, "
        "give -H or -p as well)"
    )


def renderer(json_output: bool, no_color: bool, quiet: bool = False) -> Renderer:
    from netkit.render import make_renderer

    hex_view = hex_requested()
    return make_renderer(json_output=json_output, no_color=no_color, quiet=quiet, hex_view=hex_view)


@contextmanager
def failures() -> Iterator[None]:
    """Turn an expected failure into click's one-line ``Error: ...`` and exit 1."""
    try:
        yield
    except Exception as exc:
        from netkit import net  # only on the error path: keeps start-up light

        if isinstance(exc, net.NetError):
            raise click.ClickException(str(exc)) from None
        if isinstance(exc, net.UsageError):
            raise click.UsageError(str(exc)) from None
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            raise click.ClickException(net.describe_error(exc)) from None
        raise


def handle_failures(f: F) -> F:
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with failures():
            return f(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class _OutputGuard:
    """The sink a running server emits to: when its output pipe breaks, it
    stops the server instead of raising in a serving thread or callback."""

    def __init__(self, service: Any) -> None:
        self.sink = service.sink
        self.service = service
        self.broken = False

    def __call__(self, event: Any) -> None:
        if self.broken:
            return
        try:
            self.sink(event)
        except BrokenPipeError:
            self.broken = True
            self.service.request_stop()


def run_server(service: Any, out: Renderer, *, grace: float = 1.0) -> None:
    """Run a :class:`netkit.services.core.Service` until --count or a signal.

    SIGINT and SIGTERM handlers are installed before the service starts (so
    before its ``listening`` event); they only request a stop, and the
    service then closes what it has within *grace* (saying so when busy
    connections make it wait), a summary is printed and the command exits 0.
    A second signal (Ctrl-C again) closes what is still open at once.
    """
    import signal

    from netkit.events import Notice

    stopped_by: list[str] = []
    guard = _OutputGuard(service)
    service.sink = guard
    # a terminal echoes ^C where the cursor is: what follows starts a line of its own
    after_ctrl_c = getattr(out, "interrupted", lambda: None)

    def on_signal(signum: int, _frame: object) -> None:
        if stopped_by:  # the second one: no more grace
            stopped_by.append(signal.Signals(signum).name)
            service.force_stop()
            return
        stopped_by.append(signal.Signals(signum).name)
        service.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with failures():
            service.start()
        try:
            service.wait()
            if stopped_by[:1] == ["SIGINT"]:
                after_ctrl_c()
            busy = service.busy() if stopped_by and grace > 0 else 0
            if busy and not service.forced:
                s = "s" if busy != 1 else ""
                guard(
                    Notice(
                        "info",
                        f"stopping: waiting up to {grace:g} s for {busy} busy connection{s} "
                        "(Ctrl-C again to close them now)",
                    )
                )
        finally:
            service.stop(grace)
        if stopped_by[1:2] == ["SIGINT"]:
            after_ctrl_c()
        if guard.broken:
            # stdout went away (`... --json | head -1`): stop like any filter
            # whose reader left; main() exits 1 without a traceback
            raise BrokenPipeError(errno.EPIPE, "output closed")
        reason = f"stopped by {stopped_by[0]}" if stopped_by else "stopped after --count"
        out(service.summary(reason))
        out.close()
        if service.failure:
            raise click.ClickException(service.failure)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
