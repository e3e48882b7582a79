"""The client library: the public face of cinderblock for programs.

    from cinderblock.protocol.client import Client, SyncClient

``Client`` is async first; ``SyncClient`` wraps it for scripts. Errors are typed
per code (``cinderblock.protocol.wire.errors``).
"""

from cinderblock.protocol.client.client import Client, SyncClient

__all__ = ["Client", "SyncClient"]
