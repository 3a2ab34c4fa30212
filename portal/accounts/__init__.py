"""Users, experts, password hashing, API tokens and login throttling."""
