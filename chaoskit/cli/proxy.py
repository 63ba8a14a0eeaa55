"""``chaoskit proxy``: run the embedded Toxiproxy-compatible fault proxy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click


@click.group("proxy")
def command() -> None:
    """The embedded TCP fault proxy (speaks the Toxiproxy HTTP API)."""


@command.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the HTTP API listens on.")
@click.option("--port", default=8474, show_default=True, type=click.IntRange(0, 65535), help="API port.")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A JSON array of proxies to create at start (the body POST /populate takes).",
)
def serve(host: str, port: int, config: Path | None) -> None:
    """Serve until SIGINT or SIGTERM; then close every proxy and connection."""
    from chaoskit.proxy import servers

    proxies = servers.read_config(config) if config is not None else None

    def ready(running: servers.Running) -> None:
        count = len(running.table.proxies)
        click.echo(
            f"chaoskit proxy: Toxiproxy API on http://{running.host}:{running.port}"
            + (f", {count} prox{'y' if count == 1 else 'ies'} from {config}" if config else ""),
            err=True,
        )

    # ChaoskitErrors (a bad config, a busy port) reach the CLI group, which prints them.
    with asyncio.Runner(loop_factory=servers.new_loop) as runner:
        runner.run(servers.serve(host, port, proxies, ready, source=str(config)))
