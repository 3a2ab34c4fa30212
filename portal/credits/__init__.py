"""Wallets, the credits ledger, lots and holds. Knows nothing of bookings or questions."""
