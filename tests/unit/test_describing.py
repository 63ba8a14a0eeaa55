"""Field descriptions come from attribute docstrings when a schema is written, not at import."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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
    schema = describing.json_schema(Outer)
    assert schema["properties"]["inner"]["description"] == "The parts."
    assert schema["properties"]["named"]["description"] == "given explicitly"
    assert "description" not in schema["properties"]["plain"]
    assert schema["$defs"]["Inner"]["properties"]["size"]["description"] == "How big,\nin bytes."


def test_a_redeclared_field_takes_the_docstring_of_the_class_that_redeclares_it() -> None:
    properties = describing.json_schema(Redeclared)["properties"]
    assert properties["plain"]["description"] == "Now documented."
    assert properties["inner"]["description"] == "The parts."
    assert Redeclared.model_validate({"inner": [{"size": 3}]}).inner[0].size == 3  # still validates


def test_the_models_themselves_are_left_alone() -> None:
    # Nothing to lock or rebuild: the descriptions go into the schema being written, not the model.
    describing.json_schema(Outer)
    assert Outer.model_fields["inner"].description is None
    assert "description" not in Outer.model_json_schema()["properties"]["inner"]


class Aliased(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    in_: list[int] = Field(default_factory=list, alias="in")
    """Any of these."""


def test_an_aliased_field_is_described_under_the_name_users_write() -> None:
    assert describing.json_schema(Aliased)["properties"]["in"]["description"] == "Any of these."
    assert (
        describing.json_schema(Aliased, by_alias=False)["properties"]["in_"]["description"] == "Any of these."
    )
