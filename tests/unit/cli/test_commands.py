"""The commands through click's runner, with the real process driver against real processes."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from chaoskit.cli import main
from chaoskit.drivers import contract
from chaoskit.engine import journals, ledgers


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state"
    monkeypatch.setenv("CHAOSKIT_STATE_DIR", str(path))
    return path


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    with subprocess.Popen(["sleep", "300"]) as process:
        try:
            yield process
        finally:
            process.kill()
            process.wait(timeout=30)


def _state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main.cli, list(args), catch_exceptions=False)


HOLDS = """
title: holds
steady_state:
  - name: true is true
    probe: process.command
    with: {argv: ["true"]}
    expect: {path: exit_code, equals: 0}
"""


def _problems(path: Path) -> list[str]:
    """``chaoskit validate PATH``'s problem lines; it must exit 2, with one count line, no traceback."""
    result = _invoke("validate", str(path))
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith(str(path))]
    assert f"{len(lines)} problem{'s' if len(lines) != 1 else ''} found" in result.output
    return lines


def test_validate_accepts_a_good_file(tmp_path: Path) -> None:
    result = _invoke("validate", str(_write(tmp_path, HOLDS)))
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_validate_lists_every_problem_with_position_and_exits_2(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        title: bad
        method:
          - fault: process.stpo
            with: {pid: 1}
          - fault: process.stop
            with: {pid: 1, colour: red}
        """,
    )
    result = _invoke("validate", str(path))
    assert result.exit_code == 2
    assert (
        f"{path}:4:5: method[0].fault: unknown fault 'process.stpo' (did you mean 'process.stop'?)"
        in result.output
    )
    assert f"{path}:7:" in result.output and "method[1].with: unknown argument 'colour'" in result.output
    assert "Traceback" not in result.output


def test_validate_shows_format_and_planner_problems_in_one_go(tmp_path: Path) -> None:
    # Format problems (an unknown key, a bad duration) and problems only the planner finds (an
    # unknown probe or fault, a wrong argument) in one file: all of them on the first run.
    path = _write(
        tmp_path,
        """
        title: both kinds
        colour: red
        steady_state:
          - probe: http.request
            with: {url: "http://127.0.0.1:1/", timeout: 5 parsecs}
          - probe: http.reqest
            with: {url: "http://127.0.0.1:1/"}
        method:
          - fault: process.stop
            with: {pid: 1, colour: red}
          - pause: forever
          - fault: process.stpo
            with: {pid: 1}
        """,
    )
    assert _problems(path) == [
        f"{path}:3:1: unknown key 'colour'",
        f"{path}:6:40: steady_state[0].with.timeout: not a duration: '5 parsecs'; "
        "write a duration like 250ms, 30s, 5m, 1h or 1m30s",
        f"{path}:7:5: steady_state[1].probe: unknown probe 'http.reqest' (did you mean 'http.request'?)",
        f"{path}:11:20: method[0].with: unknown argument 'colour'",
        f"{path}:12:5: method[1].pause: not a duration: 'forever'; "
        "write a duration like 250ms, 30s, 5m, 1h or 1m30s",
        f"{path}:13:5: method[2].fault: unknown fault 'process.stpo' (did you mean 'process.stop'?)",
    ]


def test_a_step_with_a_format_problem_is_left_out_of_planning_and_the_rest_still_planned(
    tmp_path: Path,
) -> None:
    # steady_state holds probes only, so the bad step can't become a placeholder: it is left out,
    # and the planner's message about a later step still names that step's own place.
    path = _write(
        tmp_path,
        """
        title: t
        steady_state:
          - probe: process.command
            with: {argv: ["true"]}
            colour: red
          - probe: process.comand
            with: {argv: ["true"]}
        method:
          - fault: process.stpo
            with: {pid: 1}
        """,
    )
    assert _problems(path) == [
        f"{path}:6:5: steady_state[0]: unknown key 'colour'",
        f"{path}:7:5: steady_state[1].probe: unknown probe 'process.comand' "
        "(did you mean 'process.command'?)",
        f"{path}:10:5: method[0].fault: unknown fault 'process.stpo' (did you mean 'process.stop'?)",
    ]


def test_a_chaos_toolkit_file_gets_its_planner_problems_in_the_same_pass_at_its_own_places(
    tmp_path: Path,
) -> None:
    ctk = {
        "title": "t",
        "description": "d",
        "steady-state-hypothesis": {
            "title": "ok",
            "probes": [
                {"type": "probe", "name": "a", "tolerance": 200,
                 "provider": {"type": "http", "url": "http://127.0.0.1:1/", "timeout": "soon"}},
                {"type": "probe", "name": "b", "tolerance": 200,
                 "provider": {"type": "htp", "url": "http://127.0.0.1:1/"}},
            ],
        },
        "method": [
            {"type": "action", "name": "t",
             "provider": {"type": "process", "path": "true", "timeout": "later"}}
        ],
    }  # fmt: skip
    path = tmp_path / "ctk.json"
    path.write_text(json.dumps(ctk, indent=2), encoding="utf-8")
    found = [line.split(": ", 2)[1:] for line in _problems(path)]
    assert [where for where, _ in found] == [
        "steady-state-hypothesis.probes[0].provider.timeout",  # the planner's, in Chaos Toolkit's words
        "steady-state-hypothesis.probes[1].provider.type",  # the format's
        "method[0].provider.timeout",  # the planner's
    ]
    assert found[0][1].startswith("not a duration: 'soon'")
    assert found[2][1].startswith("not a duration: 'later'")


def test_an_unreadable_file_is_exit_2_without_traceback(tmp_path: Path) -> None:
    result = _invoke("run", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2
    assert "missing.yaml" in result.output and "Traceback" not in result.output


def test_schema_prints_the_experiment_json_schema() -> None:
    result = _invoke("schema")
    schema = json.loads(result.output)
    assert "steady_state" in schema["properties"]
    journal_schema = json.loads(_invoke("schema", "--journal").output)
    assert journal_schema == journals.json_schema()


def test_drivers_lists_faults_with_args_and_reversibility() -> None:
    data = json.loads(_invoke("drivers", "--output", "json").output)
    process = next(d for d in data if d["name"] == "process")
    stop = next(f for f in process["faults"] if f["name"] == "process.stop")
    assert stop["reversibility"] == "reversible"
    assert {"pid", "pidfile", "name"} <= {a["name"] for a in stop["args"]}
    text = _invoke("drivers", "process").output
    assert "process.stop (reversible)" in text


def test_run_completes_writes_the_journal_and_exits_0(tmp_path: Path, state: Path) -> None:
    journal = tmp_path / "j.json"
    result = _invoke("run", str(_write(tmp_path, HOLDS)), "--journal", str(journal), "--seed", "5")
    assert result.exit_code == 0, result.output
    assert "completed" in result.output
    written = journals.load(journal)
    assert (written.verdict, written.exit_code, written.seed) == ("completed", 0, 5)
    assert written.experiment.sha256 and written.experiment.file == str(tmp_path / "exp.yaml")


def test_run_not_steady_exits_3(tmp_path: Path, state: Path) -> None:
    path = _write(tmp_path, HOLDS.replace('["true"]', '["false"]'))
    result = _invoke("run", str(path), "--journal", str(tmp_path / "j.json"))
    assert result.exit_code == 3
    assert "not_steady" in result.output


def test_output_json_prints_the_journal_on_stdout(tmp_path: Path, state: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main.cli,
        ["run", str(_write(tmp_path, HOLDS)), "--output", "json", "--journal", str(tmp_path / "j.json")],
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["verdict"] == "completed"


def test_quiet_prints_only_the_verdict(tmp_path: Path, state: Path) -> None:
    result = _invoke("run", str(_write(tmp_path, HOLDS)), "--quiet", "--journal", str(tmp_path / "j.json"))
    assert result.exit_code == 0
    assert result.output.strip().splitlines() == [
        "completed (exit 0): the steady state held before and after, recovery within the deadline"
    ]


def test_a_secret_echoed_by_a_probe_never_reaches_output_or_journal(
    tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CK_SECRET_TOKEN", "hunter2-token")
    path = _write(
        tmp_path,
        """
        title: secret
        secrets: {tok: {env: CK_SECRET_TOKEN}}
        steady_state:
          - name: echo it
            probe: process.command
            with: {argv: [echo, "token is ${secrets.tok}"]}
            expect: {path: stdout, matches: token}
        """,
    )
    journal = tmp_path / "j.json"
    result = _invoke("run", str(path), "--journal", str(journal), "--output", "json")
    assert result.exit_code == 0, result.output
    assert "hunter2-token" not in result.output
    assert "hunter2-token" not in journal.read_text()
    assert "token is ***" in journal.read_text()
    assert all("hunter2-token" not in p.read_text() for p in ledgers.directory(state).iterdir())


def test_a_missing_secret_is_a_usage_error(tmp_path: Path, state: Path) -> None:
    path = _write(tmp_path, HOLDS + "secrets: {tok: {env: CK_NOT_SET_ANYWHERE}}\n")
    result = _invoke("run", str(path), "--journal", str(tmp_path / "j.json"))
    assert result.exit_code == 2
    assert "CK_NOT_SET_ANYWHERE" in result.output


def test_dry_run_prints_targets_and_stops_nothing(
    tmp_path: Path, state: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    path = _write(
        tmp_path,
        f"""
        title: dry
        method:
          - name: freeze
            fault: process.stop
            with: {{pid: {sleeper.pid}}}
            duration: 5s
        """,
    )
    result = _invoke("run", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert str(sleeper.pid) in result.output and "freeze" in result.output
    # Each target's details are listed too (here the command line the process driver matched).
    assert "cmdline: sleep" in result.output
    assert _state_of(sleeper.pid) != "T"
    assert not ledgers.directory(state).exists()


def test_dry_run_says_how_long_pauses_waits_and_faults_last(tmp_path: Path, state: Path) -> None:
    path = _write(
        tmp_path,
        """
        title: dry
        setup:
          - name: port open
            probe: process.command
            with: {argv: ["true"]}
            until: {within: 30s, interval: 2s}
        method:
          - {name: load, probe: process.command, with: {argv: ["true"]}, background: true}
          - pause: 3s
          - {pause: 1m, name: let it settle}
          - {name: freeze, fault: process.stop, with: {pidfile: /nonexistent/x.pid}}
        """,
    )
    result = _invoke("run", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    lines = [line.rstrip() for line in result.output.splitlines()]
    for expected in (
        "  probe  port open process.command, polled every 2s until it holds (up to 30s)",
        "  probe  load process.command, in the background",
        "  pause  3s",
        "  pause  let it settle 1m",
        "  fault  freeze process.stop until the method ends",
    ):
        assert expected in lines, f"{expected!r} not in:\n{result.output}"


def test_status_is_clean_then_lists_outstanding_and_recover_takes_it_back(
    state: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    assert _invoke("status").output.strip() == "No outstanding faults."
    # A run that died after stopping the process: its ledger, and the process really stopped,
    # written the way the engine writes them (the driver's own prepare and inject).
    from chaoskit.drivers import registry

    stop = registry.load(only=["process"]).faults["process.stop"]
    ctx = contract.RunContext(run_id="dead-run", state_dir=state)
    args = stop.args.model_validate({"pid": sleeper.pid})
    [target] = stop.targets(args, ctx)
    ledger = ledgers.Ledger.create(state, "dead-run")
    revert = stop.prepare(args, target, ctx)
    ledger.intent("f1", "process.stop", "freeze", target, contract.dump_revert(revert))
    ledger.applied("f1", contract.dump_revert(stop.inject(args, target, revert, ctx)))
    ledger.close()  # the run died: its lock is gone with it

    status = _invoke("status").output
    assert "dead-run: process.stop on process sleep" in status
    assert "chaoskit recover dead-run" in status
    result = _invoke("recover", "dead-run")
    assert result.exit_code == 0, result.output
    assert "reverted" in result.output
    assert _state_of(sleeper.pid) != "T"
    assert _invoke("status").output.strip() == "No outstanding faults."
    assert _invoke("recover").output.strip() == "Nothing to recover."


def test_convert_prints_chaoskit_yaml_for_a_chaostoolkit_file(tmp_path: Path) -> None:
    ctk = {
        "title": "ctk",
        "description": "d",
        "steady-state-hypothesis": {
            "title": "ok",
            "probes": [
                {
                    "type": "probe",
                    "name": "true",
                    "tolerance": 0,
                    "provider": {"type": "process", "path": "true"},
                }
            ],
        },
        "method": [],
    }
    path = tmp_path / "ctk.json"
    path.write_text(json.dumps(ctk))
    result = _invoke("convert", str(path))
    assert result.exit_code == 0, result.output
    assert "steady_state:" in result.output and "process.command" in result.output
    not_ctk = _write(tmp_path, HOLDS)
    assert _invoke("convert", str(not_ctk)).exit_code == 2


def test_a_bug_is_a_traceback_and_exit_4_and_a_user_error_is_one_message() -> None:
    from chaoskit import errors

    group = main.LazyGroup(name="t")

    @group.command()
    def boom() -> None:
        raise RuntimeError("unexpected")

    @group.command()
    def user() -> None:
        raise errors.UsageError("bad flag --x", hint="use --y")

    bug = CliRunner().invoke(group, ["boom"])
    assert bug.exit_code == 4
    assert "Traceback" in bug.output and "this is a bug" in bug.output
    mistake = CliRunner().invoke(group, ["user"])
    assert mistake.exit_code == 2
    assert mistake.output == "error: bad flag --x\n  hint: use --y\n"


@pytest.mark.parametrize("where", ["under a file", "in /proc"])
def test_an_unwritable_journal_path_is_refused_before_anything_runs(
    tmp_path: Path, state: Path, where: str
) -> None:
    (tmp_path / "a-file").write_text("")
    # Under a file no directory can be made; /proc passes access(2) for root but takes no files.
    journal = tmp_path / "a-file" / "j.json" if where == "under a file" else Path("/proc/chaoskit/j.json")
    result = _invoke("run", str(_write(tmp_path, HOLDS)), "--journal", str(journal))
    assert result.exit_code == 2
    assert "--journal" in result.output and "can't write" in result.output
    assert not ledgers.directory(state).exists()


def test_a_journal_that_cant_be_written_at_the_end_is_saved_in_the_state_dir_and_exits_4(
    tmp_path: Path, state: Path
) -> None:
    out = tmp_path / "out"  # missing at the start (fine: it would be made), then a file takes its name
    experiment = _write(
        tmp_path,
        HOLDS
        + f"""
method:
  - name: something takes the journal's directory name
    action: process.command
    with: {{argv: ["touch", "{out}"]}}
""",
    )
    junit = tmp_path / "junit.xml"
    result = _invoke(
        "run", str(experiment), "--journal", str(out / "j.json"), "--quiet", "--junit", str(junit)
    )
    assert result.exit_code == 4, result.output
    assert junit.exists()  # the other outputs are still written
    assert f"can't write the journal {out / 'j.json'}" in result.output
    [saved] = (state / "journals").glob("*.json")
    assert f"saved it as {saved} instead" in result.output.replace("\n", "")
    journal = json.loads(saved.read_text())
    assert journal["verdict"] == "completed"
    [row] = json.loads(_invoke("history", "--output", "json").output)
    assert row["journal"] == str(saved)  # the history points at the saved copy


def test_missing_journal_directories_are_created(tmp_path: Path, state: Path) -> None:
    journal = tmp_path / "out" / "ci" / "j.json"
    result = _invoke("run", str(_write(tmp_path, HOLDS)), "--journal", str(journal))
    assert result.exit_code == 0, result.output
    assert journals.load(journal).verdict == "completed"


BAD_INPUTS = {
    "malformed yaml": ("title: [unclosed\n", r":\d+:\d+: not valid YAML"),
    "unknown key": ("title: t\nsteady_stat: []\n", r":2:1: .*steady_stat.*did you mean 'steady_state'"),
    "wrong type": ("title: t\nrecovery: {within: soon}\n", r":2:\d+: recovery.within"),
    "unknown probe": ("title: t\nsteady_state:\n  - probe: process.runing\n", r":3:\d+: .*did you mean"),
    "missing variable": (
        "title: t\nsteady_state:\n  - probe: process.running\n    with: {pid: '${nope}'}\n",
        r":4:\d+: .*nope",
    ),
    "negative duration": ("title: t\nmethod:\n  - pause: -5s\n", r":3:\d+: .*negative"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_a_location_no_traceback_and_nothing_run(
    case: str, tmp_path: Path, state: Path
) -> None:
    import re

    text, pattern = BAD_INPUTS[case]
    path = _write(tmp_path, text)
    result = _invoke("run", str(path), "--journal", str(tmp_path / "j.json"))
    assert result.exit_code == 2, result.output
    assert re.search(re.escape(str(path)) + pattern, result.output), result.output
    assert "Traceback" not in result.output
    assert not ledgers.directory(state).exists()
    assert not (tmp_path / "j.json").exists()


def test_context_flag_chooses_the_kubeconfig_context(
    tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the kubeconfig is read (no API server is needed to see which context was asked for).
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: only-one\n"
        "clusters: [{name: c1, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: only-one, context: {cluster: c1, user: u1}}]\n"
        "users: [{name: u1, user: {token: abc}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    # The flag sets the variable in this process: setenv first so that monkeypatch restores it after.
    monkeypatch.setenv("CHAOSKIT_KUBE_CONTEXT", "")
    monkeypatch.delenv("CHAOSKIT_KUBE_CONTEXT")
    path = _write(
        tmp_path,
        """
        title: k
        method:
          - name: kill
            fault: kubernetes.pods.delete
            with: {namespace: default, label_selector: app=x}
        """,
    )
    result = _invoke("run", str(path), "--dry-run", "--context", "staging-eu")
    assert result.exit_code == 0, result.output
    assert "context 'staging-eu'" in result.output


@pytest.mark.parametrize("option", ["--junit", "--report"])
def test_an_unwritable_report_path_is_refused_before_anything_runs(
    tmp_path: Path, state: Path, option: str
) -> None:
    (tmp_path / "a-file").write_text("")
    result = _invoke("run", str(_write(tmp_path, HOLDS)), option, str(tmp_path / "a-file" / "out"))
    assert result.exit_code == 2
    assert f"{option} {tmp_path / 'a-file' / 'out'}: can't write in {tmp_path / 'a-file'}" in result.output
    assert not ledgers.directory(state).exists()
