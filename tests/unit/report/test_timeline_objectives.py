"""The timeline marks each RPO/RTO reading: a bar over the window of acknowledged writes lost and
one over the outage (fault until writes were accepted again), labelled with the figures."""

from __future__ import annotations

from datetime import timedelta

from chaoskit.engine import journals, phases
from chaoskit.report import timelines
from tests.unit.report import samples


def _with_reading(**fields: object) -> journals.Journal:
    journal = samples.measured()
    start = journal.started
    reading = journals.ObjectivesRecord(
        step="read back",
        activity="data.verify",
        phase=phases.Phase.AFTER,
        at=start + timedelta(seconds=9),
        **{  # type: ignore[arg-type]
            "rpo_writes": 21,
            "rpo_seconds": 2.04,
            "rto_seconds": 4.23,
            "fault_at": start + timedelta(seconds=4),
            "accepted_again_at": start + timedelta(seconds=8.23),
            "lost_since": start + timedelta(seconds=2),
            "lost_until": start + timedelta(seconds=4.04),
            **fields,
        },
    )
    return journal.model_copy(update={"objectives": [reading]})


def _bar(svg: str, css: str) -> tuple[float, float]:
    (tag,) = [line for line in svg.splitlines() if line.startswith(f'<rect class="{css}"')]
    x = float(tag.split(' x="', 1)[1].split('"', 1)[0])
    width = float(tag.split(' width="', 1)[1].split('"', 1)[0])
    return x, width


def test_rpo_and_rto_are_bars_over_their_windows_with_their_figures() -> None:
    journal = _with_reading()
    svg = timelines.render(journal)
    assert "RPO 21 acknowledged writes lost (2.04s)" in svg
    assert "RTO 4.23s: writes accepted again" in svg
    rpo_x, rpo_width = _bar(svg, "rpo")
    rto_x, rto_width = _bar(svg, "rto")
    assert rpo_x < rto_x  # the writes lost came before the outage began
    assert abs(rto_width / rpo_width - 4.23 / 2.04) < 0.05  # each as long as its window


def test_writes_never_accepted_again_run_to_the_end_and_say_so() -> None:
    svg = timelines.render(_with_reading(rto_seconds=None, accepted_again_at=None))
    assert "writes not accepted again" in svg
    x, width = _bar(svg, "rto")
    assert abs(x + width - (timelines.WIDTH - timelines.RIGHT)) < 1  # to the end of the run


def test_nothing_lost_draws_no_rpo_bar() -> None:
    svg = timelines.render(_with_reading(rpo_writes=0, rpo_seconds=0.0, lost_since=None, lost_until=None))
    assert 'class="rpo"' not in svg and 'class="rto"' in svg
