"""chaoskit.gameday."""
