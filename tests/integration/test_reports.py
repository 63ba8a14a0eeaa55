"""Reports from real runs: ``chaoskit run --junit --report`` on the quickstart experiment (a real
HTTP server, a real SIGSTOP), read back by junitparser and the gate, recorded in the history, and
the HTML report rendered by headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import junitparser
import pytest

from chaoskit.engine import journals, phases
from tests.conftest import require

EXPERIMENT = """
title: A stdlib web server recovers from a 2-second freeze
config: {port: 18080, p99_ms: 1000}
setup:
  - id: server
    name: start the web server
    action: process.start
    with:
      argv:
        - python3
        - -c
        - |
          import http.server, sys

          class Health(http.server.BaseHTTPRequestHandler):
              def do_GET(self):
                  self.send_response(200)
                  self.send_header("Content-Length", "2")
                  self.end_headers()
                  self.wfile.write(b"ok")

              def log_message(self, *args):
                  pass

          http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
        - "${port}"
      wait_for: {port: "${port}"}
      timeout: 60s
steady_state:
  - name: answers 200
    probe: http.request
    with: {url: "http://127.0.0.1:${port}/", timeout: 5s}
    expect: {path: status, equals: 200}
  - name: p99 latency within budget
    probe: http.load
    with: {url: "http://127.0.0.1:${port}/", requests: 20, concurrency: 2, timeout: 5s}
    expect: {path: latency_ms.p99, below: "${p99_ms}"}
method:
  - name: freeze the server
    fault: process.stop
    with: {pid: "${steps.server.output.pid}"}
    duration: 2s
  - pause: 500ms
  - name: what clients see while it is frozen
    probe: http.load
    with: {url: "http://127.0.0.1:${port}/", requests: 2, concurrency: 2, timeout: 500ms}
guards:
  - name: the server process exists
    probe: process.running
    with: {pid: "${steps.server.output.pid}"}
    expect: {path: running, equals: true}
    interval: 500ms
recovery: {within: 60s, interval: 250ms}
measure:
  name: what clients see
  probe: http.load
  with: {url: "http://127.0.0.1:${port}/", requests: 2, concurrency: 2, timeout: 300ms}
  every: 250ms
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def chaoskit(*args: str, state: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHAOSKIT_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "chaoskit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=state.parent,
        check=False,
    )


