"""Options shared by several commands (``--state-dir``, ``--var``, ``--probes-path``), so that
they are spelled and documented the same everywhere, and the check of output paths."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from chaoskit import errors

F = TypeVar("F", bound=Callable[..., Any])


class Duration(click.ParamType[float]):
    """A duration flag as the experiment format writes them (``90s``, ``2h``), in seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from chaoskit import durations

        try:
            seconds = durations.parse(value)
        except (ValueError, TypeError) as e:
            self.fail(f"{e}", param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r}: must be more than 0", param, ctx)
        return seconds


DURATION = Duration()


def state_dir(function: F) -> F:
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where fault ledgers live [default: $CHAOSKIT_STATE_DIR, else $XDG_STATE_HOME/chaoskit, "
        "else ~/.local/state/chaoskit].",
    )(function)


def variables(function: F) -> F:
    function = click.option(
        "--var-file",
        "var_files",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="A YAML/JSON file of variables, Chaos Toolkit's {configuration: ..., secrets: {scope: ...}} "
        "form, or a .env file of environment variables (repeatable; later files win).",
    )(function)
    return click.option(
        "--var",
        "variables",
        multiple=True,
        metavar="NAME[:TYPE]=VALUE",
        help="Set a variable used as ${NAME} (repeatable; wins over config and --var-file); the value "
        "is read as YAML, or as TYPE (str, int, float, bool) when given.",
    )(function)


ROLLBACK_STRATEGIES = ("default", "always", "never", "deviated")


def rollback_strategy(function: F) -> F:
    return click.option(
        "--rollback-strategy",
        type=click.Choice(ROLLBACK_STRATEGIES),
        default=None,
        help="When rollbacks run (Chaos Toolkit's flag): default (the file's own choice; a Chaos "
        "Toolkit file's default skips them after a deviation), always, never, or deviated (only "
        "then). Overrides the file's rollback_strategy.",
    )(function)


def dotenv(var_files: tuple[Path, ...]) -> dict[str, str]:
    """The environment that ``.env`` files among ``--var-file`` set (already checked by loading)."""
    from chaoskit.spec import varfiles

    return varfiles.read_var_files(var_files, []).env


def print_warnings(warnings: tuple[errors.Problem, ...]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning.render()}", err=True)


def probes_path(function: F) -> F:
    return click.option(
        "--probes-path",
        "probes_path",
        multiple=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="A directory of catalog probes for `use:` steps (repeatable; searched first).",
    )(function)


def check_writable(option: str, path: Path | None, *, directory: bool = False) -> None:
    """Refuse (exit 2) an output path that can't be written, before anything runs rather than after:
    ``path`` is a file to write, or with ``directory`` a folder to write files in. Missing folders are
    fine (they are made when writing); the nearest one that exists must take a file."""
    if path is None:
        return
    if not directory:
        refuse_special(option, path)
    folder = path.expanduser().absolute()
    folder = folder if directory else folder.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        # Asking the file system, not access(2): root passes access() where a write still fails.
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise errors.UsageError(
            f"{option} {path}: can't write in {folder} ({e.strerror or e})",
            hint="pick a path in a writable directory",
        ) from None


def refuse_special(option: str, path: Path) -> None:
    """Refuse (exit 2) an output path that is a symlink, or exists and is not a regular file (a
    device, a FIFO, a directory). Outputs are written to a temporary file renamed over the path,
    which replaces a link or device itself: /dev/stdout is a symlink (to a regular file when stdout
    is redirected to one), and as root the rename would replace it for the whole machine."""
    path = path.expanduser()
    if path.is_symlink():
        kind = f"a symlink (to {os.readlink(path)})"
    else:
        try:
            mode = path.stat().st_mode
        except OSError:
            return  # missing (or unreadable): the write check says what is wrong
        if stat.S_ISREG(mode):
            return
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a device, pipe or socket)"
    hint = "give the path of a regular file to write (not a link to one)"
    if option == "--journal":
        hint = "to print the journal on stdout, use --output json (the journal file still goes to --journal)"
    elif option in ("-o", "--output"):
        hint = "omit -o to print on stdout, or give the path of a regular file to write"
    raise errors.UsageError(f"{option} {path}: {kind}; chaoskit writes its outputs as files", hint=hint)


def group(decorators: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """Apply a list of click options in the order listed (click's way to share option groups)."""

    def apply(f: Any) -> Any:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply
