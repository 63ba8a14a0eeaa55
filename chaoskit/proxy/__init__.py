"""chaoskit.proxy."""
