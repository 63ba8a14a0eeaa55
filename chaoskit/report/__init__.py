"""chaoskit.report."""
