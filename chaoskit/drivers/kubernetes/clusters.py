"""Which cluster a kubernetes activity talks to: the ``with:`` keys every activity has, the revert
data every fault records, and the run's shared client for that cluster.

What a step leaves out comes from the run's settings (``RunContext.settings``: ``chaoskit run
--context``, the operator's ``--kubeconfig``), then from the environment (``$KUBECONFIG``,
``$CHAOSKIT_KUBE_CONTEXT``), then from the kubeconfig itself.
"""

from __future__ import annotations

from chaoskit.drivers import contract
from chaoskit.durations import Duration
from chaoskit.kube import apis, kubeconfigs


class ClusterArgs(contract.Args):
    """Which cluster to talk to. Mixed into every kubernetes activity's ``with:``."""

    kubeconfig: str | None = None
    """Path of a kubeconfig; default ``$KUBECONFIG``, then ``~/.kube/config``, then in-cluster."""
    context: str | None = None
    """A context of that kubeconfig; default ``chaoskit run --context`` (``$CHAOSKIT_KUBE_CONTEXT``),
    then its current context."""
    in_cluster: bool = False
    """Use the pod's service account (chaoskit running inside the cluster)."""


class Marked(contract.Args):
    expires_after: Duration = 3600.0
    """How long the change may outlive a vanished run before a sweep (``chaoskit recover``) reverts it."""


class ClusterRevert(contract.Revert):
    """Base of the kubernetes faults' revert data: which cluster the change was made in."""

    connection: kubeconfigs.Connection
    """The kubeconfig path and context (never a token), so that ``recover`` reconnects there."""


def connection(args: ClusterArgs, ctx: contract.RunContext) -> kubeconfigs.Connection:
    """The cluster ``args`` point at, the run's settings filling in what they leave out."""
    return kubeconfigs.resolve(
        args.kubeconfig or ctx.settings.get(kubeconfigs.KUBECONFIG_SETTING),
        args.context or ctx.settings.get(kubeconfigs.CONTEXT_SETTING),
        in_cluster=args.in_cluster,
    )


def api(ctx: contract.RunContext, connection: kubeconfigs.Connection) -> apis.Api:
    """The run's shared ``Api`` for ``connection`` (made once, closed at the end of the run)."""
    return ctx.resource(connection.key, lambda: apis.open_api(connection), close=lambda a: a.client.close())


def connect(args: ClusterArgs, ctx: contract.RunContext) -> apis.Api:
    return api(ctx, connection(args, ctx))


def reconnect(revert: ClusterRevert, ctx: contract.RunContext) -> apis.Api:
    """The cluster a fault was injected in, whatever the settings of the run reverting it."""
    return api(ctx, revert.connection)
