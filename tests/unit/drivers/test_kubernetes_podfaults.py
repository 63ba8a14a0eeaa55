"""What the in-pod faults send the node agent: only the fields the agent takes (a signal as a
number, the default one too), and arguments the agent would refuse are refused here first."""

from __future__ import annotations

import signal

import pytest
from pydantic import ValidationError

from chaoskit.drivers.kubernetes import podfaults

PODS = {"namespace": "shop", "label_selector": "app=web"}


@pytest.mark.parametrize(
    ("given", "sent"), [({}, int(signal.SIGKILL)), ({"signal": "TERM"}, 15), ({"signal": 1}, 1)]
)
def test_kill_process_sends_the_signal_as_a_number(given: dict[str, object], sent: int) -> None:
    fault = podfaults.KillProcess()
    args = fault.args.model_validate({**PODS, "process": "nginx", **given})
    assert fault.agent_args(args) == {"process": "nginx", "pattern": None, "main": False, "signal": sent}


def test_a_kill_that_would_freeze_or_an_unknown_signal_is_refused() -> None:
    for bad in ("SIGSTOP", "NOPE", 999):
        with pytest.raises(ValidationError):
            podfaults.KillProcess.args.model_validate({**PODS, "process": "x", "signal": bad})


def test_stress_and_partition_send_only_their_own_fields() -> None:
    cpu = podfaults.StressCpu()
    args = cpu.args.model_validate({**PODS, "workers": 2, "load": 50, "lease": 10, "container": "web"})
    assert cpu.agent_args(args) == {"workers": 2, "load": 50.0, "max_duration": 600.0}
    cut = podfaults.Partition()
    assert cut.agent_args(cut.args.model_validate({**PODS, "cidrs": ["10.0.0.7"]})) == {
        "cidrs": ["10.0.0.7/32"]
    }


def test_a_pod_dns_fault_sends_what_the_agents_dns_takes() -> None:
    """kubernetes.pods.dns asks the agent for its ``dns`` fault with exactly the fields the agent
    validates (selector, lease and agent address stay on this side)."""
    from chaoskit.agent import resolving

    dns = podfaults.Dns()
    args = dns.args.model_validate(
        {**PODS, "domains": ["db.shop.svc", "*.example.com"], "answer": "servfail"}
    )
    sent = dns.agent_args(args)
    assert sent == {"domains": ["db.shop.svc", "*.example.com"], "answer": "servfail", "max_duration": 600.0}
    assert resolving.DnsArgs.model_validate(sent).answer == "servfail"


def test_a_pod_dns_fault_with_a_bad_name_or_answer_is_refused_before_it_runs() -> None:
    for bad in ({"domains": ["bad name"]}, {"domains": ["db"], "answer": "nowhere"}, {"domains": []}):
        with pytest.raises(ValidationError):
            podfaults.Dns.args.model_validate({**PODS, **bad})
