"""The data stores a writer writes to, chosen by the URL's scheme: Redis (``redis://``,
``rediss://``, ``redis+sentinel://``) and PostgreSQL (``postgresql://``, ``postgres://``).

Each write is one record under the experiment's key or table: its sequence number and when it was
sent. A key or table that exists and was not made by a chaoskit writer is refused, never
overwritten; chaoskit's own is emptied when a run starts writing and removed when the run ends.
The client libraries (redis-py, psycopg) are imported only when a store is opened.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import urllib.parse
from typing import Any, Protocol

from chaoskit import errors

MARK = "chaoskit data.write"
"""What a chaoskit writer leaves on its key (a hash field) or table (its comment)."""


class Store(Protocol):
    def write(self, seq: int, at: float) -> None:
        """Write record ``seq``; return only once the store acknowledged it, raise otherwise."""

    def read_back(self) -> set[int]:
        """The sequence numbers the store holds now."""

    def clean(self) -> None:
        """Remove the key or table."""

    def close(self) -> None: ...


def open_store(url: str, key: str, timeout: float) -> Store:
    """The store ``url`` names, with ``key`` (a Redis key, a PostgreSQL table) made ready for a run."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme in {"redis", "rediss", "redis+sentinel"}:
        return RedisStore(url, key, timeout)
    if scheme in {"postgresql", "postgres"}:
        return PostgresStore(url, key, timeout)
    raise errors.DriverError(
        f"data: {redact(url)} is not a store chaoskit can write to",
        hint="use redis://, rediss://, redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER or postgresql://",
    )


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _missing(package: str, extra: str) -> errors.ComponentMissing:
    return errors.ComponentMissing(
        f"data: {package} is not installed", hint=f"pip install 'chaoskit[{extra}]'"
    )


class RedisStore:
    """One hash: field ``<seq>`` = when it was sent, plus the writer's mark field."""

    def __init__(self, url: str, key: str, timeout: float) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
            from redis.sentinel import Sentinel
        except ImportError as e:
            raise _missing("redis-py", "redis") from e
        self.key = key
        # One try per write: a retried write would hide the outage the writer is there to see.
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "redis+sentinel":
            sentinels, master, db = _sentinel_parts(parts)
            sentinel = Sentinel(sentinels, sentinel_kwargs={"socket_timeout": timeout}, **options)
            # The pool asks Sentinel for the master on every new connection: after a failover the
            # next write goes to the promoted replica.
            self.client: Any = sentinel.master_for(master, db=db, **options)
        else:
            self.client = redis.Redis.from_url(url, **options)
        self._ready = False

    def _prepare(self) -> None:
        if self._ready:
            return
        kind = self.client.type(self.key)
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind != "none" and not (kind == "hash" and self.client.hexists(self.key, "_mark")):
            raise errors.DriverError(
                f"data: Redis key {self.key!r} exists and was not made by a chaoskit writer",
                hint="name a key the experiment owns (it is emptied at the start and deleted at the end)",
            )
        self.client.delete(self.key)
        self.client.hset(self.key, "_mark", MARK)
        self._ready = True

    def write(self, seq: int, at: float) -> None:
        self._prepare()
        self.client.hset(self.key, str(seq), repr(at))

    def read_back(self) -> set[int]:
        self._prepare()  # a key that is not the writer's is refused here too, by name
        return {int(f) for f in self.client.hkeys(self.key) if f.isdigit()}

    def clean(self) -> None:
        if self._ready:  # never a key this writer refused as someone else's
            self.client.delete(self.key)

    def close(self) -> None:
        self.client.close()


def _sentinel_parts(parts: urllib.parse.SplitResult) -> tuple[list[tuple[str, int]], str, int]:
    """``redis+sentinel://h1:p1,h2:p2/master[/db]`` as its sentinels, master name and database."""
    hosts: list[tuple[str, int]] = []
    for item in parts.netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise errors.DriverError(
                f"data: sentinel {item!r} in the URL is not HOST:PORT",
                hint="redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster",
            )
        hosts.append((host.removeprefix("[").removesuffix("]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise errors.DriverError(
            f"data: {redact(parts.geturl())} does not name a master as its path",
            hint="redis+sentinel://127.0.0.1:26379/mymaster (optionally /mymaster/DB)",
        )
    return hosts, path[0], int(path[1]) if len(path) == 2 else 0


class PostgresStore:
    """One table ``(seq bigint primary key, at double precision)``, written with autocommit: a write
    is acknowledged when its COMMIT returns, under the session's ``synchronous_commit``."""

    def __init__(self, url: str, table: str, timeout: float) -> None:
        try:
            import psycopg
            from psycopg import sql
        except ImportError as e:
            raise _missing("psycopg", "postgres") from e
        self._psycopg = psycopg
        self._table = sql.Identifier(table)
        self._sql = sql
        self.table = table
        self.url = url
        self.timeout = timeout
        self._conn: Any = None
        self._ready = False
        # A write that waits for a synchronous standby must not be cancelled (PostgreSQL would then
        # report it committed, unreplicated): a write still waiting makes the next one refuse.
        self._busy = threading.Lock()

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = self._psycopg.connect(
                self.url, autocommit=True, connect_timeout=max(1, math.ceil(self.timeout))
            )
        if not self._ready:
            self._prepare(self._conn)
        return self._conn

    def _prepare(self, conn: Any) -> None:
        comment = conn.execute(
            "SELECT obj_description(to_regclass(%s), 'pg_class'), to_regclass(%s) IS NOT NULL",
            (self._quoted(), self._quoted()),
        ).fetchone()
        if comment[1] and comment[0] != MARK:
            raise errors.DriverError(
                f"data: table {self.table!r} exists and was not made by a chaoskit writer",
                hint="name a table the experiment owns (it is emptied at the start and dropped at the end)",
            )
        sql = self._sql
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._table))
        conn.execute(
            sql.SQL("CREATE TABLE {} (seq bigint PRIMARY KEY, at double precision NOT NULL)").format(
                self._table
            )
        )
        conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(self._table, sql.Literal(MARK)))
        self._ready = True

    def _quoted(self) -> str:
        return '"' + self.table.replace('"', '""') + '"'

    def write(self, seq: int, at: float) -> None:
        if not self._busy.acquire(blocking=False):
            raise errors.DriverError("data: the previous write to PostgreSQL is still waiting")
        try:
            conn = self._connection()
            conn.execute(
                self._sql.SQL("INSERT INTO {} (seq, at) VALUES (%s, %s)").format(self._table), (seq, at)
            )
        except self._psycopg.Error:
            self._drop()
            raise
        finally:
            self._busy.release()

    def read_back(self) -> set[int]:
        try:
            rows = self._connection().execute(self._sql.SQL("SELECT seq FROM {}").format(self._table))
            return {int(row[0]) for row in rows}
        except self._psycopg.Error:
            self._drop()
            raise

    def clean(self) -> None:
        conn = self._connection() if self._ready else None  # never a table refused as someone else's
        if conn is not None:
            conn.execute(self._sql.SQL("DROP TABLE IF EXISTS {}").format(self._table))

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close the connection; a write still waiting (for a synchronous standby that is gone) is
        woken by shutting its socket, so that no thread outlives the run. The verifier has read
        back by then: whatever that write says now is not judged."""
        if self._busy.locked() and self._conn is not None:
            with contextlib.suppress(Exception):
                sock = socket.socket(fileno=os.dup(self._conn.fileno()))
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                finally:
                    sock.close()
            if self._busy.acquire(timeout=5):
                self._busy.release()
        self._drop()
