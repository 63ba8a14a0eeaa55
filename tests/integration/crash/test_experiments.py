"""The crash matrix over every shipped experiment that runs on one machine: the real ``chaoskit
run`` of ``experiments/*.yaml`` is SIGKILLed (it alone: what it started lives on, as after a real
crash) at seeded moments in each phase; then ``chaoskit recover`` exits 0, ``chaoskit status`` is
clean, and nothing of the run is left: no process carrying its ``CHAOSKIT_RUN_ID``, no listener on
its ports, no container it made.

Moments: ``CHAOSKIT_CRASH_EXPERIMENT_MOMENTS`` per experiment (3 in CI, a seeded rotation over the
phases), seed ``CHAOSKIT_CRASH_SEED``; ``python -m bench crash`` does 100. Each moment has its own
ports and state directory, so the moments of one experiment run side by side.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.crash import killing

EXPERIMENTS = Path(__file__).parents[3] / "experiments"
DEMO_PORTS = ("port", "backend_port", "proxy_port", "proxy_api")
REVERSIBLE = ("setup", "inject", "hold", "revert")


@dataclass(frozen=True)
class Shipped:
    file: str
    ports: tuple[str, ...]
    """The experiment's variables that are ports: each moment gets free ones."""
    phases: tuple[str, ...]
    """The phases this experiment has (``teardown`` only where it has rollbacks or a teardown)."""
    variables: dict[str, object] = field(default_factory=dict)


LOCAL = [
    Shipped("quickstart.yaml", DEMO_PORTS, killing.PHASES),
    Shipped("quickstart-deviates.yaml", DEMO_PORTS, REVERSIBLE),
    Shipped("process-http.yaml", ("port",), REVERSIBLE),
]


@dataclass(frozen=True)
class Moment:
    """One SIGKILL and what it found."""

    experiment: str
    index: int
    phase: str
    delay: float
    seen: str
    """The phase the run was really in, ``ended`` when it finished first."""

    def __str__(self) -> str:
        return f"{self.experiment} #{self.index}: {self.phase}+{self.delay}s -> {self.seen}"


def crash(
    folder: Path,
    shipped: Shipped,
    index: int,
    phase: str,
    delay: float,
    variables: dict[str, object] | None = None,
    survived: Callable[[killing.Run], object] | None = None,
    nothing_left: Callable[[killing.Run], None] | None = None,
) -> Moment:
    """One moment: run ``shipped`` with free ports, SIGKILL it in ``phase``, recover, check."""
    ports = killing.free_ports(len(shipped.ports))
    given = {**shipped.variables, **dict(zip(shipped.ports, ports, strict=True)), **(variables or {})}
    with killing.running(folder, EXPERIMENTS / shipped.file, variables=given) as run:
        seen = killing.kill_in(run, phase, delay)
        moment = Moment(shipped.file, index, phase, delay, seen)
        print(moment, flush=True)
        if seen == "ended":
            run.finish()
        stopping_it = False
        if seen in {"hold", "revert"} and killing.undone(run) < killing.undos(run):
            # A crash kills the runner only: what it started lives on until recover - unless the
            # kill came while the runner was stopping it (its undo under way, not yet ledgered).
            found = survived(run) if survived else killing.processes_marked(run.run_id)
            stopping_it = not found
            shown = killing.outstanding(run.state)
            assert run.run_id in shown, f"{moment}: status shows nothing to take back: {shown}"
        try:
            recovered = killing.recover_all(run.state)
            if stopping_it:
                # Then recover must find it already gone, and say so: not a process that vanished.
                undo_lines = [line for line in recovered.stdout.splitlines() if "process.start" in line]
                assert undo_lines and all("already-clean" in line for line in undo_lines), (
                    f"{moment}: nothing the run started outlived it, and recover said:\n{recovered.stdout}"
                )
            killing.assert_nothing_left(run.run_id, ports)
            if nothing_left:
                nothing_left(run)
        except AssertionError as e:
            output = run.log()[-3000:]
            raise AssertionError(f"{moment} (seed {killing.SEED}):\n{e}\nrunner output:\n{output}") from e
        assert "failed" not in recovered.stdout, f"{moment}: {recovered.stdout}"
    return moment


def matrix(
    tmp_path: Path,
    shipped: Shipped,
    count: int = killing.EXPERIMENT_MOMENTS,
    parallel: int = killing.PARALLEL,
    **options: Any,
) -> list[Moment]:
    """Every moment of ``shipped``'s plan, ``parallel`` at a time; the first failure fails."""
    moments = killing.plan(shipped.file, shipped.phases, count)
    print(f"seed {killing.SEED}: {shipped.file}: {moments}", flush=True)
    with futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        running = [
            pool.submit(crash, tmp_path / f"m{i}", shipped, i, phase, delay, **options)
            for i, (phase, delay) in enumerate(moments)
        ]
        return [done.result() for done in running]


