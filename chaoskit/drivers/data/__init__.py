"""The data driver: a background writer of sequenced records and a verifier that reads them back,
measuring RPO (acknowledged writes lost) and RTO (until writes are accepted again) on Redis
(with Sentinel) and PostgreSQL. redis-py and psycopg are imported only when a store is opened."""

from __future__ import annotations

from importlib import util

from chaoskit.drivers import contract
from chaoskit.drivers.data import writing


def _missing() -> str | None:
    if util.find_spec("redis") is None and util.find_spec("psycopg") is None:
        return "neither redis-py nor psycopg is installed: pip install 'chaoskit[redis,postgres]'"
    return None


def driver() -> contract.Driver:
    return contract.Driver(
        name="data",
        summary="data stores (Redis, Sentinel, PostgreSQL): a sequenced writer, RPO and RTO read back",
        probes=(writing.Write(), writing.Verify()),
        missing=_missing,
    )
