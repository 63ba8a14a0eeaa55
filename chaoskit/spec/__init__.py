"""chaoskit.spec."""
