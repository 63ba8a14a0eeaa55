"""A driver written outside chaoskit's tree, as a third party ships one: a distribution with an entry
point in the ``chaoskit.drivers`` group, built and installed by pip, then used by ``chaoskit run``
in a fresh process. Its fault is injected (the marker is there during the method) and reverted
(gone after, the revert logged); ``chaoskit drivers --source`` names its code and distribution;
and a second distribution that shadows ``process.kill`` is refused, naming both.

Offline: the throwaway distribution builds with a few-line in-tree PEP 517 backend (no setuptools
or wheel to fetch), installed with ``pip install --no-deps --no-build-isolation --target`` into a
temporary directory that ``PYTHONPATH`` puts in front of this interpreter's packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BACKEND = '''
"""A minimal in-tree PEP 517 backend: a pure-Python wheel from [project] in pyproject.toml."""
import base64, hashlib, pathlib, tomllib, zipfile

def _project():
    return tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project = _project()
    name, version = project["name"].replace("-", "_"), project["version"]
    info = f"{name}-{version}.dist-info"
    files = {str(p): p.read_bytes() for p in pathlib.Path(name).rglob("*.py")}
    metadata = f"Metadata-Version: 2.1\\nName: {project['name']}\\nVersion: {version}\\n"
    files[f"{info}/METADATA"] = metadata.encode()
    wheel_info = "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    files[f"{info}/WHEEL"] = wheel_info.encode()
    groups = project.get("entry-points", {})
    files[f"{info}/entry_points.txt"] = "".join(
        f"[{group}]\\n" + "".join(f"{k} = {v}\\n" for k, v in entries.items()) + "\\n"
        for group, entries in groups.items()
    ).encode()
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    wheel = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel
'''

DRIVER = '''
"""acme: a driver outside chaoskit's tree. ``acme.mark`` creates a marker file, which its revert
removes; ``acme.exists`` says whether it is there. Each inject and revert is logged beside it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chaoskit.drivers import contract


class MarkArgs(contract.Args):
    path: str
    """The marker file."""


class MarkRevert(contract.Revert):
    path: str
    """The marker file inject created."""


def _log(path: str, what: str) -> None:
    with open(f"{path}.log", "a") as log:
        log.write(what + "\\n")


class Mark(contract.Fault[MarkArgs, MarkRevert], args=MarkArgs, revert=MarkRevert):
    name = "acme.mark"
    summary = "create a marker file; revert removes it"

    def targets(self, args: MarkArgs, ctx: contract.RunContext) -> Sequence[contract.Target]:
        return [contract.Target(kind="file", id=args.path, name=args.path)]

    def prepare(self, args: MarkArgs, target: contract.Target, ctx: contract.RunContext) -> MarkRevert:
        return MarkRevert(path=args.path)

    def inject(
        self, args: MarkArgs, target: contract.Target, revert: MarkRevert, ctx: contract.RunContext
    ) -> MarkRevert:
        Path(revert.path).write_text(ctx.run_id)
        _log(revert.path, "inject")
        return revert

    def revert(self, revert: MarkRevert, ctx: contract.RunContext) -> contract.RevertOutcome:
        _log(revert.path, "revert")
        path = Path(revert.path)
        if not path.exists():
            return contract.RevertOutcome.ALREADY_CLEAN
        path.unlink()
        return contract.RevertOutcome.REVERTED


class ExistsArgs(contract.Args):
    path: str


class Exists(contract.Probe[ExistsArgs], args=ExistsArgs):
    name = "acme.exists"
    summary = "whether the file is there: {exists}"

    def run(self, args: ExistsArgs, ctx: contract.RunContext) -> contract.JsonValue:
        return {"exists": Path(args.path).exists()}


def driver() -> contract.Driver:
    return contract.Driver(name="acme", summary="marker files", faults=[Mark()], probes=[Exists()])
'''

SHADOW = '''
"""A plugin whose ``process.kill`` would shadow the built-in one."""

from chaoskit.drivers import contract
from chaoskit.drivers.process import signalling


class Kill(signalling.Kill):
    pass


def driver() -> contract.Driver:
    return contract.Driver(name="process", summary="shadows the built-in", faults=[Kill()])
'''


def _distribution(root: Path, name: str, entry: str, source: str) -> Path:
    package = name.replace("-", "_")
    project = root / name
    (project / package).mkdir(parents=True)
    (project / package / "__init__.py").write_text(textwrap.dedent(source).lstrip())
    (project / "build_backend.py").write_text(textwrap.dedent(BACKEND).lstrip())
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [build-system]
            requires = []
            build-backend = "build_backend"
            backend-path = ["."]

            [project]
            name = "{name}"
            version = "1.0"

            [project.entry-points."chaoskit.drivers"]
            {entry}
            """
        )
    )
    return project


def _install(project: Path, target: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(project),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _chaoskit(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    paths = [str(site), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run(
        [sys.executable, "-m", "chaoskit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env=env,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the acme distribution installed in it by pip."""
    root = tmp_path_factory.mktemp("out-of-tree")
    project = _distribution(root, "acme-chaos", 'acme = "acme_chaos:driver"', DRIVER)
    target = root / "site"
    _install(project, target)
    return target


def test_chaoskit_run_injects_and_reverts_an_installed_third_party_fault(site: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    experiment = tmp_path / "acme.yaml"
    experiment.write_text(
        textwrap.dedent(
            f"""\
            title: an out-of-tree fault is injected and reverted
            steady_state:
              - name: no marker
                probe: acme.exists
                with: {{path: "{marker}"}}
                expect: {{path: exists, equals: false}}
            method:
              - name: mark
                fault: acme.mark
                with: {{path: "{marker}"}}
              - name: the marker is there while the fault is on
                probe: acme.exists
                with: {{path: "{marker}"}}
                expect: {{path: exists, equals: true}}
            """
        )
    )
    result = _chaoskit(site, tmp_path, "run", str(experiment), "--state-dir", str(tmp_path / "state"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not marker.exists()
    assert Path(f"{marker}.log").read_text().split() == ["inject", "revert"]


def test_drivers_source_names_its_code_and_distribution(site: Path, tmp_path: Path) -> None:
    result = _chaoskit(site, tmp_path, "drivers", "--source", "acme")
    assert result.returncode == 0, result.stderr
    assert "entry point 'acme' = acme_chaos:driver of acme-chaos 1.0" in result.stdout
    assert "fault  acme.mark    acme_chaos:Mark" in result.stdout
    assert "probe  acme.exists  acme_chaos:Exists" in result.stdout
    listed = _chaoskit(site, tmp_path, "drivers", "--source", "--output", "json")
    by_name = {d["name"]: d for d in json.loads(listed.stdout)}
    assert by_name["acme"]["faults"][0]["source"] == "acme_chaos:Mark"
    assert by_name["process"]["origin"].startswith("entry point 'process' = chaoskit.drivers.process:driver")


def test_a_distribution_shadowing_a_builtin_activity_is_refused_naming_both(tmp_path: Path) -> None:
    project = _distribution(tmp_path, "shadow-chaos", 'process = "shadow_chaos:driver"', SHADOW)
    site = tmp_path / "site"
    _install(project, site)
    result = _chaoskit(site, tmp_path, "drivers")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "two drivers are called 'process'" in result.stderr
    assert "chaoskit.drivers.process:driver of chaoskit" in result.stderr
    assert "entry point 'process' = shadow_chaos:driver of shadow-chaos 1.0" in result.stderr
    assert "Traceback" not in result.stderr
