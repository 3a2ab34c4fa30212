"""The portal: usage-based billing and booking for independent experts."""
