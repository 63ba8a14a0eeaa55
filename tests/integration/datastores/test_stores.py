"""The data driver on one real Redis: the writer's key is its own (a key it did not make is
refused, never overwritten), the verifier counts exactly the acknowledged writes missing, and the
key is removed when the run ends."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.drivers.data import writing
from tests.conftest import require
from tests.integration.datastores import servers

pytestmark = pytest.mark.datastores


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    require("redis-server", shutil.which("redis-server") is not None, "apt-get install redis-server")
    processes = servers.Processes()
    port = servers.free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)]
    try:
        processes.start(argv, tmp_path / "redis.log")
        servers.wait_until("Redis answering", lambda: servers._redis_alive(port), log=tmp_path / "redis.log")
        yield port
    finally:
        processes.stop()


def test_a_key_the_writer_did_not_make_is_refused_and_kept(redis_port: int) -> None:
    servers._redis(redis_port, "SET", "orders", "precious")
    args = writing.StoreArgs(url=f"redis://127.0.0.1:{redis_port}/0", key="orders")
    ctx = contract.RunContext(run_id="r")
    with pytest.raises(errors.DriverError, match="exists and was not made by a chaoskit writer"):
        writing.Write().run(args, ctx)
    with pytest.raises(errors.DriverError, match="exists and was not made by a chaoskit writer"):
        writing.Verify().run(writing.VerifyArgs(url=args.url, key=args.key), ctx)
    ctx.close()
    assert servers._redis(redis_port, "GET", "orders").strip() == "precious"


def test_lost_writes_are_counted_and_the_key_is_removed_at_the_end(redis_port: int) -> None:
    url = f"redis://127.0.0.1:{redis_port}/0"
    ctx = contract.RunContext(run_id="r")
    write, verify = writing.Write(), writing.Verify()
    outputs = [write.run(writing.StoreArgs(url=url, key="rpo"), ctx) for _ in range(5)]
    assert [o["acknowledged"] for o in outputs if isinstance(o, dict)] == [True] * 5
    servers._redis(redis_port, "HDEL", "rpo", "2", "4")  # as a failover would: acknowledged, then gone
    reading = verify.run(writing.VerifyArgs(url=url, key="rpo"), ctx)
    assert isinstance(reading, dict)
    assert (reading["rpo_writes"], reading["lost"], reading["acknowledged"]) == (2, [2, 4], 5)
    ctx.close()
    assert servers._redis(redis_port, "EXISTS", "rpo").strip() == "0"


def test_a_store_that_is_down_is_an_unacknowledged_write_not_an_error(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{servers.free_port()}/0"  # nothing listens there
    ctx = contract.RunContext(run_id="r")
    output = writing.Write().run(writing.StoreArgs(url=url, key="rpo", timeout=0.5), ctx)
    assert isinstance(output, dict) and output["value"] == 0 and "ConnectionError" in str(output["error"])
