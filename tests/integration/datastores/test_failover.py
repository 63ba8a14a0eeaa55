"""RTO and RPO measured on real replicated stores through ``chaoskit run`` with the shipped
experiments: Redis + Sentinel (asynchronous: the acknowledged writes the slowed link held back are
lost, RPO > 0, within the window the link was slowed) and PostgreSQL streaming replication
(synchronous commit: no committed write lost, RPO 0; asynchronous: RPO > 0). The gate judges the
journals with --max-rpo and --max-rto."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.integration.datastores import servers

pytestmark = [pytest.mark.datastores, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[3]
LAG, LAGGED_FOR = 5.0, 2.0
"""The replication link is slowed by LAG, LAGGED_FOR seconds before the primary is killed."""


def _chaoskit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoskit", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=170,
    )


def _run(experiment: str, home: Path, name: str, variables: dict[str, object]) -> dict[str, Any]:
    journal = home / f"{name}.json"
    result = _chaoskit(
        "run",
        str(ROOT / "experiments" / experiment),
        *(arg for k, v in variables.items() for arg in ("--var", f"{k}={v}")),
        "--var", f"lag={LAG}s", "--var", f"lagged_for={LAGGED_FOR}s",
        "--journal", str(journal), "--state-dir", str(home / "state"), "--quiet",
        cwd=home,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    data: dict[str, Any] = json.loads(journal.read_text())
    data["_path"] = str(journal)
    return data


def _reading(journal: dict[str, Any]) -> dict[str, Any]:
    readings: list[dict[str, Any]] = journal["objectives"]
    (reading,) = readings
    assert reading["activity"] == "data.verify" and reading["phase"] == "after"
    return reading


def _gate(journal: dict[str, Any], *flags: str) -> subprocess.CompletedProcess[str]:
    return _chaoskit("gate", journal["_path"], *flags, cwd=Path(journal["_path"]).parent)


def test_redis_sentinel_failover_loses_the_writes_the_slowed_link_held(tmp_path: Path) -> None:
    require("redis-server", bool(shutil.which("redis-server") and shutil.which("redis-sentinel")),
            "apt-get install redis-server redis-sentinel (scripts/lib/component-datastores.sh)")  # fmt: skip
    with servers.redis_with_sentinel(tmp_path) as redis:
        journal = _run(
            "redis-sentinel-failover.yaml",
            tmp_path,
            "redis",
            {
                "sentinel": f"127.0.0.1:{redis.sentinel}",
                "primary_pidfile": redis.pidfile,
                "proxy_api": redis.proxy_api,
                "key": "chaoskit:test",
            },
        )
        assert servers._redis(redis.replica, "ROLE").startswith("master")  # Sentinel promoted it
        assert servers._redis(redis.replica, "EXISTS", "chaoskit:test").strip() == "0"  # cleaned up
    reading = _reading(journal)
    # Asynchronous replication: what the primary acknowledged while the link held it back is gone;
    # at most the LAGGED_FOR seconds of writes before the kill (and a write's latency) can be.
    assert reading["rpo_writes"] > 0
    assert 0 < reading["rpo_seconds"] <= LAGGED_FOR + 1.0
    # Sentinel: down after 1 s, then a failover; the writer follows the master it names.
    assert reading["rto_seconds"] is not None and 1.0 <= reading["rto_seconds"] < 30
    samples = [s for s in journal["samples"] if s["measure"] == "writer"]
    assert {s["values"]["acknowledged"] for s in samples} == {0.0, 1.0}  # on the timeline: the outage
    assert _gate(journal, "--max-rpo", "0").returncode == 1
    assert _gate(journal, "--max-rpo", str(reading["rpo_writes"]), "--max-rto", "30s").returncode == 0
    page = Path(journal["_path"]).with_suffix(".html")
    shown = _chaoskit("report", journal["_path"], "--format", "html", "-o", str(page), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    html = page.read_text()
    assert f"RPO {reading['rpo_writes']} acknowledged writes lost" in html  # on the timeline
    assert f"RTO {reading['rto_seconds']:.2f}s: writes accepted again" in html


@pytest.fixture(scope="module")
def postgres_available() -> None:
    require("postgresql-15", (servers.PG_BIN / "postgres").exists() and shutil.which("runuser") is not None,
            "apt-get install postgresql-15 (scripts/lib/component-datastores.sh)")  # fmt: skip


@pytest.mark.parametrize(("commit", "lost"), [("on", False), ("local", True)])
def test_postgres_failover_synchronous_commit_loses_nothing_asynchronous_does(
    postgres_available: None, tmp_path: Path, commit: str, lost: bool
) -> None:
    with servers.postgres_with_standby() as pg:
        journal = _run(
            "postgres-failover.yaml",
            tmp_path,
            f"pg-{commit}",
            {
                "hosts": f"127.0.0.1:{pg.primary},127.0.0.1:{pg.standby}",
                "commit": commit,
                "primary_pidfile": pg.pidfile,
                "promote": pg.promote,
                "proxy_api": pg.proxy_api,
            },
        )
        assert servers._psql(pg.standby, "SELECT pg_is_in_recovery()") == "f"  # promoted
        assert servers._psql(pg.standby, "SELECT to_regclass('chaoskit_rpo') IS NULL") == "t"  # cleaned up
    reading = _reading(journal)
    assert reading["rto_seconds"] is not None and 0 < reading["rto_seconds"] < 30
    if lost:
        assert reading["rpo_writes"] > 0
        assert 0 < reading["rpo_seconds"] <= LAGGED_FOR + 1.0
        assert _gate(journal, "--max-rpo", "0").returncode == 1
    else:
        # synchronous commit: a commit is acknowledged only once the standby has flushed it
        assert (reading["rpo_writes"], reading["rpo_seconds"]) == (0, 0.0)
        assert _gate(journal, "--max-rpo", "0", "--max-rto", "30s").returncode == 0
