"""cinderblock: a block-storage control plane shaped like OpenStack Cinder.

Every part installs under this one namespace (the repository's top-level folders are
mapped here by ``package-dir`` in pyproject.toml; this package's own two files live in
``actors/cli/namespace_root/`` because the repository's top level is fixed):

    cinderblock.protocol       the wire, the messages and the client library (bottom layer)
    cinderblock.actors         actor runtime, flow engine, gateway, quota, scheduler, CLI
    cinderblock.storage_node   the per-host actor, its flows, backends and NBD export
    cinderblock.tui            the dashboard (sees the cluster through the client library)
    cinderblock.bench          throughput, scheduler and ceiling benchmarks

Programs use ``from cinderblock.protocol.client import Client, SyncClient``.
"""


def __getattr__(name: str) -> str:
    """``__version__``, pyproject.toml's (one version, where it is set), read from the
    installed metadata when first asked for: reading it imports importlib.metadata and
    scans the installed packages, which no actor but the REST front needs."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("cinderblock")
    except PackageNotFoundError:
        found = "unknown (not installed)"
    globals()["__version__"] = found
    return found
