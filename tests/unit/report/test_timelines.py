"""The report's timeline: the ``measure`` lanes (p50/p99 in ms, errors in %), each lane with its
scale, fault windows, guard trips and recovery marked; and the checks table's "got" column."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from chaoskit.engine import journals, phases
from chaoskit.report import checks, timelines
from chaoskit.report import html as html_report
from tests.unit.report import samples


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(svg: str) -> Tags:
    parser = Tags()
    parser.feed(svg)
    return parser


def _classes(parser: Tags) -> list[str]:
    return [a.get("class") or "" for _, a in parser.tags]


def test_the_measure_gets_a_latency_lane_in_ms_and_an_error_lane_in_percent() -> None:
    svg = timelines.render(samples.measured())
    parser = _parse(svg)
    lanes = [a for t, a in parser.tags if t == "g" and a.get("class") == "measure-lane"]
    assert [a.get("data-unit") for a in lanes] == ["ms", "%"]
    text = "".join(parser.text)
    assert "latency (ms)" in text and "errors (%)" in text and "shop load" in text
    # Scales: latency 0 to 500 ms (the nice ceiling of 320 ms), errors 0 to 5 %.
    assert "0 ms" in text and "250 ms" in text and "500 ms" in text
    assert "0 %" in text and "2.5 %" in text and "5 %" in text
    # p50 and p99 each a line, broken where the sample failed (a gap, not a drop to 0).
    classes = _classes(parser)
    assert classes.count("measure-series p50") == 2 and classes.count("measure-series p99") == 2
    assert classes.count("measure-series error") == 2
    assert classes.count("sample-error") == 2  # marked in both of its lanes
    # The legend names both series.
    assert "━ p50" in text and "━ p99" in text
    # The time axis is labelled, in seconds.
    assert "seconds since the run started" in text and "16.0 s" in text


def test_the_faulted_samples_plot_higher_than_the_healthy_ones() -> None:
    svg = timelines.render(samples.measured())
    p99 = re.findall(r'class="measure-series p99" points="([^"]+)"', svg)[0]
    ys = [float(pair.split(",")[1]) for pair in p99.split()]
    # Sample 0 is healthy (12 ms), samples 1-5 are faulted (320 ms): higher up means a smaller y.
    assert ys[1] < ys[0] - 50


def test_every_lane_has_a_scale_and_fault_windows_span_all_of_them() -> None:
    journal = samples.measured()
    svg = timelines.render(journal)
    parser = _parse(svg)
    classes = _classes(parser)
    probe_lanes = {c.step for c in journal.checks}
    assert classes.count("measure-lane") + classes.count("probe-lane") == 2 + len(probe_lanes)
    assert classes.count("scale") == 2 + len(probe_lanes)
    # A lane whose probe gave nothing numeric says what its dots mean.
    assert "ok / failed" in "".join(parser.text) or all(
        timelines.number(c) is not None for c in journal.checks
    )
    (window,) = [a for _, a in parser.tags if a.get("class") == "fault-window"]
    svg_height = float(re.findall(r'<svg[^>]* height="(\d+)"', svg)[0])
    assert float(window["height"] or 0) == svg_height - timelines.TOP - timelines.BOTTOM
    assert "guard-trip" in classes and "guard-trip-label" in classes and "recovery-mark" in classes


def test_a_run_without_measure_has_no_measure_lane() -> None:
    svg = timelines.render(samples.journal())
    assert "measure-lane" not in svg and 'class="probe-lane"' in svg


def test_the_html_report_says_how_the_measure_was_sampled() -> None:
    page = html_report.render(samples.measured())
    assert "measured shop load (http.load) every 1s" in page
    assert "17 samples, 2 ticks skipped" in page


def test_the_got_column_shows_the_value_judged_not_the_whole_output() -> None:
    output = {
        "requests": 200,
        "successes": 200,
        "success_ratio": 1.0,
        "latency_ms": {"p50": 4.1, "p99": 18.25},
        "histogram": {"unit": "ms", "le": list(range(100)), "counts": list(range(100))},
    }
    record = journals.CheckRecord(
        phase=phases.Phase.BEFORE,
        step="p99 within budget",
        activity="http.load",
        value=output,
        expected=["success_ratio between 0.99 and 1.0", "latency_ms.p99 below 200"],
        ok=True,
        elapsed=0.4,
        at=samples.at(1),
    )
    assert checks.judged(record) == "success_ratio 1.0; latency_ms.p99 18.25"
    journal = samples.journal().model_copy(update={"checks": [record]})
    page = html_report.render(journal)
    assert "<td>success_ratio 1.0; latency_ms.p99 18.25</td>" in page
    assert "histogram" not in page
    # A load recorded without an expect shows its few numbers, not its output.
    unjudged = record.model_copy(update={"expected": [], "phase": phases.Phase.METHOD})
    assert checks.judged(unjudged) == "(not judged) 200 requests, p50 4.1 ms, p99 18.2 ms, errors 0 %"
