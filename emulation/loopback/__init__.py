"""Loopback-only listening for the processes a local run starts (``bind.c``, an LD_PRELOAD
library that set-up builds into ``.dfp/lib/`` with the machine's C compiler).

Flink's local mini-cluster and Apache Beam's gRPC servers bind every interface in code; with the
library preloaded their wildcard binds become loopback binds (see ``bind.c`` for the rules). The
run's own servers (moto, LocalStack's gateway, Spark) already name 127.0.0.1.

Not covered: a process that makes system calls without the C library (none of the run's do), and
a machine without a C compiler, where set-up says so and the run's Flink job listens as it would.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

logger = logging.getLogger(__name__)

LIBRARY = Path(__file__).resolve().parents[2] / ".dfp" / "lib" / "loopback-bind.so"
_warned = False


def free_port() -> int:
    """A loopback port free at the moment of asking (a caller retries if it is taken first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether a server could listen on the loopback ``port`` now (as moto's server binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def library() -> Path | None:
    """The built library, or None (set-up found no C compiler)."""
    return LIBRARY if LIBRARY.is_file() else None


def preloaded(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the library first in ``LD_PRELOAD`` (a copy; unchanged without one)."""
    global _warned
    found = library()
    if found is None:
        if not _warned:
            logger.warning(
                "%s is not built (no C compiler at set-up): Flink's local mini-cluster will "
                "listen on every interface",
                LIBRARY,
            )
            _warned = True
        return dict(env)
    others = [p for p in env.get("LD_PRELOAD", "").split(os.pathsep) if p and p != str(found)]
    return {**env, "LD_PRELOAD": os.pathsep.join([str(found), *others])}
