"""Written questions: asking, answering, billing."""
