"""Real replicated data stores on 127.0.0.1 for the datastores suite, from Debian's packages
(scripts/lib/component-datastores.sh installs them): Redis with a replica and a Sentinel, and
PostgreSQL 15 with a streaming standby. Each replica's replication link goes through chaoskit's
embedded proxy (``chaoskit proxy serve``), so an experiment can slow it and make the replication
lag real. Every server has its own data directory and port and is stopped (by its own pid) after.
PostgreSQL refuses to run as root, so its servers and pg_ctl run as the ``postgres`` user."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MASTER = "mymaster"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(what: str, holds: Callable[[], bool], within: float = 30, log: Path | None = None) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if holds():
                return
        time.sleep(0.1)
    detail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
    raise AssertionError(f"{what} did not happen within {within}s\n{detail}")


@dataclass
class Processes:
    """What a setup started, stopped in reverse order by pid (SIGTERM, then SIGKILL)."""

    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, argv: list[str], log: Path, **kwargs: object) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kwargs)  # type: ignore[call-overload]
        self.started.append(process)
        return process  # type: ignore[no-any-return]

    def stop(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


def _redis_alive(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


def _redis(port: int, *command: str) -> str:
    """One command through redis-cli (the Debian package's), its output as text."""
    out = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *command],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return out.stdout


def start_proxy(processes: Processes, home: Path, name: str, upstream_port: int) -> tuple[str, int]:
    """The embedded proxy with one proxy ``name`` in front of ``upstream_port``: its API and listen port."""
    api, listen = free_port(), free_port()
    config = home / "proxies.json"
    config.write_text(
        json.dumps(
            [{"name": name, "listen": f"127.0.0.1:{listen}", "upstream": f"127.0.0.1:{upstream_port}"}]
        )
    )
    log = home / "proxy.log"
    processes.start(
        [sys.executable, "-m", "chaoskit", "proxy", "serve", "--port", str(api), "--config", str(config)], log
    )
    url = f"http://127.0.0.1:{api}"
    wait_until(
        "the embedded proxy answering", lambda: httpx.get(f"{url}/version").status_code == 200, log=log
    )
    return url, listen


@dataclass
class RedisSetup:
    primary: int
    replica: int
    sentinel: int
    pidfile: Path
    proxy_api: str
    link: str = "redis-replication"

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel}/{MASTER}"


@contextlib.contextmanager
def redis_with_sentinel(home: Path) -> Iterator[RedisSetup]:
    """A primary, a replica replicating through the embedded proxy, and one Sentinel (quorum 1,
    down after 1 s) that knows both; yields once the replica is in sync and Sentinel sees it."""
    processes = Processes()
    primary, replica, sentinel = free_port(), free_port(), free_port()
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"]
    try:
        for name in ("primary", "replica"):
            (home / name).mkdir()
        pidfile = home / "primary.pid"
        processes.start(
            [
                "redis-server",
                "--port",
                str(primary),
                "--dir",
                str(home / "primary"),
                "--pidfile",
                str(pidfile),
                *common,
            ],
            home / "primary.log",
        )
        wait_until("the Redis primary answering", lambda: _redis_alive(primary), log=home / "primary.log")
        proxy_api, link_port = start_proxy(processes, home, "redis-replication", primary)
        processes.start(
            [
                "redis-server", "--port", str(replica), "--dir", str(home / "replica"),
                "--replicaof", "127.0.0.1", str(link_port), *common,
            ],
            home / "replica.log",
        )  # fmt: skip
        wait_until(
            "the replica in sync",
            lambda: "master_link_status:up" in _redis(replica, "INFO", "replication"),
            log=home / "replica.log",
        )
        conf = home / "sentinel.conf"
        conf.write_text(
            f"port {sentinel}\nbind 127.0.0.1\ndir {home}\nprotected-mode no\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 10000\n"
        )
        processes.start(["redis-sentinel", str(conf)], home / "sentinel.log")
        wait_until(
            "Sentinel seeing the replica",
            lambda: f"{replica}" in _redis(sentinel, "SENTINEL", "REPLICAS", MASTER),
            log=home / "sentinel.log",
        )
        yield RedisSetup(primary, replica, sentinel, pidfile, proxy_api)
    finally:
        processes.stop()


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class PostgresSetup:
    primary: int
    standby: int
    primary_dir: Path
    standby_dir: Path
    proxy_api: str
    link: str = "pg-replication"

    @property
    def pidfile(self) -> Path:
        return self.primary_dir / "postmaster.pid"

    @property
    def promote(self) -> str:
        return " ".join(
            _as_postgres([str(PG_BIN / "pg_ctl"), "promote", "-w", "-t", "30", "-D", str(self.standby_dir)])
        )


