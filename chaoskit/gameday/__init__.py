"""GameDays: plans of several experiments run as one event (in order or in parallel), their
schedules (cron or random, windows, blackouts, jitter) and the daemon that runs them on time."""
