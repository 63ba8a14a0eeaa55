"""Where a run's pod runs: a ChaosExperiment's nodeSelector, tolerations and schedulerName reach the
Job's pod (chaoskit kept off the pool it breaks, or on a tainted one), and a spec without them
leaves the cluster's defaults; the CRD's schema accepts them."""

from __future__ import annotations

from pathlib import Path

import yaml

from chaoskit.operator import jobs, resources
from tests.unit.operator.test_deciding import EXPERIMENT, resource

CRD = Path(__file__).resolve().parents[3] / "operators" / "crds" / "chaosexperiments.yaml"


def test_placement_reaches_the_run_pod() -> None:
    toleration = {"key": "pool", "operator": "Equal", "value": "chaos", "effect": "NoSchedule"}
    obj = resource({
        "experiment": EXPERIMENT, "nodeSelector": {"pool": "chaos"}, "tolerations": [toleration],
        "schedulerName": "quiet-scheduler", "image": "chaoskit-test/chaoskit:abc",
    })  # fmt: skip
    pod = jobs.job(obj, resources.experiment_spec(obj), "chaoskit:dev")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "chaos"}
    assert pod["tolerations"] == [toleration]
    assert pod["schedulerName"] == "quiet-scheduler"
    assert pod["containers"][0]["image"] == "chaoskit-test/chaoskit:abc"


def test_without_placement_the_cluster_decides() -> None:
    obj = resource({"experiment": EXPERIMENT})
    pod = jobs.job(obj, resources.experiment_spec(obj), "chaoskit:dev")["spec"]["template"]["spec"]
    assert not {"nodeSelector", "tolerations", "schedulerName"} & set(pod)


def test_the_schema_declares_every_spec_field() -> None:
    schema = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    declared = set(schema["properties"]["spec"]["properties"])
    aliases = {f.alias or name for name, f in resources.ExperimentSpec.model_fields.items()}
    assert aliases <= declared, aliases - declared
