"""What runs produce for people and CI, computed from journals: checks, the resilience score,
JUnit XML, HTML and Markdown reports, the CI gate's decision and the SQLite run history."""
