"""``chaoskit demo``: run the demo system (frontend → fault proxy → backend) in the foreground."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from chaoskit import errors


@click.command("demo")
@click.option("--port", default=18080, show_default=True, help="Frontend port (what clients call).")
@click.option("--backend-port", default=18081, show_default=True, help="Backend port.")
@click.option("--proxy-port", default=18082, show_default=True, help="Where the `backend` proxy listens.")
@click.option("--api-port", default=8474, show_default=True, help="The embedded proxy's Toxiproxy API port.")
@click.option("--timeout", default=1.0, show_default=True, help="Seconds per backend attempt.")
@click.option("--attempts", default=3, show_default=True, help="Backend attempts per request.")
def command(**options: Any) -> None:
    """Run the demo until SIGINT or SIGTERM: a frontend calling a backend through the fault proxy.

    Try `curl localhost:18080/` and `curl localhost:18080/metrics`; the backend link is the proxy
    named `backend` (e.g. `chaoskit.faults.latency(proxy="backend", latency="300ms")`).
    """
    from chaoskit.demo import services

    settings = services.Settings(
        frontend_port=options["port"],
        backend_port=options["backend_port"],
        proxy_port=options["proxy_port"],
        api_port=options["api_port"],
        timeout=options["timeout"],
        attempts=options["attempts"],
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        demo = services.Demo(settings).start()
    except OSError as e:
        raise errors.UsageError(
            f"demo: {e.strerror or e}",
            hint="pick free ports with --port, --backend-port, --proxy-port and --api-port",
        ) from e
    click.echo(
        f"demo: frontend {demo.frontend_url}/ (metrics at /metrics) → proxy 'backend' on "
        f"127.0.0.1:{settings.proxy_port} (Toxiproxy API http://127.0.0.1:{settings.api_port}) → backend; "
        "Ctrl-C stops",
        err=True,
    )
    try:
        stop.wait()
    finally:
        demo.close()
