"""Charters (versioned rules an expert publishes) and credit packs. Moves no money."""
