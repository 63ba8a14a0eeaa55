"""chaoskit.engine."""
