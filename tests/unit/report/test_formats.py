"""JUnit (read back with junitparser, as CI plugins do), Markdown and the self-contained HTML report."""

from __future__ import annotations

import html.parser
import xml.etree.ElementTree as ET
from pathlib import Path

import junitparser

from chaoskit.report import html as html_report
from chaoskit.report import junit, markdown
from tests.unit.report import samples


def test_junit_has_one_testcase_per_check_and_failures_say_expected_and_got(tmp_path: Path) -> None:
    path = tmp_path / "out.xml"
    junit.write([samples.journal()], path)
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert suite.name == "Checkout survives a stopped worker"
    assert (suite.tests, suite.failures, suite.errors) == (5, 1, 0)
    cases = {case.name: case for case in suite}
    assert set(cases) == {
        "before: health ok",
        "method: under fault",
        "guard: not on fire",
        "after: health ok",
        "recovery: recovery time",
    }
    failed = cases["method: under fault"]
    assert not failed.is_passed
    (failure,) = failed.result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == "expected success_ratio above 0.99, got {'success_ratio': 0.93}"
    assert cases["recovery: recovery time"].is_passed
    assert cases["before: health ok"].classname == "chaoskit.before"
    props = {p.name: p.value for p in suite.properties()}
    assert props["verdict"] == "deviated" and props["run_id"] == "run-1"
    assert float(props["score"]) > 0


def test_junit_errors_for_probe_errors_and_for_a_run_that_failed_outside_probes() -> None:
    root = ET.fromstring(junit.render([samples.not_steady(), samples.errored()]))
    assert root.tag == "testsuites"
    assert root.get("tests") == "3" and root.get("errors") == "2"
    not_steady, errored = root.findall("testsuite")
    error = not_steady.find("testcase/error")
    assert error is not None and "connection refused" in (error.get("message") or "")
    run_error = errored.find("testcase[@name='run']/error")
    assert run_error is not None and run_error.get("message") == "no such process 4242"


def test_markdown_names_verdict_faults_and_checks() -> None:
    text = markdown.render(samples.journal())
    assert "**Verdict: deviated** (exit 1)" in text
    assert "| process.stop | process worker |" in text
    assert (
        "| method | under fault | ❌ failed | success_ratio above 0.99 | expected success_ratio above 0.99"
        in text
    )
    assert "Recovery: required within 30s, measured 4.000s (met)." in text


class Collector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained_with_a_timeline_chart() -> None:
    page = html_report.render(samples.journal())
    parser = Collector()
    parser.feed(page)
    names = [t for t, _ in parser.tags]
    assert "script" not in names and "link" not in names and "img" not in names
    assert all(
        not (a.get("src") or a.get("href") or "").startswith(("http:", "https:", "//"))
        for _, a in parser.tags
    )
    assert names.count("svg") == 1
    classes = [a.get("class") for _, a in parser.tags]
    assert classes.count("fault-window") == 1
    assert "series" in classes and "recovery-mark" in classes
    assert classes.count("check-failed") == 3  # the method probe and two failed after polls
    assert "recovered in 4.00s" in page
    assert "process.stop" in page and "deviated" in page


def test_html_escapes_what_the_system_answered() -> None:
    journal = samples.journal(title="<script>alert(1)</script>")
    page = html_report.render(journal)
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
