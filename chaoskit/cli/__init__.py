"""chaoskit.cli."""
