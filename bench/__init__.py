"""chaoskit's benchmarks: scripts that print figures (never pass/fail timings). ``python -m bench``."""
