"""The http_* toxics' attributes: what a request matches, and what is refused with which words."""

from __future__ import annotations

import pytest

from chaoskit.proxy.http import heads, rules


def head(first: str, *fields: str) -> heads.Head:
    raw = (first + "\r\n" + "".join(f + "\r\n" for f in fields) + "\r\n").encode()
    parsed = heads.parse_head(raw, request=True)
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(
    ("match", "request_line", "fields", "expected"),
    [
        ({}, "GET / HTTP/1.1", (), True),
        ({"method": "post"}, "POST /x HTTP/1.1", (), True),
        ({"method": ["PUT", "DELETE"]}, "POST /x HTTP/1.1", (), False),
        ({"path": "/checkout"}, "POST /checkout?x=1 HTTP/1.1", (), True),
        ({"path": "/checkout"}, "POST /checkout/2 HTTP/1.1", (), False),
        ({"path_prefix": "/api/"}, "GET /api/v1/items HTTP/1.1", (), True),
        ({"path_prefix": "/api/"}, "GET /apis HTTP/1.1", (), False),
        ({"path_regex": "/items/[0-9]+"}, "GET /items/42 HTTP/1.1", (), True),
        ({"path_regex": "/items/[0-9]+"}, "GET /items/42/edit HTTP/1.1", (), False),  # the whole path
        ({"path": "/a"}, "GET http://example.com/a?q HTTP/1.1", (), True),  # absolute form
        ({"headers": {"X-Canary": True}}, "GET / HTTP/1.1", ("x-canary: anything",), True),
        ({"headers": {"X-Canary": True}}, "GET / HTTP/1.1", (), False),
        ({"headers": {"X-Tenant": "a"}}, "GET / HTTP/1.1", ("X-Tenant: b", "X-Tenant: a"), True),
        ({"headers": {"X-Tenant": "a"}}, "GET / HTTP/1.1", ("X-Tenant: ab",), False),
        ({"query": {"debug": True}}, "GET /?debug HTTP/1.1", (), True),
        ({"query": {"debug": "1"}}, "GET /?a=2&debug=1 HTTP/1.1", (), True),
        ({"query": {"debug": "1"}}, "GET /?debug=0 HTTP/1.1", (), False),
        (
            {"method": "GET", "path": "/a", "query": {"q": True}},
            "GET /a HTTP/1.1",
            (),
            False,
        ),  # all must hold
    ],
)
def test_match(match: dict[str, object], request_line: str, fields: tuple[str, ...], expected: bool) -> None:
    assert rules.parse_match(match, "http_abort").matches(head(request_line, *fields)) is expected


@pytest.mark.parametrize(
    ("kind", "stream", "attributes", "message"),
    [
        (
            "http_abort",
            "downstream",
            {"status": 99},
            "'status' of an http_abort toxic must be an integer from 200",
        ),
        ("http_abort", "downstream", {"statu": 503}, "unknown attribute 'statu' of an http_abort toxic"),
        ("http_abort", "downstream", {"headers": {"Content-Length": "1"}}, "can't change 'content-length'"),
        (
            "http_abort",
            "downstream",
            {"reset": "yes"},
            "'reset' of an http_abort toxic must be true or false",
        ),
        ("http_abort", "downstream", {"match": {"path_regex": "("}}, "'match.path_regex' of an http_abort"),
        ("http_abort", "downstream", {"match": {"pth": "/"}}, "unknown key 'pth' in attribute 'match'"),
        ("http_abort", "downstream", {"match": {"headers": {"X": 1}}}, "string (equals) or true (present)"),
        ("http_delay", "upstream", {"latency": -1}, "'latency' of an http_delay toxic must be an integer"),
        ("http_modify", "upstream", {"body": "x"}, "use stream 'downstream'"),
        ("http_modify", "downstream", {"body": "x", "truncate": 1}, "'body' or 'truncate', not both"),
        (
            "http_modify",
            "downstream",
            {"remove_headers": ["Transfer-Encoding"]},
            "can't change 'transfer-encoding'",
        ),
        ("http_modify", "downstream", {"set_headers": {"X": "a\nb"}}, "without control characters"),
    ],
)
def test_attributes_that_cannot_work_are_refused_by_name(
    kind: str, stream: str, attributes: dict[str, object], message: str
) -> None:
    with pytest.raises(rules.Invalid, match=message.replace("(", r"\(").replace(")", r"\)")):
        rules.rule("t", kind, stream, 1.0, attributes)


def test_defaults() -> None:
    abort = rules.rule("t", "http_abort", "downstream", 1.0, {})
    assert abort.fault == rules.Abort(503, b"", (), False)
    assert abort.match.matches(head("DELETE /anything HTTP/1.0"))
    assert rules.rule("t", "http_delay", "UpStream", 1.0, {"latency": 5}).response is False
