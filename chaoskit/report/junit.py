"""JUnit XML for CI systems: one ``<testsuite>`` per run, one ``<testcase>`` per check.

The shape is the one Jenkins, GitLab, GitHub test reporters and junitparser read: ``testsuites``
> ``testsuite`` (name, tests, failures, errors, skipped, time, timestamp) > ``testcase``
(classname, name, time) with a ``failure`` or ``error`` child whose ``message`` is "expected X,
got Y".
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from chaoskit.engine import journals
from chaoskit.report import checks, scores


def _suite(journal: journals.Journal) -> ET.Element:
    items = checks.from_journal(journal)
    failures = sum(c.status in {checks.Status.FAILED, checks.Status.NO_DATA} for c in items)
    errored = sum(c.status is checks.Status.ERROR for c in items)
    duration = (journal.ended - journal.started).total_seconds()
    suite = ET.Element(
        "testsuite",
        {
            "name": journal.experiment.title,
            "tests": str(len(items)),
            "failures": str(failures),
            "errors": str(errored),
            "skipped": "0",
            "time": f"{duration:.3f}",
            "timestamp": journal.started.replace(tzinfo=None, microsecond=0).isoformat(),
            "id": journal.run_id,
        },
    )
    properties = ET.SubElement(suite, "properties")
    score = scores.of_journal(journal)
    for name, value in (
        ("run_id", journal.run_id),
        ("verdict", journal.verdict.value),
        ("exit_code", str(journal.exit_code)),
        ("reason", journal.reason),
        ("score", "" if score is None else repr(score)),
        ("experiment_file", journal.experiment.file or ""),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    slug = journal.experiment.file or journal.experiment.title
    for check in items:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"chaoskit.{check.kind.value}",
                "name": f"{check.kind.value}: {check.name}",
                "time": f"{check.elapsed:.3f}",
                "file": slug,
            },
        )
        if check.status is checks.Status.ERROR:
            element = ET.SubElement(case, "error", {"message": check.message, "type": "probe-error"})
            element.text = f"{check.message}\nactivity: {check.activity}"
        elif not check.ok:
            kind = "no-data" if check.status is checks.Status.NO_DATA else "deviated"
            element = ET.SubElement(case, "failure", {"message": check.message, "type": kind})
            element.text = f"{check.message}\nactivity: {check.activity}"
        out = ET.SubElement(case, "system-out")
        out.text = f"expected {check.expected}; got {check.got}; polls: {check.polls}"
    if journal.verdict is journals.Verdict.ERROR and errored == 0:
        # A run that failed before or outside any probe still has to turn CI red.
        case = ET.SubElement(suite, "testcase", {"classname": "chaoskit.run", "name": "run", "time": "0"})
        message = "; ".join(e.message for e in journal.errors) or journal.reason
        ET.SubElement(case, "error", {"message": message, "type": "run-error"}).text = message
        suite.set("tests", str(len(items) + 1))
        suite.set("errors", "1")
    return suite


def render(runs: Sequence[journals.Journal]) -> str:
    """The XML document for one or more runs."""
    root = ET.Element("testsuites", {"name": "chaoskit"})
    for journal in runs:
        root.append(_suite(journal))
    for attribute in ("tests", "failures", "errors"):
        root.set(attribute, str(sum(int(s.get(attribute, "0")) for s in root)))
    root.set("time", f"{sum(float(s.get('time', '0')) for s in root):.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write(runs: Sequence[journals.Journal], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(runs), encoding="utf-8")
