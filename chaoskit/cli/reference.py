"""The CLI reference (docs/cli-reference.md), generated from the click commands so it never drifts.

``python -m chaoskit.cli.reference > docs/cli-reference.md`` rewrites it; a unit test compares.
"""

from __future__ import annotations

import click

from chaoskit.cli import main

HEADER = """# chaoskit command reference

Generated from the commands themselves by `python -m chaoskit.cli.reference > docs/cli-reference.md`
(a test fails when it is out of date). The exit codes and the ideas behind the commands are in
[cli.md](cli.md).
"""


def _walk(
    command: click.Command, path: list[str], parent: click.Context | None
) -> list[tuple[list[str], click.Context]]:
    # Contexts chained the way click chains them when the command runs (settings such as
    # ``-h`` for help are inherited from the group), so the text is what ``--help`` prints.
    ctx = click.Context(
        command, info_name=path[-1], parent=parent, terminal_width=100, **command.context_settings
    )
    found = [(path, ctx)]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                found += _walk(sub, [*path, name], ctx)
    return found


def render() -> str:
    parts = [HEADER]
    for path, ctx in _walk(main.cli, ["chaoskit"], None):
        parts.append(f"## `{' '.join(path)}`\n\n```\n{ctx.command.get_help(ctx)}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    click.echo(render(), nl=False)
