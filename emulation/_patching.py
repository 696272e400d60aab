"""The gap-fillers that extend the in-process moto server: registered once, installed once.

A gap-filler module marks its ``install_in_process`` with :func:`moto_patch`; the embedded world
calls :func:`install_all` before it starts the server. Each patch runs at most once per process
(moto's classes are process-wide), under one lock, in registration order. Gap-fillers that the
harness drives from outside the server (Firehose delivery, DMS delivery, the Kinesis producer,
Managed Flink applications) need no patch and are not registered here.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

_lock = threading.RLock()
_installed: set[str] = set()
_registry: dict[str, Callable[[], None]] = {}


def moto_patch(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Register ``function`` as the in-process patch ``name``; calling it applies it once."""

    def register(function: Callable[[], None]) -> Callable[[], None]:
        @functools.wraps(function)
        def once() -> None:
            with _lock:
                if name in _installed:
                    return
                function()
                _installed.add(name)
                logger.debug("in-process moto patched: %s", name)

        _registry[name] = once
        return once

    return register


def registered() -> list[str]:
    """The registered patches, in registration order."""
    return list(_registry)


def install_all() -> None:
    """Apply every registered patch (idempotent)."""
    for install in list(_registry.values()):
        install()


@moto_patch("server-dispatch")
def _list_moto_modules_once() -> None:
    """moto's server asks, for every request whose host is not an AWS name (``127.0.0.1``),
    whether the host names one of its modules, by listing its package folder and checking each
    entry is a folder: about 180 system calls a request, half the server's time for a Glue job
    that opens hundreds of staged objects. The folder does not change while the process runs:
    list it once."""
    import moto.backends

    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules
