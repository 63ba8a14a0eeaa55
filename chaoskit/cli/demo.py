"""``chaoskit demo``: run the demo system (frontend → fault proxy → backend, with resilience
patterns switched on or off) in the foreground."""

from __future__ import annotations

import os
import signal
import socket
import threading
from typing import TYPE_CHECKING, Any

import click

from chaoskit import errors

if TYPE_CHECKING:
    from chaoskit.demo import services

STARTED_BY_RUN = "CHAOSKIT_RUN_ID"
"""Set in the environment of what ``process.start`` starts (``starting.RUN_ID``): the demo runs
inside ``chaoskit run``, whose flags are not the demo's."""

PORTS = {
    # setting: (what listens there, the demo's flag, the quickstart experiments' variable)
    "frontend_port": ("the frontend", "--port", "port"),
    "backend_port": ("the backend", "--backend-port", "backend_port"),
    "proxy_port": ("the proxy 'backend'", "--proxy-port", "proxy_port"),
    "api_port": ("the Toxiproxy API", "--api-port", "proxy_api"),
}


def _taken(settings: services.Settings) -> list[str]:
    """The settings whose port can't be listened on now (after the demo closed what it opened)."""
    taken = []
    for setting in PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As the demo's servers do: a port left in TIME_WAIT is free to them.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((settings.host, getattr(settings, setting)))
            except OSError:
                taken.append(setting)
    return taken


def port_hint(settings: services.Settings, *, in_run: bool) -> str:
    """How to move the demo off a taken port, in the words of where it runs: the demo's own flags,
    or ``--var`` when an experiment started it (``chaoskit run`` has no ``--port``)."""
    taken = _taken(settings) or list(PORTS)
    if in_run:
        given = " ".join(f"--var {PORTS[s][2]}=N" for s in taken)
        names = ", ".join(variable for _, _, variable in PORTS.values())
        return (
            f"give the experiment other ports: add {given} to the chaoskit run command "
            f"(the quickstart experiments pass the demo its ports in the variables {names}), "
            "or stop what is using them"
        )
    given = ", ".join(f"{PORTS[s][0]} {getattr(settings, s)}: {PORTS[s][1]} N" for s in taken)
    return f"pick free ports ({given}), or stop what is using them"


@click.command("demo")
@click.option("--port", default=18080, show_default=True, help="Frontend port (what clients call).")
@click.option("--backend-port", default=18081, show_default=True, help="Backend port.")
@click.option("--proxy-port", default=18082, show_default=True, help="Where the `backend` proxy listens.")
@click.option("--api-port", default=8474, show_default=True, help="The embedded proxy's Toxiproxy API port.")
@click.option("--timeout", default=1.0, show_default=True, help="Seconds per backend attempt.")
@click.option("--attempts", default=3, show_default=True, help="Backend attempts per request.")
@click.option(
    "--pattern",
    "patterns",
    multiple=True,
    metavar="NAME=on|off",
    help="Switch a resilience pattern on or off (repeatable): timeout, retry, breaker, bulkhead, health, "
    "shedding, hedging. See docs/patterns.md.",
)
@click.option("--capacity", default=64, show_default=True, help="Requests the frontend works on at once.")
@click.option("--pool", default=16, show_default=True, help="Connection slots per dependency (or shared).")
def command(**options: Any) -> None:
    """Run the demo until SIGINT or SIGTERM: a frontend calling a backend through the fault proxy.

    Try `curl localhost:18080/` and `curl localhost:18080/metrics`; the backend link is the proxy
    named `backend` (e.g. `chaoskit.faults.latency(proxy="backend", latency="300ms")`). `/reviews`
    calls a second dependency (proxy `reviews`), `/balanced` one of three instances (proxies
    `instance-0`..`instance-2`). On by default: timeout, retry (backoff, jitter, budget), bulkhead,
    health; off: breaker, shedding, hedging.
    """
    from chaoskit.demo import resilience, services

    try:
        resilience.parse_patterns(list(options["patterns"]))
    except ValueError as e:
        raise errors.UsageError(
            f"demo: --pattern {e}", hint="e.g. --pattern breaker=on --pattern retry=off"
        ) from None
    settings = services.Settings(
        frontend_port=options["port"],
        backend_port=options["backend_port"],
        proxy_port=options["proxy_port"],
        api_port=options["api_port"],
        timeout=options["timeout"],
        attempts=options["attempts"],
        patterns=tuple(options["patterns"]),
        capacity=options["capacity"],
        pool=options["pool"],
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        demo = services.Demo(settings).start()
    except (OSError, errors.ChaoskitError) as e:
        message = e.message if isinstance(e, errors.ChaoskitError) else (e.strerror or str(e))
        raise errors.UsageError(
            f"demo: {message}", hint=port_hint(settings, in_run=bool(os.environ.get(STARTED_BY_RUN)))
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
