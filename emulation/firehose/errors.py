"""Firehose's error codes, as exception names."""


class InvalidArgumentException(ValueError):
    """A delivery stream configuration the emulation cannot run (named like Firehose's error)."""
