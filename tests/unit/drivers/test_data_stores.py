"""The data driver's store URLs: Sentinel URLs name their sentinels and master, a scheme chaoskit
can't write to is refused saying which ones it can, and no message shows a password."""

from __future__ import annotations

import urllib.parse

import pytest

from chaoskit import errors
from chaoskit.drivers.data import stores, writing


def test_a_sentinel_url_names_its_sentinels_master_and_database() -> None:
    parts = urllib.parse.urlsplit("redis+sentinel://:pw@127.0.0.1:26379,[::1]:26380/mymaster/2")
    assert stores._sentinel_parts(parts) == ([("127.0.0.1", 26379), ("::1", 26380)], "mymaster", 2)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://127.0.0.1/mymaster", "is not HOST:PORT"),
        ("redis+sentinel://127.0.0.1:26379", "does not name a master"),
        ("redis+sentinel://127.0.0.1:26379/mymaster/zero", "does not name a master"),
    ],
)
def test_a_sentinel_url_without_what_it_needs_says_what_is_missing(url: str, says: str) -> None:
    with pytest.raises(errors.DriverError, match=says) as caught:
        stores._sentinel_parts(urllib.parse.urlsplit(url))
    assert caught.value.hint is not None and "redis+sentinel://127.0.0.1:26379" in caught.value.hint


def test_an_unknown_scheme_is_refused_without_showing_the_password() -> None:
    with pytest.raises(errors.DriverError) as caught:
        stores.open_store("mysql://app:s3cret@db:3306/shop", "rpo", 1.0)
    assert "s3cret" not in caught.value.render()
    assert "mysql://app:***@db:3306/shop" in caught.value.message
    assert caught.value.hint is not None and "postgresql://" in caught.value.hint


@pytest.mark.parametrize("key", ["orders; DROP TABLE x", "", "9starts_with_a_digit", "a" * 64])
def test_a_key_that_is_not_a_plain_name_is_refused_at_validation(key: str) -> None:
    with pytest.raises(ValueError, match="key"):
        writing.StoreArgs(url="redis://127.0.0.1:6379/0", key=key)
