"""chaoskit.operator."""
