"""chaoskit.drivers."""
