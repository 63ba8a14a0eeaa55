"""Every validating regular expression in chaoskit refuses (or normalises) a value with a trailing
newline. ``re.match`` with ``^...$`` accepts ``"valid\\n"`` (``$`` matches before a final newline):
Hypothesis found ``marks.label_value("0\\n")`` returning an invalid Kubernetes label. Python patterns
now use ``fullmatch``; pydantic's ``pattern=`` runs on Rust's regex, whose ``$`` is the very end."""

from __future__ import annotations

import re
from collections.abc import Callable

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaoskit.drivers.kubernetes import selectors
from chaoskit.gameday import plans
from chaoskit.kube import marks
from chaoskit.spec import catalogs, models, paths, reading, templates

LABEL_VALUE = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_-]{0,12}"
ENDINGS = st.sampled_from(["\n", "\r\n", " \n", "\n\n"])


@given(st.from_regex(LABEL_VALUE, fullmatch=True), ENDINGS)
def test_a_label_value_with_a_trailing_newline_becomes_a_valid_label(value: str, ending: str) -> None:
    assert marks.label_value(value) == value
    made = marks.label_value(value + ending)
    assert re.fullmatch(LABEL_VALUE, made), made
    assert made != value  # hashed: two run ids can't share one label value


@given(st.from_regex(IDENTIFIER, fullmatch=True), ENDINGS)
def test_a_path_key_with_a_trailing_newline_is_shown_quoted(key: str, ending: str) -> None:
    assert paths.render(["method", key]) == f"method.{key}"
    assert paths.render(["method", key + ending]) == f"method[{key + ending!r}]"


@given(st.from_regex(IDENTIFIER, fullmatch=True))
def test_a_step_id_with_a_trailing_newline_is_refused(step_id: str) -> None:
    text = "title: t\nmethod:\n  - {pause: 1s}\n  - id: ID\n    probe: process.running\n"
    reading.load_text(text.replace("ID", repr(step_id)), name="e.yaml")
    with pytest.raises(
        reading.InvalidExperiment, match=r"e\.yaml:4:\d+: method\[1\]\.id: not a valid step id"
    ):
        reading.load_text(text.replace("ID", f'"{step_id}\\n"'), name="e.yaml")


@pytest.mark.parametrize(
    ("make", "valid"),
    [
        (lambda v: models.Expect(call=v), "os:getpid"),
        (lambda v: models.ProbeStep(probe="x", id=v), "a-step"),
        (lambda v: catalogs.Parameter(name=v), "url_1"),
        (
            lambda v: catalogs.Definition(name=v, description="d", probe=catalogs.Template(probe="x")),
            "http-ok",
        ),
        (lambda v: plans.Webhook(url=v), "https://hooks.example.com/x"),
    ],
    ids=["expect.call", "step.id", "catalog.parameter", "catalog.name", "webhook.url"],
)
@pytest.mark.parametrize("ending", ["\n", "\r\n", " "])
def test_model_patterns_refuse_a_trailing_newline(
    make: Callable[[str], object], valid: str, ending: str
) -> None:
    make(valid)
    with pytest.raises(pydantic.ValidationError):
        make(valid + ending)


@given(st.from_regex(IDENTIFIER, fullmatch=True), ENDINGS)
def test_template_expressions_with_a_trailing_newline_mean_the_same(name: str, ending: str) -> None:
    env_name = name.replace("-", "_")
    assert templates.substitute(f"${{env:{env_name}{ending}}}", {}, env={env_name: "x"})[0] == "x"
    assert templates.substitute(f"${{{name}{ending}}}", {name: 7}, env={})[0] == 7
    assert templates.secret_names(f"${{secrets.{name}{ending}}}") == {name}
    assert templates.step_refs(f"${{steps.{name}.output.x{ending}}}") == [((), name)]
    assert templates.parse_var(f"{name}{ending}=1") == (name, 1)


@given(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), st.from_regex(LABEL_VALUE, fullmatch=True))
def test_a_label_selector_with_a_trailing_newline_selects_the_same(key: str, value: str) -> None:
    selector = f"{key}={value}"
    assert selectors.label_selector_object(selector + "\n") == selectors.label_selector_object(selector)
