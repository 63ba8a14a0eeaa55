"""Toxic validation (where chaoskit refuses what crashes or stalls the real server) and the slicer."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaoskit import units
from chaoskit.proxy import tcp_toxics, toxic_types


def test_defaults_follow_the_real_server() -> None:
    toxic = toxic_types.build({"type": "latency", "attributes": {"latency": 5, "unknown": 3}}, set())
    assert toxic.to_json() == {
        "attributes": {"latency": 5, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
    }


def test_stream_is_case_insensitive_but_kept_as_spelled() -> None:
    toxic = toxic_types.build({"type": "noop", "stream": "UpStream"}, set())
    assert (toxic.name, toxic.stream, toxic.direction) == ("noop_UpStream", "UpStream", "upstream")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "bandwidth", "attributes": {"rate": -1}}, "'rate' of a bandwidth toxic can't be negative"),
        (
            {"type": "bandwidth", "attributes": {"rate": 0}},
            "'rate' of a bandwidth toxic must be greater than 0",
        ),
        ({"type": "bandwidth"}, "'rate' of a bandwidth toxic must be greater than 0"),
        (
            {"type": "slicer", "attributes": {"average_size": 0}},
            "'average_size' of a slicer toxic must be greater",
        ),
        (
            {"type": "latency", "attributes": {"latency": -5}},
            "'latency' of a latency toxic can't be negative",
        ),
        ({"type": "timeout", "attributes": {"timeout": -1}}, "can't be negative"),
        ({"type": "latency", "toxicity": 1.5}, "toxicity must be between 0 and 1"),
        ({"type": "latency", "toxicity": -2}, "toxicity must be between 0 and 1"),
        ({"type": "latency", "attributes": {"latency": 1.5}}, "bad request body: attribute 'latency'"),
        ({"type": "latency", "attributes": {"latency": "abc"}}, "must be an integer"),
        ({"type": "latency", "attributes": {"latency": True}}, "must be an integer"),
    ],
)
def test_values_that_break_the_real_server_are_refused(body: dict[str, object], message: str) -> None:
    with pytest.raises(toxic_types.RequestError, match=message) as caught:
        toxic_types.build(body, set())
    assert caught.value.status == 400


def test_update_merges_attributes_and_keeps_toxicity() -> None:
    toxic = toxic_types.build({"type": "latency", "toxicity": 0.5, "attributes": {"latency": 5}}, set())
    toxicity, attributes = toxic_types.update(toxic, {"attributes": {"jitter": 7}, "type": "noop"})
    assert (toxicity, attributes) == (0.5, {"latency": 5, "jitter": 7})
    with pytest.raises(toxic_types.RequestError, match="can't be negative"):
        toxic_types.update(toxic, {"attributes": {"jitter": -1}})


def test_names_are_unique_across_streams() -> None:
    with pytest.raises(toxic_types.RequestError, match="toxic already exists") as caught:
        toxic_types.build({"type": "noop", "name": "x", "stream": "upstream"}, {"x"})
    assert caught.value.status == 409


@given(
    length=st.integers(1, 100_000),
    average=st.integers(1, 5000),
    variation=st.integers(0, 5000),
    seed=st.integers(0, 2**32),
)
def test_slices_cover_the_chunk_in_order_within_the_size_bound(
    length: int, average: int, variation: int, seed: int
) -> None:
    pieces = tcp_toxics.slices(length, average, variation, random.Random(seed))
    assert pieces[0][0] == 0 and pieces[-1][1] == length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert all(0 < end - start <= max(average + variation, 1) for start, end in pieces)


json_numbers = st.one_of(
    st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**400, -(10**400), 2**63, 2**63 - 1, units.DAY_MS, units.DAY_MS + 1]),
)
json_values = st.one_of(st.none(), st.booleans(), st.text(max_size=5), json_numbers, st.just([]), st.just({}))


@given(
    kind=st.sampled_from(sorted(toxic_types.registry())),
    toxicity=json_values,
    attributes=st.dictionaries(st.sampled_from(["latency", "jitter", "rate", "delay", "timeout",
                                                "average_size", "size_variation", "bytes"]), json_values),
)  # fmt: skip
def test_any_number_is_accepted_within_its_bounds_or_refused_with_400_naming_it(
    kind: str, toxicity: object, attributes: dict[str, object]
) -> None:
    body = {"type": kind, "toxicity": toxicity, "attributes": attributes}
    try:
        toxic = toxic_types.build(body, set())
    except toxic_types.RequestError as e:
        assert e.status == 400
        schema = toxic_types.registry()[kind].schema
        named = [k for k in ("toxicity", *(a.name for a in schema), *attributes) if k in e.message]
        assert named, e.message
        assert len(e.message) < 400  # a 400-digit number is described, not echoed
        return
    assert 0 <= toxic.toxicity <= 1
    maximum = {a.name: a.maximum for a in toxic.schema}
    for name, value in toxic.attributes.items():
        assert 0 <= value <= maximum[name]
        if "delay" not in name or kind != "slicer":
            assert value / 1000 < float("inf")  # every wait converts to a finite number of seconds
