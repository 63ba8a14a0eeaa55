"""``chaoskit operator``: the Kubernetes controller (``run``) and what its Jobs run (``execute``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from chaoskit import errors


@click.group()
def command() -> None:
    """Run ChaosExperiment and ChaosSchedule resources as Kubernetes Jobs (docs/operator.md)."""


@command.command("run")
@click.option("--namespace", "-n", default=None, help="Watch this namespace only (default: every namespace).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Out of cluster: this kubeconfig (default $KUBECONFIG, then in-cluster).")  # fmt: skip
@click.option("--context", default=None, help="A context of the kubeconfig.")
@click.option(
    "--image",
    envvar="CHAOSKIT_IMAGE",
    default="ghcr.io/chaoskit/chaoskit:latest",
    show_default=True,
    help="The image run Jobs use (env CHAOSKIT_IMAGE); a resource's spec.image overrides it.",
)
@click.option("--interval", type=float, default=5.0, show_default=True,
              help="Seconds between passes when no watch event wakes the controller earlier.")  # fmt: skip
@click.option("--once", is_flag=True, help="Make one reconcile pass and exit.")
@click.option("--leader-elect/--no-leader-elect", default=True, show_default=True,
              help="Act only while holding the Lease chaoskit-operator; others wait.")  # fmt: skip
@click.option("--lease-namespace", default=None,
              help="The Lease's namespace (default: the one it runs in, else the context's).")  # fmt: skip
@click.option("--lease-duration", type=click.FloatRange(1), default=15.0, show_default=True,
              help="Seconds a silent leader keeps the Lease before another replica takes over.")  # fmt: skip
def run(  # noqa: PLR0917 (click passes options positionally)
    namespace: str | None,
    kubeconfig: Path | None,
    context: str | None,
    image: str,
    interval: float,
    once: bool,
    leader_elect: bool,
    lease_namespace: str | None,
    lease_duration: float,
) -> None:
    """Watch ChaosExperiments and ChaosSchedules and run them, until SIGTERM or Ctrl-C.

    With several replicas, one leads (a coordination.k8s.io Lease) and the others wait to take over.
    """
    from chaoskit.operator import serving

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    where = f"namespace {namespace}" if namespace else "every namespace"
    click.echo(f"chaoskit operator: watching {where}; runs use image {image}", err=True)
    election = serving.Election(namespace=lease_namespace, duration=lease_duration) if leader_elect else None
    failures = serving.serve(
        namespace=namespace,
        kubeconfig=kubeconfig,
        context=context,
        image=image,
        interval=interval,
        once=once,
        election=election,
    )
    if once and failures:
        for failure in failures:
            click.echo(f"error: {failure}", err=True)
        sys.exit(int(errors.ExitCode.ERROR))


@command.command("execute", context_settings={"ignore_unknown_options": True})
@click.option("--termination-log", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("/dev/termination-log"), show_default=True,
              help="Where to write the run's summary (the pod's termination message).")  # fmt: skip
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED)
def execute(termination_log: Path, run_args: tuple[str, ...]) -> None:
    """Run ``chaoskit run RUN_ARGS`` and leave a JSON summary of its journal in TERMINATION_LOG.

    What an operator Job's container runs; exits with ``chaoskit run``'s exit code.
    """
    from chaoskit.cli import main
    from chaoskit.operator import summaries

    args = list(run_args)
    journal = (
        Path(args[args.index("--journal") + 1]) if "--journal" in args[:-1] else Path("chaoskit-journal.json")
    )
    exit_code = int(errors.ExitCode.ERROR)
    try:
        result = main.cli.main(["run", *args], prog_name="chaoskit", standalone_mode=False)
        exit_code = result if isinstance(result, int) else 0
    except SystemExit as e:
        exit_code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except click.exceptions.Exit as e:
        exit_code = e.exit_code
    except click.ClickException as e:
        e.show()
        exit_code = int(errors.ExitCode.INVALID)
    finally:
        text = summaries.dumps(summaries.of_run(journal, exit_code))
        try:
            termination_log.write_text(text, encoding="utf-8")
        except OSError as e:
            click.echo(f"error: can't write the summary to {termination_log}: {e.strerror}", err=True)
        click.echo(text, err=True)
    sys.exit(exit_code)
