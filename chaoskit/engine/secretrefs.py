"""Secrets in what chaoskit writes down as references, ``${secrets.<name>}``, never as values:
replaced on the way to the fault ledger and resolved again (from where each secret comes) by
``recover``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from chaoskit import errors
from chaoskit.spec import models

SECRET_REF = re.compile(r"\$\{secrets\.([A-Za-z_][A-Za-z0-9_-]*)\}")


def to_refs(value: Any, secrets: Mapping[str, str]) -> Any:
    """``value`` with every secret's value replaced by a reference to it, ``${secrets.<name>}``
    (longer values first, so one that contains another goes whole)."""
    pairs = sorted(((v, n) for n, v in secrets.items() if v), key=lambda p: len(p[0]), reverse=True)
    if not pairs:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            for secret, name in pairs:
                item = item.replace(secret, "${secrets." + name + "}")
            return item
        if isinstance(item, Mapping):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(value)


def from_refs(value: Any, resolve: Mapping[str, str]) -> Any:
    """The inverse of ``to_refs``: references replaced by the values in ``resolve``. A reference to
    a secret that is not there raises ``LedgerError`` naming it."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in resolve:
            raise errors.LedgerError(f"secret {name!r} is not available")
        return resolve[name]

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return SECRET_REF.sub(one, item)
        if isinstance(item, Mapping):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value)


def refs_in(value: Any) -> set[str]:
    """The names of the secrets ``value`` refers to."""
    return set(SECRET_REF.findall(json.dumps(value)))


def sources(experiment: models.Experiment) -> dict[str, dict[str, str]]:
    """Where each of the experiment's secrets comes from, as the ledger records it (never a
    value): ``{"env": NAME}`` or ``{"file": PATH}``; ``{}`` for one given inline."""
    found: dict[str, dict[str, str]] = {}
    for name, ref in experiment.secrets.items():
        if ref.env is not None:
            found[name] = {"env": ref.env}
        elif ref.file is not None:
            found[name] = {"file": ref.file}
        else:
            found[name] = {}
    return found
