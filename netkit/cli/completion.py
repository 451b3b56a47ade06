"""netkit completion: print or install the shell completion script.

The scripts are click's own: they call ``netkit`` back with
``_NETKIT_COMPLETE=<shell>_complete``, which walks the lazy command group
without importing rich or any service.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import click

from netkit.cli._common import output_options

SHELLS = ("bash", "zsh", "fish")
PROG = "netkit"
ENV_VAR = "_NETKIT_COMPLETE"


def script(shell: str) -> str:
    """The completion script for *shell*, exactly as click generates it."""
    from click.shell_completion import get_completion_class

    from netkit.cli import cli

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - SHELLS are all built in
        raise click.UsageError(f"no completion for {shell}")
    source = cls(cli, {}, PROG, ENV_VAR).source()
    return source if source.endswith("\n") else source + "\n"


def install_path(shell: str) -> Path:
    """Where *shell* looks for completion files without any rc-file change."""
    home = Path.home()
    data = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    if shell == "bash":  # bash-completion loads these on demand
        return data / "bash-completion" / "completions" / PROG
    if shell == "fish":
        return config / "fish" / "completions" / f"{PROG}.fish"
    zdot = Path(os.environ.get("ZDOTDIR") or home)
    return zdot / ".zfunc" / f"_{PROG}"


def write_replacing(path: Path, text: str) -> None:
    """Write *text* to *path* atomically, refusing anything but a regular file.

    The new content goes to a temporary file that ``mkstemp`` creates
    exclusively (``O_EXCL``, a random name, mode 0600) in the target's own
    directory, so no planted ``PATH.tmp`` symlink is written through; it is
    then renamed over *path*.  A symlink, FIFO, device, socket or directory
    at *path* is refused (as root, replacing ``/dev/full`` is not "install").
    """
    import stat
    import tempfile

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(st.st_mode):
            kind = (
                "a symbolic link"
                if stat.S_ISLNK(st.st_mode)
                else "a directory"
                if stat.S_ISDIR(st.st_mode)
                else "a FIFO"
                if stat.S_ISFIFO(st.st_mode)
                else "a device"
                if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "not a regular file"
            )
            raise click.ClickException(
                f"{path} is {kind}; not replacing it (give --path a regular file or a new name)"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _detect_shell() -> str | None:
    name = Path(os.environ.get("SHELL", "")).name
    return name if name in SHELLS else None


def _printer(shell: str) -> click.Command:
    @click.command(shell, help=f"Print the {shell} completion script.")
    @output_options
    def show(json_output: bool, no_color: bool) -> None:
        if json_output:
            from netkit.events.completion import CompletionScript
            from netkit.render.jsonl import JsonRenderer

            JsonRenderer()(CompletionScript(shell=shell, script=script(shell)))
        else:
            click.echo(script(shell), nl=False)

    return show


@click.group("completion")
def completion() -> None:
    """Print or install shell completion for bash, zsh or fish.

    Print the script and load it into the current shell, or install it
    where the shell looks for completions.  (A wheel or pipx install puts
    the scripts in share/bash-completion, share/zsh/site-functions and
    share/fish/vendor_completions.d already.)

    \b
    Examples:
      eval "$(netkit completion bash)"     load it into this bash
      netkit completion fish | source      load it into this fish
      netkit completion install            install for the shell in $SHELL
      netkit completion install zsh        install for zsh
    """


for _shell in SHELLS:
    completion.add_command(_printer(_shell))


@completion.command("install")
@click.argument("shell", type=click.Choice(SHELLS), required=False)
@click.option(
    "--path",
    "target",
    type=click.Path(dir_okay=False),
    help="Write the script here instead of the shell's usual place.",
)
@output_options
def install(shell: str | None, target: str | None, json_output: bool, no_color: bool) -> None:
    """Install the completion script for SHELL (default: the one in $SHELL)."""
    shell = shell or _detect_shell()
    if shell is None:
        raise click.UsageError(
            "cannot tell which shell you use from $SHELL; name it: "
            "netkit completion install bash|zsh|fish"
        )
    if target is not None and not target.strip():
        raise click.BadParameter("an empty path; give a file name", param_hint="'--path'")
    path = Path(target) if target is not None else install_path(shell)
    try:
        write_replacing(path, script(shell))
    except OSError as exc:
        from netkit.net import describe_error

        raise click.ClickException(describe_error(exc, f"cannot write {path}")) from None
    if json_output:
        from netkit.events.completion import CompletionInstalled
        from netkit.render.jsonl import JsonRenderer

        JsonRenderer()(CompletionInstalled(shell=shell, path=str(path)))
    click.echo(f"installed {shell} completion in {path}", err=True)
    if shell == "zsh":
        click.echo(
            f"zsh loads it if {path.parent} is in fpath before compinit runs; in ~/.zshrc:\n"
            f"  fpath=({path.parent} $fpath); autoload -Uz compinit; compinit",
            err=True,
        )
    elif shell == "bash":
        click.echo("bash loads it in new shells (needs the bash-completion package).", err=True)
    else:
        click.echo("fish loads it in new shells.", err=True)
