"""Options shared by several commands (``--state-dir``, ``--var``, ``--probes-path``), so that
they are spelled and documented the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def state_dir(function: F) -> F:
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where fault ledgers live [default: $CHAOSKIT_STATE_DIR or ~/.local/state/chaoskit].",
    )(function)


def variables(function: F) -> F:
    function = click.option(
        "--var-file",
        "var_files",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="A YAML/JSON file of variables (repeatable; later files win).",
    )(function)
    return click.option(
        "--var",
        "variables",
        multiple=True,
        metavar="NAME=VALUE",
        help="Set a variable used as ${NAME} (repeatable; wins over config and --var-file).",
    )(function)


def probes_path(function: F) -> F:
    return click.option(
        "--probes-path",
        "probes_path",
        multiple=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="A directory of catalog probes for `use:` steps (repeatable; searched first).",
    )(function)
