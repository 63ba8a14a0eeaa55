"""``data.write`` (the background writer, one sequenced write per sample of a ``measure``) and
``data.verify`` (read back after recovery: RPO and RTO of the run's writes).

The writer's log and its store live in the run's context (``RunContext.resource``), keyed by URL
and key, so that the verifier of the same run reads what the writer recorded; the store's key or
table is removed when the run ends.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field, JsonValue

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.drivers.data import stores, writelogs
from chaoskit.durations import Duration

LOST_SHOWN = 50
"""At most this many lost sequence numbers are listed in the verifier's output."""


class StoreArgs(contract.Args):
    url: str
    """The store: ``redis://HOST:PORT/DB``, ``redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER`` (writes
    follow the master Sentinel names) or a libpq URL ``postgresql://USER@HOST:PORT[,HOST:PORT]/DB``
    (several hosts with ``?target_session_attrs=read-write`` follow a promoted standby)."""
    key: Annotated[str, Field(pattern=r"^[A-Za-z_][\w:.-]{0,62}$")]
    """The Redis key or PostgreSQL table the writer owns: emptied when the run starts writing,
    removed when it ends. One that exists and was not made by a chaoskit writer is refused."""
    timeout: Annotated[Duration, Field(gt=0, le=60)] = 1.0
    """Seconds to connect and to wait for Redis's answer; a write that fails or times out is not
    acknowledged. (PostgreSQL commits are never cancelled: a commit waiting for a synchronous
    standby is waited for; the measure's ticks meanwhile are skipped.)"""


class VerifyArgs(StoreArgs):
    since: Literal["first_fault", "first_failure"] = "first_fault"
    """Where the RTO starts: ``first_fault``, the run's first injected fault; ``first_failure``,
    where the writes show the outage began (the acknowledgement of the last write before the
    first failed one: at most one writer interval early) - for a run whose first fault does not
    stop writes by itself (a slowed replication link before the kill)."""


class Writing:
    """One writer's store and log in one run."""

    def __init__(self, args: StoreArgs) -> None:
        self.store = stores.open_store(args.url, args.key, args.timeout)
        self.log = writelogs.WriteLog()


def _writing(args: StoreArgs, ctx: contract.RunContext) -> Writing:
    def close(writing: Writing) -> None:
        try:
            writing.store.clean()
        finally:
            writing.store.close()

    return ctx.resource(f"data.write:{args.url}:{args.key}", lambda: Writing(args), close)


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


class Write(contract.Probe[StoreArgs], args=StoreArgs):
    name = "data.write"
    summary = (
        "write the next sequenced record and say whether the store acknowledged it (1) or not (0): "
        "sample it as a measure to keep a writer running through the whole run"
    )

    def run(self, args: StoreArgs, ctx: contract.RunContext) -> JsonValue:
        writing = _writing(args, ctx)
        seq = writing.log.take()
        started = time.time()
        error: str | None = None
        try:
            writing.store.write(seq, started)
        except errors.ChaoskitError:
            raise
        except Exception as e:  # any failure to write is what the writer is there to record
            error = f"{type(e).__name__}: {e}".strip()
        ended = time.time()
        writing.log.record(writelogs.Attempt(seq, started, ended, acknowledged=error is None))
        return {
            "value": 1 if error is None else 0,
            "seq": seq,
            "acknowledged": error is None,
            "latency_ms": round((ended - started) * 1000, 3),
            "error": error,
        }


class Verify(contract.Probe[VerifyArgs], args=VerifyArgs):
    name = "data.verify"
    summary = (
        "read the writer's records back: rpo_writes (acknowledged writes lost), rpo_seconds, "
        "rto_seconds (from the first fault until writes are accepted again)"
    )

    def run(self, args: VerifyArgs, ctx: contract.RunContext) -> JsonValue:
        writing = _writing(args, ctx)
        attempts = writing.log.snapshot()  # before reading: a write acked later is not judged
        try:
            found = writing.store.read_back()
        except errors.ChaoskitError:
            raise
        except Exception as e:
            raise errors.DriverError(
                f"data.verify: could not read {args.key!r} back from {stores.redact(args.url)}: {e}",
                hint="the store is not serving reads yet; in an after-hypothesis it is polled again",
            ) from e
        fault_at = ctx.marks.get("first_inject") if args.since == "first_fault" else None
        result = writelogs.objectives(attempts, found, fault_at)
        return {
            "rpo_writes": result.rpo_writes,
            "rpo_seconds": round(result.rpo_seconds, 3),
            "rto_seconds": None if result.rto_seconds is None else round(result.rto_seconds, 3),
            "writes": result.writes,
            "acknowledged": result.acknowledged,
            "lost": list(result.lost[:LOST_SHOWN]),
            "lost_since": _iso(result.lost_since),
            "lost_until": _iso(result.lost_until),
            "fault_at": _iso(result.fault_at),
            "accepted_again_at": _iso(result.accepted_again_at),
        }
