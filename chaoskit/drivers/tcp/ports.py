"""TCP ports: ``tcp.connect``, can a connection be opened, and how long does it take."""

from __future__ import annotations

import socket
import time

from pydantic import Field

from chaoskit.drivers import contract
from chaoskit.durations import Duration


class ConnectArgs(contract.Args):
    host: str = "127.0.0.1"
    """The host name or address."""
    port: int = Field(ge=1, le=65535)
    """The TCP port."""
    timeout: Duration = 5.0
    """Give up after this long."""


class Connect(contract.Probe[ConnectArgs], args=ConnectArgs):
    name = "tcp.connect"
    summary = "Open a TCP connection: {connected, elapsed_ms, error}; a refusal is an answer, not an error."

    def run(self, args: ConnectArgs, ctx: contract.RunContext) -> contract.JsonValue:
        started = time.perf_counter()
        error: str | None = None
        try:
            with socket.create_connection((args.host, args.port), timeout=max(args.timeout, 0.001)):
                pass
        except TimeoutError:
            error = f"no connection within {args.timeout:g}s"
        except OSError as e:
            error = e.strerror or str(e) or type(e).__name__
        return {
            "connected": error is None,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
            "error": error,
        }
