"""chaoskit's pytest plugin (entry point ``pytest11``): fixtures for faults and steady state.

Being written; registered now so that installing chaoskit never breaks a test run.
"""
