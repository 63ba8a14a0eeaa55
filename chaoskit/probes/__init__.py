"""chaoskit.probes."""
