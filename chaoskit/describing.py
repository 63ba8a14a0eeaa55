"""Field descriptions taken from attribute docstrings, read only when a schema is described.

Pydantic's ``use_attribute_docstrings`` reads and tokenizes the source of every model when the class
is made, which cost every ``validate`` and ``run`` tens of milliseconds for text only
``chaoskit schema``, ``chaoskit drivers`` and the journal schema show. ``describe`` gives a model
(and every model its fields refer to) the same descriptions when one of those asks.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import threading
import typing
from typing import Any

from pydantic import BaseModel

_described: set[type[BaseModel]] = set()
_lock = threading.Lock()


def describe(model: type[BaseModel]) -> None:
    """Fill each field description still missing from the docstring under the attribute, as
    ``use_attribute_docstrings=True`` would have, in ``model`` and the models it refers to."""
    with _lock:
        order = _reachable(model, set())
        changed = [cls for cls in order if cls not in _described and _fill(cls)]
        if changed:
            # A model's schema embeds those of the models it refers to: rebuild from the leaves up.
            for cls in order:
                cls.model_rebuild(force=True)
        _described.update(order)


def _fill(cls: type[BaseModel]) -> bool:
    changed = False
    for name, info in cls.model_fields.items():
        if info.description is None:
            doc = _docstring(cls, name)
            if doc is not None:
                info.description = doc
                changed = True
    return changed


def _docstring(cls: type[BaseModel], name: str) -> str | None:
    # The class that (re)declares the field is the one whose docstring counts, as in pydantic.
    for klass in cls.__mro__:
        if name in inspect.get_annotations(klass):
            return attribute_docstrings(klass).get(name)
    return None


def _reachable(model: type[BaseModel], seen: set[type[BaseModel]]) -> list[type[BaseModel]]:
    """``model`` and the models its fields refer to, those referred to first."""
    if model in seen:
        return []
    seen.add(model)
    order: list[type[BaseModel]] = []
    for info in model.model_fields.values():
        for cls in _models_in(info.annotation):
            order.extend(_reachable(cls, seen))
    order.append(model)
    return order


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [cls for arg in typing.get_args(annotation) for cls in _models_in(arg)]


def attribute_docstrings(cls: type) -> dict[str, str]:
    """The docstring under each annotated attribute of ``cls``'s own body, read from its source."""
    try:
        lines, _ = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return {}
    source = textwrap.dedent("".join(lines))
    try:
        tree = ast.parse(source)
    except SyntaxError:
        # A multi-line string less indented than the class: parse it inside a function.
        try:
            tree = ast.parse("def _():\n" + textwrap.indent(source, "    "))
        except SyntaxError:
            return {}
    statement = tree.body[0]
    if isinstance(statement, ast.FunctionDef):
        statement = statement.body[0]
    if not isinstance(statement, ast.ClassDef):
        return {}
    visitor = _Docstrings()
    visitor.visit(statement)
    return visitor.attrs


class _Docstrings(ast.NodeVisitor):
    """A string expression right after an annotated assignment documents its target (PEP 257's
    attribute docstrings, read the way pydantic reads them)."""

    def __init__(self) -> None:
        self.target: str | None = None
        self.attrs: dict[str, str] = {}
        self.previous: type[ast.AST] | None = None

    def visit(self, node: ast.AST) -> Any:
        result = super().visit(node)
        self.previous = type(node)
        return result

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.target = node.target.id

    def visit_Expr(self, node: ast.Expr) -> None:
        value = node.value
        if (
            isinstance(value, ast.Constant)
            and isinstance(value.value, str)
            and self.previous is ast.AnnAssign
        ):
            if self.target:
                self.attrs[self.target] = inspect.cleandoc(value.value)
            self.target = None