@pytest.mark.parametrize("shipped", LOCAL, ids=[s.file for s in LOCAL])
def test_a_shipped_experiment_killed_in_any_phase_is_fully_recovered(
    shipped: Shipped, tmp_path: Path
) -> None:
    moments = matrix(tmp_path, shipped)
    assert any(m.seen != "ended" for m in moments), "every run ended before its kill: nothing was tested"


def test_the_quickstart_killed_while_its_latency_is_applied_is_recovered_toxic_first(tmp_path: Path) -> None:
    """Defect #1: ``kill -9`` of the quickstart with its toxic applied, then ``recover``, used to stop
    the demo (and its proxy) first and then fail forever to delete the toxic (exit 4)."""
    shipped = LOCAL[0]
    moment = crash(tmp_path, shipped, 0, "hold", 0.5)
    assert moment.seen == "hold", moment


# --- Prometheus ----------------------------------------------------------------------------------


@pytest.mark.prometheus
def test_the_prometheus_demo_killed_in_any_phase_is_fully_recovered(exporter: Any, tmp_path: Path) -> None:
    from tests.integration.prometheus.conftest import running_prometheus

    shipped = Shipped("prometheus-demo.yaml", DEMO_PORTS, REVERSIBLE)

    def one(index: int, phase: str, delay: float) -> Moment:
        home = tmp_path / f"prometheus{index}"
        home.mkdir()
        port = killing.free_port()
        with running_prometheus(home, {"demo": port}, exporter, wait_for_targets=False) as prometheus:
            return crash(
                tmp_path / f"m{index}",
                Shipped(shipped.file, DEMO_PORTS[1:], shipped.phases),
                index,
                phase,
                delay,
                variables={"port": port, "prometheus": prometheus.url},
            )

    moments = killing.plan(shipped.file, shipped.phases)
    print(f"seed {killing.SEED}: {shipped.file}: {moments}", flush=True)
    with futures.ThreadPoolExecutor(max_workers=len(moments)) as pool:
        done = [pool.submit(one, i, phase, delay) for i, (phase, delay) in enumerate(moments)]
        assert any(d.result().seen != "ended" for d in done)


# --- Docker --------------------------------------------------------------------------------------

DOCKER = [
    Shipped("docker-pause.yaml", ("port",), REVERSIBLE),
    Shipped("docker-partition.yaml", ("port",), REVERSIBLE),
    Shipped("docker-disconnect.yaml", ("port",), REVERSIBLE),
    Shipped("docker-kill-restart.yaml", ("port",), ("setup", "inject", "hold")),
]


@contextlib.contextmanager
def _no_container_left(engine: Any) -> Iterator[Callable[[killing.Run], None]]:
    def check(run: killing.Run) -> None:
        label = f"chaoskit.run-id={run.run_id}"
        left = engine.containers.list(all=True, filters={"label": label}, ignore_removed=True)
        described = [f"{c.name} ({c.status})" for c in left]
        assert not left, f"containers of run {run.run_id} left after recover: {described}"

    yield check


@pytest.mark.docker
@pytest.mark.parametrize("shipped", DOCKER, ids=[s.file for s in DOCKER])
def test_a_shipped_docker_experiment_killed_in_any_phase_is_fully_recovered(
    shipped: Shipped, engine: Any, network: Callable[..., str], tmp_path: Path
) -> None:
    from tests.integration.docker.conftest import HTTP_IMAGE

    def survived(run: killing.Run) -> bool:
        return bool(
            engine.containers.list(
                all=True, filters={"label": f"chaoskit.run-id={run.run_id}"}, ignore_removed=True
            )
        )

    moments = killing.plan(shipped.file, shipped.phases)
    print(f"seed {killing.SEED}: {shipped.file}: {moments}", flush=True)
    with _no_container_left(engine) as nothing_left, futures.ThreadPoolExecutor(len(moments)) as pool:
        done = []
        for i, (phase, delay) in enumerate(moments):
            name = f"ck-crash-{i}-{killing.free_port()}"
            variables: dict[str, object] = {"image": HTTP_IMAGE, "name": name}
            if "disconnect" in shipped.file:
                variables["network"] = network(pinned=True)
            done.append(
                pool.submit(
                    crash, tmp_path / f"m{i}", shipped, i, phase, delay, variables, survived, nothing_left
                )
            )
        assert any(d.result().seen != "ended" for d in done)