def _pg_ready(port: int) -> bool:
    out = subprocess.run(
        [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
        capture_output=True,
        timeout=5,
        check=False,
    )
    return out.returncode == 0


def _psql(port: int, sql: str) -> str:
    argv = [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-Atc", sql]
    out = subprocess.run(_as_postgres(argv), capture_output=True, text=True, timeout=10, check=True)
    return out.stdout.strip()


@contextlib.contextmanager
def postgres_with_standby() -> Iterator[PostgresSetup]:
    """A primary (``synchronous_standby_names = '*'``) and a standby streaming through the embedded
    proxy; yields once the standby streams. The directories are the ``postgres`` user's own."""
    home = Path(tempfile.mkdtemp(prefix="chaoskit-pg-"))
    processes = Processes()
    try:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(home, owner.pw_uid, owner.pw_gid)
        primary, standby = free_port(), free_port()
        primary_dir, standby_dir = home / "primary", home / "standby"
        initdb = [str(PG_BIN / "initdb"), "-D", str(primary_dir), "-U", "postgres", "--auth=trust", "-N"]
        _setup(_as_postgres(initdb))
        settings = {
            "port": primary, "listen_addresses": "'127.0.0.1'", "unix_socket_directories": f"'{home}'",
            "synchronous_standby_names": "'*'", "fsync": "off", "shared_buffers": "'16MB'",
            "max_connections": 20, "wal_level": "replica", "max_wal_senders": 4,
        }  # fmt: skip
        _configure(primary_dir, settings)
        processes.start(
            _as_postgres([str(PG_BIN / "postgres"), "-D", str(primary_dir)]), home / "primary.log"
        )
        wait_until("the primary ready", lambda: _pg_ready(primary), log=home / "primary.log")
        proxy_api, link_port = start_proxy(processes, home, "pg-replication", primary)
        backup = [str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary), "-U", "postgres"]
        _setup(_as_postgres([*backup, "-D", str(standby_dir), "-R", "-X", "stream"]))
        _configure(
            standby_dir,
            {
                "port": standby,
                # promoted, it has no standby of its own to wait for (the primary's setting came along)
                "synchronous_standby_names": "''",
                "primary_conninfo": f"'host=127.0.0.1 port={link_port} user=postgres'",
            },
        )
        processes.start(
            _as_postgres([str(PG_BIN / "postgres"), "-D", str(standby_dir)]), home / "standby.log"
        )
        wait_until(
            "the standby streaming",
            lambda: (
                _psql(primary, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "1"
            ),
            log=home / "standby.log",
        )
        yield PostgresSetup(primary, standby, primary_dir, standby_dir, proxy_api)
    finally:
        processes.stop()
        _stop_postgres(home)
        shutil.rmtree(home, ignore_errors=True)


def _setup(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=120)


def _configure(data_dir: Path, settings: dict[str, object]) -> None:
    with (data_dir / "postgresql.auto.conf").open("a") as conf:
        conf.writelines(f"{key} = {value}\n" for key, value in settings.items())


def _stop_postgres(home: Path) -> None:
    """Each server still running under ``home`` (runuser's child is the postmaster), by its pid."""
    for pidfile in home.glob("*/postmaster.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, 3)  # SIGQUIT: immediate shutdown
