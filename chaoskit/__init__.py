"""chaoskit: chaos-engineering experiments in YAML, faults that always revert, measured recovery.

The library face: ``chaoskit.probes`` (typed probe functions), ``chaoskit.faults`` (fault context
managers), ``chaoskit.testing`` (a fake driver and a fake clock). They load on first use, so that
``import chaoskit`` (and ``chaoskit --help``) stays fast.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from chaoskit.errors import ChaoskitError, ExitCode

__version__ = "0.1.0"

__all__ = ["ChaoskitError", "ExitCode", "__version__", "faults", "probes", "testing"]

_LAZY = {"faults", "probes", "testing"}


def __getattr__(name: str) -> ModuleType:
    # No import of these modules here, not even under TYPE_CHECKING: the probes pull in every
    # driver, and the layer contract (.importlinter) must see the package root import nothing heavy.
    if name in _LAZY:
        return importlib.import_module(f"chaoskit.{name}")
    raise AttributeError(f"module 'chaoskit' has no attribute {name!r}")
