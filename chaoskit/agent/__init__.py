"""The node agent (``chaoskit agent``): a small authenticated HTTP server on each node that applies
faults inside the node's containers and pods on behalf of a run elsewhere, records each one with
the run's id in a ledger of its own, and reverts what a run that stopped renewing its lease left.

``records`` (its ledger and the leases), ``locating`` (a target to a host pid), ``applying`` (the
faults), ``serving`` (the HTTP API and the sweeper).
"""
