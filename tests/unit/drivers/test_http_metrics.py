"""``http.metrics`` against a real Prometheus text endpoint on 127.0.0.1: selectors, increases over
a window, ratios, and the errors a user can cause."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pydantic
import pytest

from chaoskit import errors
from chaoskit.drivers import contract
from chaoskit.drivers.http import driver as http_driver
from chaoskit.drivers.http import scraping

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
    scrapes = 0
    lock = threading.Lock()

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
            # Each scrape sees 10 more requests: a counter moving between two reads.
            body = TEXT.replace("{requests}", str(10 * Handler.scrapes)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def url() -> Iterator[str]:
    Handler.scrapes = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


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
