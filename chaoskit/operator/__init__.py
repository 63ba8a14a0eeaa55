"""The Kubernetes operator: ChaosExperiment and ChaosSchedule resources run as Jobs.

Deciding (``jobs``, ``statuses``, ``scheduling``) is plain functions on API objects, testable
without a cluster; ``reconciling`` applies those decisions through the API and ``watching`` runs
it in a loop woken by watches. ``chaoskit operator run`` starts it.
"""
