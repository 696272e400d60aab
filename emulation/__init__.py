"""The local AWS world: one loopback endpoint plus what the emulators do not do.

Public names: :class:`World` (start or connect to the endpoint, hand out guarded boto3 clients,
reset state) and :class:`UnsafeEndpointError`.
"""

from emulation.safety import UnsafeEndpointError
from emulation.world import World

__all__ = ["UnsafeEndpointError", "World"]
