"""JSON Schemas whose field descriptions come from attribute docstrings, read only when one is shown.

Pydantic's ``use_attribute_docstrings`` reads and tokenizes the source of every model when its
class is made: on Python 3.11 that costs every ``chaoskit validate`` and ``run`` about 50 ms
(``python -m bench startup``, "docstrings at import") for text that only ``chaoskit schema``,
``chaoskit drivers`` and the journal schema show. ``json_schema`` gives those the same
descriptions while it writes the schema; the models themselves are never changed.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import core_schema


def json_schema(
    model: type[BaseModel], *, by_alias: bool = True, mode: JsonSchemaMode = "validation"
) -> dict[str, Any]:
    """``model.model_json_schema(...)``, where each field without a description gets the
    docstring under its attribute, as ``use_attribute_docstrings=True`` would give it."""
    return model.model_json_schema(by_alias=by_alias, mode=mode, schema_generator=_Described)


class _Described(GenerateJsonSchema):
    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        generated = super().model_schema(schema)
        properties = generated.get("properties", {})
        for name, info in schema["cls"].model_fields.items():
            if info.description is not None:
                continue
            doc = _docstring(schema["cls"], name)
            if doc is None:
                continue
            for key in dict.fromkeys([name, info.alias, info.validation_alias, info.serialization_alias]):
                if isinstance(key, str) and key in properties and "description" not in properties[key]:
                    properties[key]["description"] = doc
        return generated


def _docstring(cls: type[BaseModel], name: str) -> str | None:
    # The class that (re)declares the field is the one whose docstring counts, as in pydantic.
    for klass in cls.__mro__:
        if name in inspect.get_annotations(klass):
            return attribute_docstrings(klass).get(name)
    return None


_described: dict[type, dict[str, str]] = {}
"""The classes whose source was read, and what it said. Two threads may both read a class the
first time: the answers are the same, so the last one kept is as good as the first."""


def attribute_docstrings(cls: type) -> dict[str, str]:
    """The docstring under each annotated attribute of ``cls``'s own body, read from its source."""
    if cls not in _described:
        _described[cls] = _read(cls)
    return _described[cls]


def _read(cls: type) -> dict[str, str]:
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
