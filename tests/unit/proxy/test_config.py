"""``chaoskit proxy serve --config FILE``: every problem of a bad file, named by file and entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoskit import errors
from chaoskit.proxy import servers

GOOD = {"name": "db", "listen": "127.0.0.1:5433", "upstream": "127.0.0.1:5432"}


def problems(tmp_path: Path, content: str | bytes) -> str:
    path = tmp_path / "proxies.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(errors.ChaoskitError) as caught:
        servers.read_config(path)
    assert caught.value.exit_code == errors.ExitCode.INVALID
    return caught.value.render()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[{"name": "a", "upstream": "h:1"}, 5]', "proxies.json: [1]: must be an object"),
        ('[{"name": "a", "upstream": "h:1", "listen": 5}]', "proxies.json: [0].listen: must be a string"),
        ('[{"name": "a"}]', "proxies.json: [0].upstream: missing"),
        ('[{"upstream": "h:1"}]', "proxies.json: [0].name: missing"),
        ('[{"name": 7, "upstream": "h:1"}]', "proxies.json: [0].name: must be a string"),
        ('[{"name": "a", "upstream": "h:1", "enabled": "yes"}]', "[0].enabled: must be true or false"),
        ('[{"name": "a", "upstream": "h:1", "listen": "nowhere"}]', "[0].listen: 'nowhere' is not host:port"),
        ('[{"name": "a", "upstream": "h:x"}]', "[0].upstream: 'h:x' is not host:port"),
        ('[{"name": "a\\nb", "upstream": "h:1"}]', "[0].name: the name 'a\\nb' can't be used"),
        ('[{"name": "a", "upstream": "h:1"}, {"name": "a", "upstream": "h:2"}]',
         "[1].name: 'a' is also the name of [0]"),
        ('{"name": "db"}', "must be a JSON array of proxies"),
        ("[1, 2", "not valid JSON"),
        (b'[{"name": "\xff\xfe", "upstream": "h:1"}]', "not UTF-8"),
        ("", "not valid JSON"),
    ],
)  # fmt: skip
def test_a_bad_config_names_the_file_and_the_entry(
    tmp_path: Path, content: str | bytes, expected: str
) -> None:
    shown = problems(tmp_path, content)
    assert expected in shown
    assert str(tmp_path / "proxies.json") in shown


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    shown = problems(tmp_path, '[{"name": "a", "upstream": 1}, {"listen": 5, "upstream": "x:1"}, []]')
    for expected in ("[0].upstream:", "[1].listen:", "[1].name:", "[2]:"):
        assert expected in shown, shown


def test_a_good_config_is_the_list_of_proxies(tmp_path: Path) -> None:
    path = tmp_path / "proxies.json"
    path.write_text('[{"name": "db", "listen": "127.0.0.1:5433", "upstream": "127.0.0.1:5432"}]')
    assert servers.read_config(path) == [GOOD]


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(errors.UsageError, match="can't read the proxy config"):
        servers.read_config(tmp_path / "nope.json")
