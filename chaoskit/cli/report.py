"""``chaoskit report JOURNAL... --format html|md|junit [-o FILE]``: a report from finished runs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chaoskit import errors
from chaoskit.cli import options
from chaoskit.report import html, journal_files, junit, markdown


@click.command()
@click.argument(
    "journal_paths", metavar="JOURNAL...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md", "junit"]),
    default="html",
    show_default=True,
    help="html: one self-contained page with a timeline; md: Markdown; junit: JUnit XML for CI.",
)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write here instead of to stdout.")
@click.option(
    "--title", default="chaoskit report", show_default=True, help="Heading when several journals are given."
)
def command(journal_paths: tuple[Path, ...], fmt: str, output: Path | None, title: str) -> None:
    """Render the journal(s) of finished runs as HTML, Markdown or JUnit XML."""
    try:
        options.check_writable("-o", output)
        runs = [journal_files.read(p) for p in journal_paths]
    except errors.ChaoskitError as e:
        click.echo(f"chaoskit report: {e.render()}", err=True)
        sys.exit(int(e.exit_code))
    if fmt == "junit":
        text = junit.render(runs)
    elif fmt == "md":
        text = markdown.render(runs[0]) if len(runs) == 1 else markdown.render_gameday(title, runs)
    else:
        text = html.render(runs[0]) if len(runs) == 1 else html.render_gameday(title, runs)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        click.echo(f"chaoskit report: can't write {output}: {e.strerror or e}", err=True)
        sys.exit(int(errors.ExitCode.INVALID))
    click.echo(f"wrote {output}", err=True)
