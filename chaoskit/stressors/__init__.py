"""Resource stressors shared by the drivers that run them (``process.stress_*`` on this host,
``docker.container.stress_*`` inside a container's cgroup and namespaces): the stressor program
(``program.py``, standard library only), its arguments (``loads.py``) and how it is started, found
by its mark and stopped (``spawning.py``)."""
