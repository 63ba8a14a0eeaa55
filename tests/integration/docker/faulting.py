"""Drive faults through the driver contract the way the engine does: resolve targets, prepare (the
revert data a ledger would hold), inject; revert from that data alone, read back as ``recover``
reads it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chaoskit.drivers import contract
from chaoskit.drivers.docker import driver

DRIVER = driver()
FAULTS = {f.name: f for f in DRIVER.faults}
PROBES = {p.name: p for p in DRIVER.probes}


def _ledgered(fault: contract.Fault[Any, Any], revert: contract.Revert) -> contract.Revert:
    """``revert`` as it comes back from the ledger: dumped, through JSON text, validated again."""
    return contract.load_revert(fault, json.loads(json.dumps(contract.dump_revert(revert))))


def apply(name: str, args: Mapping[str, Any], ctx: contract.RunContext) -> list[contract.Revert]:
    fault = FAULTS[name]
    parsed = fault.args.model_validate(dict(args))
    records: list[contract.Revert] = []
    for target in fault.targets(parsed, ctx):
        # What the ledger stores is JSON: inject and revert get the record that survived it.
        record = _ledgered(fault, fault.prepare(parsed, target, ctx))
        records.append(_ledgered(fault, fault.inject(parsed, target, record, ctx)))
    return records


def revert(name: str, records: list[contract.Revert], ctx: contract.RunContext) -> list[str]:
    return [FAULTS[name].revert(record, ctx).value for record in records]


def probe(name: str, args: Mapping[str, Any], ctx: contract.RunContext) -> Any:
    p = PROBES[name]
    return p.run(p.args.model_validate(dict(args)), ctx)
