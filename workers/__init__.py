"""Background work: arq settings, jobs and cron schedules. Jobs call domain services."""
