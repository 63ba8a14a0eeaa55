"""Field descriptions come from attribute docstrings when a schema is described, not at import."""

from __future__ import annotations

from pydantic import BaseModel, Field

from chaoskit import describing


class Inner(BaseModel):
    size: int = 1
    """How big,
    in bytes."""


class Outer(BaseModel):
    inner: list[Inner] = Field(default_factory=list)
    """The parts."""
    named: int = Field(default=0, description="given explicitly")
    """Not this one."""
    plain: str = ""


class Redeclared(Outer):
    plain: str = "x"
    """Now documented."""


def test_nested_models_get_their_attribute_docstrings_in_the_json_schema() -> None:
    describing.describe(Outer)
    schema = Outer.model_json_schema()
    assert schema["properties"]["inner"]["description"] == "The parts."
    assert schema["properties"]["named"]["description"] == "given explicitly"
    assert "description" not in schema["properties"]["plain"]
    assert schema["$defs"]["Inner"]["properties"]["size"]["description"] == "How big,\nin bytes."


def test_a_redeclared_field_takes_the_docstring_of_the_class_that_redeclares_it() -> None:
    describing.describe(Redeclared)
    properties = Redeclared.model_json_schema()["properties"]
    assert properties["plain"]["description"] == "Now documented."
    assert properties["inner"]["description"] == "The parts."
    assert Redeclared.model_validate({"inner": [{"size": 3}]}).inner[0].size == 3  # still validates
