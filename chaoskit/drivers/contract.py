"""The driver contract: what a platform driver registers, and how the engine calls it.

A driver is a ``Driver`` value returned by a zero-argument function that the entry-point
group ``chaoskit.drivers`` names (built-ins register the same way a third party does). It
offers three kinds of activity, each a small class with a typed ``Args`` model named at the
plug point, where strict mypy ties it to the class's type parameter::

    class Kill(contract.Fault[KillArgs, KillRevert], args=KillArgs, revert=KillRevert): ...

* ``Probe``  - reads the system, returns a JSON value that ``expect`` checks.
* ``Fault``  - changes the system reversibly. The engine asks ``prepare`` for the data that
  undoes it (a typed, versioned ``Revert`` model), writes that to the ledger *before* calling
  ``inject``, and later calls ``revert`` with it - in this process or, after a crash, in
  ``chaoskit recover``, which validates it against the same model when reading it back.
  ``revert`` must be idempotent and must work from the recorded data alone.
* ``Action`` - a one-shot change (run a command, create a proxy). It may hand back ``undo``
  data, which the engine ledgers and undoes after teardown (e.g. a background process). An
  action that leaves something behind *while* it runs (a spawned process) says so in
  ``prepare``: that data is ledgered before ``run`` is called, so a crash mid-run is recoverable.

Driver code is synchronous; the engine runs it in worker threads and asks it to stop through
``RunContext.cancel``. Heavy client libraries are imported inside methods, never at module
import time, so that ``chaoskit --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import enum
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, JsonValue

__all__ = [
    "A",
    "Action",
    "ActionResult",
    "Args",
    "Driver",
    "Fault",
    "JsonValue",
    "Lever",
    "LeverFactory",
    "Probe",
    "R",
    "Reversibility",
    "Revert",
    "RevertData",
    "RevertOutcome",
    "RunContext",
    "Sweep",
    "Target",
    "dump_revert",
    "load_revert",
]

RevertData: TypeAlias = dict[str, JsonValue]
"""Everything needed to undo one fault on one target; JSON so that it survives in the ledger."""


class Args(BaseModel):
    """Base of every activity's ``with:`` arguments: frozen, unknown keys refused; the docstring
    under each field is its description (``chaoskit drivers`` prints it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Revert(BaseModel):
    """Base of every fault's revert data: frozen, unknown keys refused, versioned.

    It is written to the ledger (as JSON, with ``"v": version``) before the fault is injected and
    validated again when ``recover`` reads it back, so it deserves the strictest types in the
    codebase. A secret in it (a URL with a password) is stored in the ledger as a reference
    (``${secrets.<name>}``) and resolved again from the same source when recovering.
    Bump ``version`` when a field changes meaning; a ledger with another version is refused with a
    message, never half-read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: ClassVar[int] = 1


A = TypeVar("A", bound=Args)
R = TypeVar("R", bound=Revert)
T = TypeVar("T")


class Reversibility(enum.Enum):
    """What happens to a fault at the end."""

    REVERSIBLE = "reversible"
    """``revert`` undoes it (a stopped process is continued, a toxic removed)."""
    SELF_HEALING = "self-healing"
    """Nothing to undo: the system is expected to recover by itself (a killed pod is replaced)."""
    IRREVERSIBLE = "irreversible"
    """It can't be undone (a removed container): refused unless the step says ``irreversible: ok``."""


class RevertOutcome(enum.Enum):
    REVERTED = "reverted"
    """The fault was in place and has been taken back."""
    ALREADY_CLEAN = "already-clean"
    """Nothing was left to take back (the target is gone, or it was reverted before)."""


@dataclass(frozen=True)
class Target:
    """One thing a fault acts on: a process, a container, a pod, a node, a proxy."""

    kind: str
    id: str
    """Stable identifier the driver can find it again by (pid, container id, ``ns/name``)."""
    name: str
    """What a person calls it."""
    detail: Mapping[str, str] = field(default_factory=dict)
    """Extra facts shown in the dry run (namespace, node, labels)."""

    def to_json(self) -> dict[str, JsonValue]:
        return {"kind": self.kind, "id": self.id, "name": self.name, "detail": dict(self.detail)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Target:
        detail = data.get("detail") or {}
        return cls(
            kind=str(data["kind"]),
            id=str(data["id"]),
            name=str(data["name"]),
            detail={str(k): str(v) for k, v in dict(detail).items()},
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.name}" if self.name == self.id else f"{self.kind} {self.name} ({self.id})"


@dataclass
class RunContext:
    """What a driver may know about the run it works in. One per run; no global state."""

    run_id: str
    rng: random.Random = field(default_factory=random.Random)
    """Seeded by the engine per step; the seed is recorded in the journal."""
    cancel: threading.Event = field(default_factory=threading.Event)
    """Set when the run is stopping; long probes and waits must return soon after."""
    entry: str = ""
    """The ledger entry id of the fault or action being run (set per activity by the engine): a
    process started for it can carry it in its environment as a mark that survives any crash."""
    started_at: float = field(default_factory=time.time)
    """Wall-clock (epoch seconds) start of the run."""
    marks: dict[str, float] = field(default_factory=dict)
    """Wall-clock epochs of phases: ``method_start``, ``first_inject``, ``last_revert``, ``method_end``."""
    state_dir: Path = field(default_factory=lambda: Path.home() / ".local" / "state" / "chaoskit")
    dry_run: bool = False
    run_state: Callable[[str], str] = field(default=lambda run_id: "unknown")
    """What the engine knows of run ``run_id`` on this machine: ``live`` (its runner holds its
    ledger), ``dead`` (a ledger nobody holds) or ``unknown`` (no ledger here). A sweep acts only
    on leftovers of runs that are not live."""
    log: Callable[[str], None] = field(default=lambda message: None)
    """Driver messages for the console and journal; the engine redacts secrets from them."""
    settings: Mapping[str, str] = field(default_factory=dict)
    """Driver settings given for the whole run, keyed ``<driver>.<name>`` (``chaoskit run
    --context`` sets ``kubernetes.context``). Each driver documents its keys; a key that is absent
    falls back to the driver's own default (its environment variable, if it reads one)."""
    _resources: dict[str, object] = field(default_factory=dict, repr=False)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def resource(self, key: str, factory: Callable[[], T], close: Callable[[T], None] | None = None) -> T:
        """A per-run shared object (an API client), made once; ``close`` runs at the end of the run."""
        with self._lock:
            if key not in self._resources:
                value = factory()
                self._resources[key] = value
                if close is not None:
                    self._closers.append(lambda: close(value))
            return self._resources[key]  # type: ignore[return-value]

    def close(self) -> None:
        """Close every resource; the engine calls this once at the end of the run."""
        with self._lock:
            closers, self._closers = self._closers, []
            self._resources.clear()
        for closer in reversed(closers):
            with contextlib.suppress(Exception):
                closer()

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the run is cancelled; True if the full time passed."""
        return not self.cancel.wait(max(0.0, seconds))


def _type_arguments(cls: type, base: type) -> tuple[object, ...] | None:
    """What ``cls`` binds ``base``'s type parameters to, following generic intermediates
    (``class Kill(_ContainerFault[KillArgs])`` over ``_ContainerFault(Fault[S, ContainerRevert])``);
    None when ``cls`` does not parametrise ``base`` itself."""
    for orig in cls.__dict__.get("__orig_bases__", ()):
        origin = get_origin(orig) or orig
        if not isinstance(origin, type) or not issubclass(origin, base):
            continue
        bound = get_args(orig)
        if origin is base:
            return bound
        inner = _type_arguments(origin, base)
        if inner is None:
            continue
        params: tuple[object, ...] = getattr(origin, "__parameters__", ())
        mapping = dict(zip(params, bound, strict=False))
        return tuple(mapping.get(a, a) for a in inner)
    return None


def _plug(cls: type, base: type, index: int, attribute: str, given: type | None) -> None:
    """Set ``cls.<attribute>`` from the class keyword ``given`` and check it against the type
    parameter at ``index`` (mypy does not check class keywords; this makes the link hold)."""
    bound = _type_arguments(cls, base)
    parameter = bound[index] if bound is not None and len(bound) > index else None
    concrete = parameter if isinstance(parameter, type) else None
    if given is not None:
        if concrete is not None and not issubclass(given, concrete):
            raise TypeError(
                f"{cls.__module__}.{cls.__qualname__}: {attribute}={given.__name__} does not match "
                f"its type parameter {concrete.__name__}; give the same model in both places"
            )
        setattr(cls, attribute, given)
    elif concrete is not None and attribute in cls.__dict__:
        declared = cls.__dict__[attribute]
        if isinstance(declared, type) and not issubclass(declared, concrete):
            raise TypeError(
                f"{cls.__module__}.{cls.__qualname__}: {attribute} = {declared.__name__} does not "
                f"match its type parameter {concrete.__name__}"
            )


class Probe(ABC, Generic[A]):
    """Reads the system and returns a JSON value for ``expect`` to check."""

    name: ClassVar[str]
    summary: ClassVar[str]
    args: type[A]
    """The ``with:`` model; give it as the class keyword ``args=`` (the same as ``A``)."""

    def __init_subclass__(cls, *, args: type[Args] | None = None, **kwargs: Any) -> None:
        """``class Healthy(Probe[HealthArgs], args=HealthArgs)``: the arguments model, checked
        against the type parameter."""
        super().__init_subclass__(**kwargs)
        _plug(cls, Probe, 0, "args", args)

    @abstractmethod
    def run(self, args: A, ctx: RunContext) -> JsonValue: ...

    def validate(self, args: A, ctx: RunContext) -> None:
        """Optional checks at validation time that need the live system (Prometheus parsing a query).
        Raise a ``ChaoskitError`` with exit 2 to refuse the step; return quietly when the system can't
        be asked now (the run then fails clearly instead). The default checks nothing."""


@dataclass(frozen=True)
class ActionResult:
    output: JsonValue = None
    undo: RevertData | None = None
    """When set, the engine ledgers it and calls ``Action.undo`` after teardown (and recover does)."""


class Action(ABC, Generic[A]):
    """A one-shot change: run a command, start a process, create a proxy."""

    name: ClassVar[str]
    summary: ClassVar[str]
    args: type[A]
    """The ``with:`` model; give it as the class keyword ``args=`` (the same as ``A``)."""

    def __init_subclass__(cls, *, args: type[Args] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _plug(cls, Action, 0, "args", args)

    def prepare(self, args: A, ctx: RunContext) -> RevertData | None:
        """Undo data known *before* ``run`` (e.g. the mark a spawned process will carry), for an
        action that leaves something behind while it runs. The engine ledgers it before calling
        ``run``; if the run dies inside ``run``, ``recover`` calls ``undo`` with this data, which
        must then find what ``run`` left (by its mark). None (the default): nothing to write ahead."""
        return None

    @abstractmethod
    def run(self, args: A, ctx: RunContext) -> ActionResult: ...

    def undo(self, data: RevertData, ctx: RunContext) -> RevertOutcome:
        """Undo what ``run`` left behind; called with ``run``'s ``undo`` data, or with ``prepare``'s
        when ``run`` never returned. Idempotent."""
        return RevertOutcome.ALREADY_CLEAN

    def describe(self, data: RevertData) -> str | None:
        """What ``data`` stands for, in a few words for people ("python3 pid 4242"), or None."""
        return None

    def serves(self, data: RevertData, ctx: RunContext) -> Sequence[str]:
        """The ``host:port`` endpoints that what this action started listens on now (asked just
        before ``undo``). A fault whose ``endpoint`` is among them went with its host when the
        undo stopped it (``gone-with-host``), instead of failing to revert forever."""
        return ()


class Fault(ABC, Generic[A, R]):
    """A change to the system that the engine records, injects and takes back."""

    name: ClassVar[str]
    summary: ClassVar[str]
    args: type[A]
    """The ``with:`` model; give it as the class keyword ``args=`` (the same as ``A``)."""
    revert_type: type[R]
    """The model of this fault's revert data; give it as the class keyword ``revert=`` (``R``)."""
    reversibility: ClassVar[Reversibility] = Reversibility.REVERSIBLE
    captures_state: ClassVar[bool] = True
    """True when ``revert`` restores a state that ``prepare`` read (a proxy's ``enabled``, a
    deployment's replicas): overlapping faults on one lease then hand the *first* one's state to
    the last one out, so the original comes back whatever order they end in. False when each
    injection is its own object that its own revert removes (a named toxic)."""

    def __init_subclass__(
        cls, *, args: type[Args] | None = None, revert: type[Revert] | None = None, **kwargs: Any
    ) -> None:
        """``class Kill(Fault[KillArgs, KillRevert], args=KillArgs, revert=KillRevert)``: the
        models, checked against the type parameters."""
        super().__init_subclass__(**kwargs)
        _plug(cls, Fault, 0, "args", args)
        _plug(cls, Fault, 1, "revert_type", revert)

    def lease(self, args: A, target: Target) -> str | None:
        """The key of what this fault holds on ``target`` while applied. A second fault with the
        same key (in this or another live run) is refused unless its step says
        ``allow_overlap: true``. None: nothing is held. Default: this fault's name on the target."""
        return f"{self.name}@{target.kind}:{target.id}"

    def endpoint(self, revert: R) -> str | None:
        """``host:port`` of the server that holds this fault (a proxy's API), when it is one a run
        may have started itself; see ``Action.serves``. None: not applicable."""
        return None

    @abstractmethod
    def targets(self, args: A, ctx: RunContext) -> Sequence[Target]:
        """Resolve what this fault would hit; the dry run prints exactly this."""

    @abstractmethod
    def prepare(self, args: A, target: Target, ctx: RunContext) -> R:
        """Everything ``revert`` will need, computed *before* injecting (written to the ledger)."""

    @abstractmethod
    def inject(self, args: A, target: Target, revert: R, ctx: RunContext) -> R:
        """Apply the fault to one target; return the revert data (``revert`` itself, or enriched)."""

    def revert(self, revert: R, ctx: RunContext) -> RevertOutcome:
        """Take the fault back. Idempotent; works from the recorded data alone."""
        return RevertOutcome.ALREADY_CLEAN


def dump_revert(revert: Revert) -> dict[str, JsonValue]:
    """Revert data as the ledger stores it: the model's JSON with its version as ``"v"``."""
    data: dict[str, JsonValue] = revert.model_dump(mode="json")
    return {"v": type(revert).version, **data}


def load_revert(fault: Fault[Any, Any], data: Mapping[str, Any]) -> Revert:
    """Revert data read back from a ledger, validated against the fault's model and version.
    Raises ``ValueError`` (with what is wrong) when it does not fit: a newer or older chaoskit
    wrote it, or the file was damaged."""
    model: type[Revert] | None = getattr(fault, "revert_type", None)
    if model is None:
        raise ValueError(f"{fault.name} declares no revert_type, so its revert data can't be checked")
    body = dict(data)
    version = body.pop("v", None)
    if version != model.version:
        raise ValueError(
            f"revert data of {fault.name} has version {version!r}; this chaoskit reads version "
            f"{model.version}"
        )
    return model.model_validate(body)


Sweep: TypeAlias = Callable[[str | None, RunContext], Sequence[str]]
"""Find and revert leftovers of run ``run_id`` (or of any run when None) without the ledger,
from the marks faults leave on shared systems (labels, toxic names). Returns what it did."""


class Lever(ABC):
    """A shared halt lever a driver offers by URI scheme (``kubernetes://<namespace>/<name>``):
    a place every run that names it polls, so that ``chaoskit halt`` stops them all.

    Its fields are text: ``halted`` (``"true"``/``"false"``), ``reason``, ``by``, ``at``. Reads
    are polled (at most once a second per lever), so ``read`` must honour ``timeout`` and raise
    a ``ChaoskitError`` (never hang) when the lever can't be read: that is not a halt."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @abstractmethod
    def read(self, timeout: float) -> Mapping[str, str] | None:
        """The lever's fields now; None when it does not exist (not halted)."""

    @abstractmethod
    def write(self, fields: Mapping[str, str], timeout: float) -> None:
        """Set the lever's fields (creating it when it does not exist)."""

    def close(self) -> None:
        """Release what ``read``/``write`` opened (an API client)."""
        return None


LeverFactory: TypeAlias = Callable[[str], Lever]
"""Makes the lever a URI names; raises a ``ChaoskitError`` saying what is wrong with the URI."""


@dataclass(frozen=True)
class Driver:
    """What one platform offers. Returned by the function an entry point names."""

    name: str
    summary: str
    faults: Sequence[Fault[Any, Any]] = ()
    probes: Sequence[Probe[Any]] = ()
    actions: Sequence[Action[Any]] = ()
    sweep: Sweep | None = None
    missing: Callable[[], str | None] = field(default=lambda: None)
    """Why the driver can't be used here (e.g. its extra is not installed), or None."""
    levers: Mapping[str, LeverFactory] = field(default_factory=dict)
    """Halt levers this driver offers, by URI scheme (``kubernetes``), for ``$CHAOSKIT_HALT``
    and ``chaoskit halt --lever``."""
