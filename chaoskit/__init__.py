"""chaoskit: chaos-engineering experiments in YAML, faults that always revert, measured recovery."""

__version__ = "0.1.0"

__all__ = ["__version__"]
