"""One driver probe called as a library function: arguments validated, checks applied, a ``Result``."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from pydantic import JsonValue, ValidationError

from chaoskit.drivers import contract
from chaoskit.errors import UsageError
from chaoskit.spec import expectations, models, paths

ExpectLike: TypeAlias = models.Expect | Mapping[str, Any] | Sequence[models.Expect | Mapping[str, Any]]
"""An ``expect:`` as in an experiment: a mapping (``{"path": "status", "equals": 200}``), a model,
or a list of them."""


@dataclass(frozen=True)
class Result:
    """What one probe call found, and whether the checks held."""

    probe: str
    """The probe that ran, e.g. ``prometheus.query``."""
    value: JsonValue
    """The headline value: a status, a ratio, a PromQL result, a count (see each function)."""
    output: JsonValue
    """Everything the probe returned (the same JSON an experiment's journal records)."""
    checks: tuple[expectations.Check, ...]
    """One per check given, in order."""
    elapsed: float
    """Seconds the probe took."""

    @property
    def ok(self) -> bool:
        """Every check held (True when none was given)."""
        return all(c.ok for c in self.checks)

    @property
    def check(self) -> expectations.Check | None:
        """The deciding check: the first that failed, else the first; None without checks."""
        return next((c for c in self.checks if not c.ok), self.checks[0] if self.checks else None)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        detail = f": {self.check.message}" if self.check else f": {self.value!r}"
        return f"{self.probe} {verdict}{detail}"


def _expects(
    headline: str, expect: ExpectLike | None, shortcuts: Mapping[str, Any], default: Mapping[str, Any] | None
) -> list[models.Expect]:
    given: list[models.Expect | Mapping[str, Any]] = []
    if expect is not None:
        given.extend([expect] if isinstance(expect, models.Expect | Mapping) else list(expect))
    checks = {("in" if k == "in_" else k): v for k, v in shortcuts.items() if v is not None}
    if checks:
        given.append(checks)
    if not given and default:
        given.append(default)
    out: list[models.Expect] = []
    for item in given:
        data = (
            item.model_dump(by_alias=True, exclude_unset=True)
            if isinstance(item, models.Expect)
            else dict(item)
        )
        data.setdefault("path", headline)
        out.append(models.Expect.model_validate(data))
    return out


def call(
    probe: contract.Probe[Any],
    arguments: Mapping[str, Any],
    *,
    headline: str,
    expect: ExpectLike | None,
    shortcuts: Mapping[str, Any],
    ctx: contract.RunContext | None = None,
    default: Mapping[str, Any] | None = None,
) -> Result:
    """Run ``probe`` with ``arguments`` (None values left out, so the driver's defaults apply), then
    check its output: ``headline`` is the path ``.value`` is read from and bare checks apply to."""
    checks = _expects(headline, expect, shortcuts, default)
    try:
        args = probe.args.model_validate({k: v for k, v in arguments.items() if v is not None})
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in e.errors()
        )
        raise UsageError(f"{probe.name}: {problems}") from None
    own = ctx is None
    context = ctx or contract.RunContext(run_id=f"library-{os.urandom(4).hex()}")
    started = time.perf_counter()
    try:
        output = probe.run(args, context)
    finally:
        if own:
            context.close()
    elapsed = time.perf_counter() - started
    value: JsonValue = None
    with contextlib.suppress(paths.PathError):
        value = paths.lookup(output, paths.parse(headline))
    return Result(
        probe=probe.name,
        value=value,
        output=output,
        checks=tuple(expectations.check_all(checks, output)),
        elapsed=elapsed,
    )