@pytest.fixture(scope="module")
def completed_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """One real run of the quickstart with every output asked for."""
    base = tmp_path_factory.mktemp("run")
    paths = {
        "experiment": base / "freeze.yaml",
        "state": base / "state",
        "journal": base / "journal.json",
        "junit": base / "out.xml",
        "report": base / "report.html",
    }
    paths["experiment"].write_text(EXPERIMENT, encoding="utf-8")
    done = chaoskit(
        "run",
        str(paths["experiment"]),
        "--var",
        f"port={free_port()}",
        "--quiet",
        "--journal",
        str(paths["journal"]),
        "--junit",
        str(paths["junit"]),
        "--report",
        str(paths["report"]),
        state=paths["state"],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    yield paths


def test_run_writes_junit_with_one_passing_testcase_per_check(completed_run: dict[str, Path]) -> None:
    journal = journals.load(completed_run["journal"])
    suite = next(iter(junitparser.JUnitXml.fromfile(str(completed_run["junit"]))))
    names = [case.name for case in suite]
    steady = [c.step for c in journal.checks if c.phase is phases.Phase.BEFORE]
    assert [n for n in names if n.startswith("before: ")] == [f"before: {s}" for s in steady]
    assert sum(n.startswith("after: ") for n in names) == len(steady)
    assert "recovery: recovery time" in names
    assert any(n.startswith("guard: ") for n in names)
    assert any(n.startswith("method: ") for n in names)
    assert all(case.is_passed for case in suite)
    assert suite.tests == len(names) and suite.failures == 0 and suite.errors == 0


def test_every_run_is_in_the_history_and_passes_the_gate(completed_run: dict[str, Path]) -> None:
    journal = journals.load(completed_run["journal"])
    shown = chaoskit("history", "freeze.yaml", "--output", "json", state=completed_run["state"])
    assert shown.returncode == 0, shown.stderr
    (row,) = json.loads(shown.stdout)
    assert row["run_id"] == journal.run_id and row["verdict"] == "completed"
    assert row["recovery_measured"] == pytest.approx(journal.recovery.measured if journal.recovery else None)
    assert 50 < row["score"] <= 100
    gate = chaoskit(
        "gate", str(completed_run["journal"]), "--max-recovery", "30s", state=completed_run["state"]
    )
    assert gate.returncode == 0, gate.stdout
    # Recovery took more than 0 s, so the score is below 100, and a gate demanding 100 fails.
    strict = chaoskit(
        "gate", str(completed_run["journal"]), "--min-score", "100", state=completed_run["state"]
    )
    assert strict.returncode == 1 and "below the minimum" in strict.stdout


def test_a_failed_check_reaches_junit_as_expected_x_got_y(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (tmp_path / "freeze.yaml").write_text(EXPERIMENT, encoding="utf-8")
    done = chaoskit(
        "run",
        str(tmp_path / "freeze.yaml"),
        "--var",
        f"port={free_port()}",
        "--var",
        "p99_ms=0",  # no server answers in under 0 ms: not steady before, nothing injected
        "--quiet",
        "--journal",
        str(tmp_path / "j.json"),
        "--junit",
        str(tmp_path / "out.xml"),
        state=state,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    suite = next(iter(junitparser.JUnitXml.fromfile(str(tmp_path / "out.xml"))))
    failed = [case for case in suite if not case.is_passed]
    assert len(failed) == 1 and suite.failures == 1
    (failure,) = failed[0].result
    assert failure.message.startswith("expected ") and ", got " in failure.message
    assert "latency_ms.p99" in failure.message
    gate = chaoskit("gate", str(tmp_path / "j.json"), state=state)
    assert gate.returncode == 3


# ---- headless Chromium ------------------------------------------------------------------------


def chromium() -> str | None:
    return os.environ.get("CHAOSKIT_CHROMIUM") or shutil.which("chromium")


def render(
    page: Path, profile: Path, *extra: str, size: str = "1200,1600"
) -> subprocess.CompletedProcess[str]:
    binary = chromium()
    assert binary is not None
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            f"--window-size={size}",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def png_pixels(data: bytes, step: int = 4) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and pixels of an 8-bit RGB/RGBA PNG (what Chromium writes): every ``step``-th
    pixel of every ``step``-th row, row by row."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat = 8, b""
    width = height = colour = 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    channels = 4 if colour == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + predictor) & 0xFF
        rows.append(line)
        previous = line
    pixels = [tuple(row[x : x + 3]) for row in rows[::step] for x in range(0, stride, channels * step)]
    return width, height, pixels


@pytest.mark.chromium
def test_the_html_report_renders_with_its_timeline_in_chromium(
    completed_run: dict[str, Path], tmp_path: Path
) -> None:
    require("chromium", chromium() is not None, "apt-get install chromium (scripts/test does)")
    page = completed_run["report"]
    shot = tmp_path / "shot.png"
    done = render(page, tmp_path / "profile", f"--screenshot={shot}")
    assert shot.exists(), done.stderr[-2000:]
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 1600)
    not_white = sum(1 for p in pixels if p != (255, 255, 255))
    assert not_white > len(pixels) * 0.02, "the screenshot is (almost) blank"
    assert len(set(pixels)) > 20, "too few colours for text, a verdict badge and a chart"
    # The verdict badge (#2e7d32) and the shaded fault window (#ff9800 at 22 % on white) are painted.
    assert any(abs(r - 0x2E) < 12 and abs(g - 0x7D) < 12 and abs(b - 0x32) < 12 for r, g, b in pixels)
    assert any(r > 240 and 215 < g < 240 and 170 < b < 215 for r, g, b in pixels)

    dom = render(page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="timeline"' in dom.stdout
    assert dom.stdout.count('class="fault-window"') == 1
    assert 'class="recovery-mark"' in dom.stdout
    assert dom.stdout.count('class="check-ok"') >= 4
    assert "<script" not in dom.stdout


def _near(pixel: tuple[int, ...], colour: str, tolerance: int = 40) -> bool:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return abs(pixel[0] - r) < tolerance and abs(pixel[1] - g) < tolerance and abs(pixel[2] - b) < tolerance


@pytest.mark.chromium
def test_the_report_screenshot_shows_the_latency_and_error_lanes(
    completed_run: dict[str, Path], tmp_path: Path
) -> None:
    require("chromium", chromium() is not None, "apt-get install chromium (scripts/test does)")
    journal = journals.load(completed_run["journal"])
    (measure,) = journal.measures
    assert measure.name == "what clients see" and measure.samples >= 4
    frozen = [s for s in journal.samples if (s.values.get("error_ratio") or 0) > 0]
    assert frozen, "no sample saw the frozen server's timeouts"
    page = completed_run["report"]
    dom = render(page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('class="measure-lane"') == 2
    assert 'data-unit="ms"' in dom.stdout and 'data-unit="%"' in dom.stdout
    assert "latency (ms)" in dom.stdout and "errors (%)" in dom.stdout
    assert 'class="measure-series p99"' in dom.stdout and 'class="measure-series error"' in dom.stdout

    shot = tmp_path / "lanes.png"
    done = render(page, tmp_path / "profile", f"--screenshot={shot}", size="1200,2600")
    assert shot.exists(), done.stderr[-2000:]
    width, height, pixels = png_pixels(shot.read_bytes(), step=1)
    assert (width, height) == (1200, 2600)
    rows = [pixels[y * width : (y + 1) * width] for y in range(height)]
    # The p99 line (#6a1b9a) and the error line (#c62828) are painted, each in its own band of rows.
    p99_rows = [y for y, row in enumerate(rows) if sum(_near(p, "#6a1b9a") for p in row[250:]) >= 3]
    assert p99_rows, "no p99 line in the screenshot"
    # The latency lane is not blank: its rows hold the line, the scale, gridlines and the fault window.
    band = rows[min(p99_rows) - 10 : max(p99_rows) + 10]
    painted = sum(1 for row in band for p in row if p != (255, 255, 255))
    assert painted > len(band) * width * 0.05, "the latency lane is (almost) blank"
    assert any(_near(p, "#ff9800", 60) or (p[0] > 240 and 215 < p[1] < 240) for row in band for p in row)
