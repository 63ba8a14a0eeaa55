"""The tcp driver against real sockets on 127.0.0.1: a connect answers both ways, and the activity
keeps the name users type, ``tcp.connect``, in a driver of its own."""

from __future__ import annotations

import socket

from chaoskit.drivers import contract, registry
from chaoskit.drivers.tcp import driver as tcp_driver

CONNECT = next(p for p in tcp_driver().probes if p.name == "tcp.connect")


def _ctx() -> contract.RunContext:
    return contract.RunContext(run_id="test")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tcp_connect_answers_both_ways() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = int(listener.getsockname()[1])
        ok = CONNECT.run(CONNECT.args(port=port), _ctx())
    assert isinstance(ok, dict) and ok["connected"] is True and ok["error"] is None
    refused = CONNECT.run(CONNECT.args(host="127.0.0.1", port=_closed_port(), timeout="2s"), _ctx())
    assert isinstance(refused, dict) and refused["connected"] is False
    assert "refused" in str(refused["error"]).lower()
    assert isinstance(refused["elapsed_ms"], float)


def test_tcp_connect_is_the_installed_tcp_drivers_and_no_one_elses() -> None:
    loaded = registry.load()
    assert registry.source(loaded.probes["tcp.connect"]) == "chaoskit.drivers.tcp.ports:Connect"
    assert [p.name for p in loaded.drivers["tcp"].probes] == ["tcp.connect"]
    assert "tcp.connect" not in [p.name for p in loaded.drivers["http"].probes]
