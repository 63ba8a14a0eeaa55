"""The demo system ``chaoskit demo`` runs and the quickstart experiments: a frontend HTTP service
calling a backend service through chaoskit's embedded fault proxy (standard library only)."""
