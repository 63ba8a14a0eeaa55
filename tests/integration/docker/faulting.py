"""Drive faults through the driver contract the way the engine does: resolve targets, prepare (the
revert data a ledger would hold), inject; revert from that data alone."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chaoskit.drivers import contract
from chaoskit.drivers.docker import driver

DRIVER = driver()
FAULTS = {f.name: f for f in DRIVER.faults}
PROBES = {p.name: p for p in DRIVER.probes}


def apply(name: str, args: Mapping[str, Any], ctx: contract.RunContext) -> list[contract.RevertData]:
    fault = FAULTS[name]
    parsed = fault.args.model_validate(dict(args))
    records: list[contract.RevertData] = []
    for target in fault.targets(parsed, ctx):
        record = fault.prepare(parsed, target, ctx)
        # What the ledger stores is JSON: prove the record survives it.
        record = json.loads(json.dumps(record))
        records.append(fault.inject(parsed, target, record, ctx))
    return records


def revert(name: str, records: list[contract.RevertData], ctx: contract.RunContext) -> list[str]:
    return [FAULTS[name].revert(record, ctx).value for record in records]


def probe(name: str, args: Mapping[str, Any], ctx: contract.RunContext) -> Any:
    p = PROBES[name]
    return p.run(p.args.model_validate(dict(args)), ctx)
