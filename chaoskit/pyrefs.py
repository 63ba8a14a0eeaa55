"""``module:function`` references: the one way a name a user wrote (``python.call``, an
expectation's ``call:``, a control's module) becomes Python. Every layer may import it."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

SHAPE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
"""``package.module:function`` or ``module:Class.method``."""


class Unresolvable(ValueError):
    """A reference names nothing that can be called; the message says which part is missing."""


def module(name: str) -> ModuleType:
    """The module ``name``, imported; ``Unresolvable`` when it can't be (even when importing it
    raised something other than ``ImportError``: a user's module is user code)."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise Unresolvable(f"can't import {name}: {e}") from e
    except Exception as e:
        raise Unresolvable(f"importing {name} raised {type(e).__name__}: {e}") from e


def resolve(ref: str) -> Callable[..., Any]:
    """The callable ``ref`` (``module:attribute[.attribute]``) names."""
    module_name, _, attribute = ref.partition(":")
    target: Any = module(module_name)
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as e:
            raise Unresolvable(f"{module_name} has no attribute {attribute!r}") from e
    if not callable(target):
        raise Unresolvable(f"{attribute} is of type {type(target).__name__}, not a function")
    return target  # type: ignore[no-any-return]
