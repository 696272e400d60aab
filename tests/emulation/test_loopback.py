"""Loopback-only listening (:mod:`emulation.loopback`): wildcard binds become loopback binds in
every process started with the library preloaded (the Flink job's JVM and Python workers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from emulation.loopback import LIBRARY, library, preloaded

pytestmark = pytest.mark.skipif(
    library() is None, reason=f"{LIBRARY} is not built: set-up found no C compiler (cc)"
)

_PROBE = r"""
import json, socket
out = {}
four = socket.socket(); four.bind(("0.0.0.0", 0)); four.listen()
out["ipv4_wildcard"] = four.getsockname()[0]
dual = socket.socket(socket.AF_INET6); dual.bind(("::", 0)); dual.listen()
out["ipv6_wildcard"] = dual.getsockname()[0]
socket.create_connection(("127.0.0.1", dual.getsockname()[1]), timeout=5).close()
only6 = socket.socket(socket.AF_INET6)
only6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); only6.bind(("::", 0))
out["ipv6_only_wildcard"] = only6.getsockname()[0]
named = socket.socket(); named.bind(("127.0.0.1", 0))
out["named"] = named.getsockname()[0]
print(json.dumps(out))
"""


def test_wildcard_binds_become_loopback_binds() -> None:
    env = preloaded({k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    assert json.loads(done.stdout) == {
        "ipv4_wildcard": "127.0.0.1",
        "ipv6_wildcard": "::ffff:127.0.0.1",  # an IPv4 client on 127.0.0.1 still connects
        "ipv6_only_wildcard": "::1",
        "named": "127.0.0.1",
    }


def test_without_the_library_a_wildcard_bind_stays_a_wildcard_bind() -> None:
    """The probe's counterpart: what the library changes is not the machine's default."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    code = "import socket; s=socket.socket(); s.bind(('0.0.0.0', 0)); print(s.getsockname()[0])"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    assert done.stdout.strip() == "0.0.0.0"


def test_preloading_keeps_other_libraries_and_adds_it_once() -> None:
    env = preloaded({"LD_PRELOAD": "/opt/other.so"})
    assert env["LD_PRELOAD"] == f"{LIBRARY}{os.pathsep}/opt/other.so"
    assert preloaded(env)["LD_PRELOAD"] == env["LD_PRELOAD"]
