"""``chaoskit agent``: the node agent, an HTTP server that applies faults inside this node's
containers and pods for runs elsewhere, and reverts what a run that stopped renewing left
(docs/agent.md)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click

from chaoskit.cli import options
from chaoskit.errors import UsageError


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        raise UsageError(f"--listen {text!r}: write HOST:PORT, e.g. 0.0.0.0:9737")
    return host.strip("[]") or "0.0.0.0", int(port)


_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--listen", default="0.0.0.0:9737", show_default=True, help="HOST:PORT to serve on."),
    click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("/var/lib/chaoskit-agent"),
        show_default=True,
        help="Its ledger and the runs' leases (a hostPath: survives restarts).",
    ),
    click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="CHAOSKIT_AGENT_TOKEN_FILE",
        default=None,
        help="A shared bearer token callers present (a mounted Secret).",
    ),
    click.option(
        "--allow-service-account",
        "accounts",
        multiple=True,
        metavar="NAMESPACE:NAME",
        help="Also accept this ServiceAccount's token (checked by a TokenReview; repeatable).",
    ),
    click.option(
        "--namespace",
        "namespaces",
        multiple=True,
        help="Touch pods of this namespace only (repeatable; default: any namespace).",
    ),
    click.option(
        "--node", envvar="NODE_NAME", default=None, help="This node's name: pods elsewhere are refused."
    ),
    click.option("--kubeconfig", default=None, help="Out of cluster: this kubeconfig (default: in-cluster)."),
    click.option(
        "--no-cluster", is_flag=True, help="No Kubernetes access: targets are container ids and pids only."
    ),
    click.option(
        "--allow-host-targets",
        is_flag=True,
        help="Accept container ids and host pids as targets, not only pods.",
    ),
    click.option(
        "--sweep-every",
        type=click.FloatRange(0.1),
        default=5.0,
        show_default=True,
        help="Seconds between sweeps for runs whose lease expired.",
    ),
]
"""Where it listens and keeps its ledger, who may call it, and what it may touch."""


@click.command()
@options.group(_OPTIONS)
def command(  # noqa: PLR0917 (click passes options positionally)
    listen: str,
    state_dir: Path,
    token_file: Path | None,
    accounts: tuple[str, ...],
    namespaces: tuple[str, ...],
    node: str | None,
    kubeconfig: str | None,
    no_cluster: bool,
    allow_host_targets: bool,
    sweep_every: float,
) -> None:
    """Serve the node agent until SIGTERM or Ctrl-C: faults inside this node's containers and pods,
    asked for by runs elsewhere, recorded under --state-dir and reverted when a run's lease expires.

    Run it as root with hostPID (operators/agent/): it enters containers with nsenter."""
    from chaoskit.agent import httpapi, records, working

    host, port = _address(listen)
    read_pod, checks = _callers(
        token_file=token_file,
        accounts=accounts,
        node=node,
        kubeconfig=kubeconfig,
        no_cluster=no_cluster,
        allow_host_targets=allow_host_targets,
    )
    agent = working.Agent(
        records.Book(state_dir),
        namespaces=namespaces,
        host_targets=allow_host_targets,
        read_pod=read_pod,
        log=lambda message: click.echo(f"chaoskit agent: {message}", err=True),
    )
    server = httpapi.Server((host, port), agent, httpapi.either(*checks))
    sweeper = httpapi.Sweeper(agent, sweep_every)
    sweeper.start()

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bound_host, bound_port = server.server_address[:2]
    where = f"{bound_host!s}:{bound_port}"
    click.echo(f"chaoskit agent: serving on {where}, state in {state_dir}", err=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        sweeper.stop.set()
        server.server_close()
    # Faults still held stay on file: their runs revert them, or the next agent sweeps them.
    click.echo("chaoskit agent: stopped", err=True)


def _callers(
    *,
    token_file: Path | None,
    accounts: tuple[str, ...],
    node: str | None,
    kubeconfig: str | None,
    no_cluster: bool,
    allow_host_targets: bool,
) -> tuple[Callable[..., Any] | None, list[Callable[[str], bool]]]:
    """How the agent reads pods (None without a cluster) and the checks a caller's token must pass
    one of; a ``UsageError`` when the options leave no caller or no target."""
    from chaoskit.agent import httpapi

    token = (
        token_file.read_text().strip()
        if token_file is not None
        else os.environ.get("CHAOSKIT_AGENT_TOKEN", "")
    )
    if not token and not accounts:
        raise UsageError(
            "chaoskit agent: no way to authenticate callers",
            hint="give --token-file (or CHAOSKIT_AGENT_TOKEN) and/or --allow-service-account",
        )
    if no_cluster and not allow_host_targets:
        raise UsageError(
            "chaoskit agent: --no-cluster leaves nothing to target", hint="add --allow-host-targets"
        )
    if no_cluster and accounts:
        raise UsageError(
            "chaoskit agent: --allow-service-account needs the cluster", hint="drop --no-cluster"
        )
    read_pod, checks = None, []
    if token:
        checks.append(httpapi.shared_token(token))
    if not no_cluster:
        from chaoskit.agent import apiserver

        cluster = apiserver.Cluster(kubeconfig, node)
        read_pod = cluster.read_pod
        if accounts:
            users = {f"system:serviceaccount:{a}" for a in accounts}
            checks.append(httpapi.token_review(cluster.review, users))
    return read_pod, checks
