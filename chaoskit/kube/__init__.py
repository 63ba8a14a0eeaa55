"""The Kubernetes client both the kubernetes driver and the operator use: which cluster
(``kubeconfigs``), a JSON view of its API (``apis``), the marks chaoskit leaves on what it changes
(``marks``) and the ConfigMap halt lever (``haltlevers``).

Only this package, the kubernetes driver and the operator import the ``kubernetes`` library, and
only inside functions, so that importing chaoskit stays fast.
"""
