"""``http.metrics`` against real Prometheus text endpoints on 127.0.0.1: selectors (regular
expressions too), increases over a window, ratios, series from two endpoints, and the errors a user
can cause."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pydantic
import pytest

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.drivers.http import driver as http_driver
from chaoskit.drivers.http import scraping
from tests import servers

METRICS = next(p for p in http_driver().probes if p.name == "http.metrics")
TEXT = """\
# HELP calls_total Calls by dependency.
# TYPE calls_total counter
calls_total{dependency="db",code="200"} 30
calls_total{dependency="db",code="500"} 12
calls_total{dependency="cache"} 5
requests_total {requests}
state{name="a \\"quoted\\" one"} 2
ignored garbage line
"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client that reads twice may reuse its connection
    scrapes = 0
    lock = threading.Lock()
    peers: list[tuple[str, int]] = []
    """The client address of each scrape."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path != "/metrics":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with Handler.lock:
            Handler.scrapes += 1
            Handler.peers.append(self.client_address)
            # Each scrape sees 10 more requests: a counter moving between two reads.
            body = TEXT.replace("{requests}", str(10 * Handler.scrapes)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ProxyHandler(Handler):
    """A second component in front of the first: 25 more requests seen per scrape, by toxic."""

    def do_GET(self) -> None:
        with Handler.lock:
            ProxyHandler.proxy_scrapes += 1
            seen = 25 * ProxyHandler.proxy_scrapes
        body = (
            f'seen_total{{proxy="backend",toxic="chaoskit-1-ab-http_abort"}} {seen}\n'
            f'seen_total{{proxy="backend",toxic="chaoskit-1-cd-http_delay"}} {2 * seen}\n'
            f'seen_total{{proxy="reviews",toxic="chaoskit-1-ef-http_abort"}} 1000\n'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    proxy_scrapes = 0


@pytest.fixture
def url() -> Iterator[str]:
    Handler.scrapes = 0
    Handler.peers = []
    with servers.serving(Handler) as base:
        yield base


@pytest.fixture
def proxy_url() -> Iterator[str]:
    ProxyHandler.proxy_scrapes = 0
    with servers.serving(ProxyHandler) as base:
        yield base


def probe(**arguments: object) -> dict[str, contract.JsonValue]:
    args = scraping.MetricsArgs.model_validate(arguments)
    output = METRICS.run(args, contract.RunContext(run_id="test"))
    assert isinstance(output, dict)
    return output


def test_series_are_summed_over_the_samples_their_matchers_select(url: str) -> None:
    output = probe(
        url=f"{url}/metrics",
        series={
            "db": 'calls_total{dependency="db"}',
            "db_failed": 'calls_total{dependency="db", code!="200"}',
            "all": "calls_total",
            "quoted": 'state{name="a \\"quoted\\" one"}',
            "absent": 'calls_total{dependency="queue"}',
        },
    )
    assert output["values"] == {"db": 42, "db_failed": 12, "all": 47, "quoted": 2, "absent": 0}
    assert output["matched"] == {"db": 2, "db_failed": 1, "all": 3, "quoted": 1, "absent": 0}


def test_regular_expression_matchers_match_the_whole_label_value(url: str) -> None:
    output = probe(
        url=f"{url}/metrics",
        series={
            "db_or_cache": 'calls_total{dependency=~"db|cache"}',
            "not_2xx": 'calls_total{code!~"2.."}',
            "partial": 'calls_total{dependency=~"d"}',
        },
    )
    # A missing label is "", which "2.." does not match: the cache sample counts as not 2xx.
    assert output["values"] == {"db_or_cache": 47, "not_2xx": 17, "partial": 0}


def test_series_from_two_endpoints_make_one_ratio_over_the_same_window(url: str, proxy_url: str) -> None:
    output = probe(
        url=f"{url}/metrics",
        endpoints={"proxy": f"{proxy_url}/metrics"},
        series={
            "requests": "requests_total",
            "seen": {"endpoint": "proxy", "selector": 'seen_total{proxy="backend",toxic=~".*-http_abort"}'},
        },
        over=0.05,
        ratios={"seen_per_request": ["seen", "requests"]},
    )
    # Each endpoint was read twice: 10 more requests at the service, 25 more seen at the proxy.
    assert output["values"] == {"requests": 10, "seen": 25}
    assert output["ratios"] == {"seen_per_request": 2.5}
    assert output["matched"] == {"requests": 1, "seen": 1}
    assert (Handler.scrapes, ProxyHandler.proxy_scrapes) == (2, 2)
    # Both reads of an endpoint went over one connection: the probe's HTTP client was made once,
    # before the first read, not between the reads of two endpoints (where making one, tens of
    # milliseconds, would shift one endpoint's window against the other's).
    assert Handler.peers[0] == Handler.peers[1]


def test_endpoints_alone_need_no_url(proxy_url: str) -> None:
    output = probe(
        endpoints={"proxy": f"{proxy_url}/metrics", "unused": "http://127.0.0.1:1/metrics"},
        series={"reviews": {"endpoint": "proxy", "selector": 'seen_total{proxy="reviews"}'}},
    )
    # An endpoint no series reads is not read (port 1 would refuse).
    assert output["values"] == {"reviews": 1000}


def test_over_reports_increases_and_ratios_of_them(url: str) -> None:
    output = probe(
        url=f"{url}/metrics",
        series={"requests": "requests_total", "calls": "calls_total"},
        over=0.05,
        ratios={"calls_per_request": ["calls", "requests"], "requests_per_call": ["requests", "calls"]},
    )
    # requests_total went from 10 to 20; calls_total did not move.
    assert output["values"] == {"requests": 10, "calls": 0}
    assert output["ratios"] == {"calls_per_request": 0, "requests_per_call": None}
    assert isinstance(output["seconds"], float) and output["seconds"] >= 0.05


def test_a_ratio_of_totals_without_a_window(url: str) -> None:
    output = probe(
        url=f"{url}/metrics",
        series={"failed": 'calls_total{code="500"}', "db": 'calls_total{dependency="db"}'},
        ratios={"failure_ratio": ["failed", "db"]},
    )
    ratios = output["ratios"]
    assert isinstance(ratios, dict) and list(ratios) == ["failure_ratio"]
    assert ratios["failure_ratio"] == pytest.approx(12 / 42)
    assert "seconds" not in output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"series": {"x": "calls_total{dependency=db}"}}, "can't read the labels"),
        ({"series": {"x": "not a metric"}}, "is not a series selector"),
        ({"series": {}}, "at least 1"),
        ({"series": {"x": "a"}, "ratios": {"r": ["x", "y"]}}, "ratios.r: y not in series (has: x)"),
        ({"series": {"x": 'a{b=~"("}'}}, "is not a regular expression"),
        (
            {"series": {"x": {"endpoint": "proxi", "selector": "a"}}, "endpoints": {"proxy": "http://h/"}},
            "series.x: endpoint 'proxi' not in endpoints (has: proxy)",
        ),
        ({"series": {"x": {"endpoint": "proxy", "selector": "not a metric"}}}, "is not a series selector"),
        (
            {"url": None, "series": {"x": "a"}},
            "series.x: a plain selector is read from url, and there is no url",
        ),
    ],
)
def test_malformed_arguments_are_refused_at_validation(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        scraping.MetricsArgs.model_validate({"url": "http://127.0.0.1:1/metrics", **arguments})


def test_an_endpoint_that_does_not_answer_200_is_a_driver_error(url: str) -> None:
    with pytest.raises(errors.DriverError, match="answered 404, not 200"):
        probe(url=f"{url}/nothing", series={"x": "calls_total"})


def test_an_endpoint_that_is_not_there_is_a_driver_error(url: str) -> None:
    with pytest.raises(errors.DriverError, match=r"can't read http://127\.0\.0\.1:1/metrics"):
        probe(url="http://127.0.0.1:1/metrics", series={"x": "calls_total"}, timeout=1)


def test_a_cancelled_run_ends_the_window_early(url: str) -> None:
    ctx = contract.RunContext(run_id="test")
    ctx.cancel.set()
    args = scraping.MetricsArgs.model_validate(
        {"url": f"{url}/metrics", "series": {"x": "calls_total"}, "over": 60}
    )
    with pytest.raises(errors.DriverError, match="cancelled"):
        METRICS.run(args, ctx)
