"""Seeded synthetic retail world and its change streams (pure: no AWS, no I/O beyond files)."""
