"""The ``docker.container.run`` action: start the system under test in a container during setup;
the engine removes it again after teardown (or ``chaoskit recover`` does, after a crash)."""

from __future__ import annotations

import socket
import time
import urllib.request
from typing import Self

from pydantic import Field, model_validator

from chaoskit import durations
from chaoskit.drivers import contract
from chaoskit.drivers.docker import connecting, targets
from chaoskit.errors import DriverError


class RunArgs(contract.Args):
    image: str
    """The image to run; it must already be on the engine (chaoskit does not pull)."""
    name: str | None = None
    """The container's name; the engine picks one when omitted."""
    command: list[str] | None = None
    """Overrides the image's command."""
    ports: dict[str, str | int] = Field(default_factory=dict)
    """Container port → host address, e.g. ``{"80/tcp": "127.0.0.1:18080"}`` or ``{"80": 18080}``."""
    env: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    network: str | None = None
    """A network to attach it to (instead of the default bridge)."""
    aliases: list[str] = Field(default_factory=list)
    """Network aliases on ``network``."""
    restart: str | None = None
    """Restart policy: ``no``, ``always``, ``unless-stopped`` or ``on-failure``."""
    wait_for_port: int | None = Field(default=None, ge=1, le=65535)
    """Ready when a TCP connection to 127.0.0.1 on this host port succeeds."""
    wait_for_url: str | None = None
    """Ready when an HTTP GET of this URL answers 2xx."""
    timeout: durations.Duration = 30.0
    """How long to wait until it is ready."""

    @model_validator(mode="after")
    def _aliases_need_network(self) -> Self:
        if self.aliases and self.network is None:
            raise ValueError("aliases need a network: give network: NAME too")
        return self


def _binding(value: str | int) -> tuple[str, int] | int:
    if isinstance(value, int):
        return ("127.0.0.1", value)
    host, _, port = value.rpartition(":")
    return (host or "127.0.0.1", int(port))


def _ready(args: RunArgs) -> bool:
    try:
        if args.wait_for_port is not None:
            with socket.create_connection(("127.0.0.1", args.wait_for_port), timeout=1.0):
                pass
        if args.wait_for_url is not None:
            with urllib.request.urlopen(args.wait_for_url, timeout=2.0) as response:
                return 200 <= int(response.status) < 300
    except OSError:
        return False
    return True


class Run(contract.Action[RunArgs]):
    name = "docker.container.run"
    summary = "Start a container (setup); removed after teardown. Published ports default to 127.0.0.1."
    args = RunArgs

    def run(self, args: RunArgs, ctx: contract.RunContext) -> contract.ActionResult:
        client = connecting.client(ctx)
        network_options: dict[str, object] = {}
        if args.network is not None and args.aliases:
            network_options["networking_config"] = {
                args.network: client.api.create_endpoint_config(aliases=args.aliases)
            }
        try:
            container = client.containers.run(
                args.image,
                args.command,
                name=args.name,
                detach=True,
                environment=args.env or None,
                labels={**args.labels, connecting.RUN_LABEL: ctx.run_id},
                ports={port: _binding(host) for port, host in args.ports.items()} or None,
                network=args.network,
                restart_policy={"Name": args.restart} if args.restart else None,
                **network_options,
            )
        except Exception as e:
            connecting.fail(f"starting image {args.image} as", f"container {args.name or ''}".strip(), e)
        undo: contract.RevertData = {"container_id": str(container.id), "name": str(container.name)}
        deadline = time.monotonic() + args.timeout
        while not _ready(args):
            container.reload()
            if container.status == "exited" or ctx.cancel.is_set() or time.monotonic() > deadline:
                logs = container.logs(tail=20).decode("utf-8", "replace").strip()
                self.undo(undo, ctx)
                why = (
                    "it exited"
                    if container.status == "exited"
                    else f"it was not ready within {args.timeout:g}s"
                )
                raise DriverError(
                    f"docker.container.run: container {container.name} ({args.image}): {why}"
                    + (f"; its last log lines:\n{logs}" if logs else "")
                )
            time.sleep(0.2)
        target = targets.to_target(container)
        return contract.ActionResult(output={"id": target.id, "name": target.name}, undo=undo)

    def undo(self, data: contract.RevertData, ctx: contract.RunContext) -> contract.RevertOutcome:
        container = targets.get(str(data["container_id"]), ctx)
        if container is None:
            return contract.RevertOutcome.ALREADY_CLEAN
        try:
            container.remove(force=True)
        except Exception as e:
            if connecting.is_not_found(e):
                return contract.RevertOutcome.ALREADY_CLEAN
            connecting.fail("removing", f"container {data['name']}", e)
        return contract.RevertOutcome.REVERTED
