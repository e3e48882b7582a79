"""What the NBD tests share: the tools they need, and credentials as real clients take them.

`requires(...)` marks a test with the outside tools it runs (qemu-io, nbdinfo...):
missing, they skip it on a laptop and fail it under CI=true (``conftest.require_tool``).
A credentials directory holds ``ca-cert.pem``, ``client-cert.pem`` and
``client-key.pem``, the names qemu's ``tls-creds-x509`` and libnbd's
``tls-certificates`` read.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from cinderblock.storage_node.nbd.certificates import KeyPair

NBD_TOOLS = ("qemu-io", "qemu-img", "nbdinfo", "nbdcopy", "openssl")


def requires(*tools: str) -> pytest.MarkDecorator:
    """The test runs these tools: conftest's one rule (``@pytest.mark.tools``) skips it
    on a laptop without them and fails it under CI=true."""
    return pytest.mark.tools(*tools)


def write_credentials(directory: Path, ca_cert: str, client: KeyPair | None) -> Path:
    """A credentials directory; without `client`, only the CA (a client with no key)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca-cert.pem").write_text(ca_cert)
    if client is not None:
        (directory / "client-cert.pem").write_text(client.cert)
        (directory / "client-key.pem").write_text(client.key)
        (directory / "client-key.pem").chmod(0o600)
    return directory


def nbds_uri(host: str, port: int, export: str, credentials: Path | None) -> str:
    """The URI nbdinfo and nbdcopy take: TLS, with the client's certificate if given."""
    query = f"?tls-certificates={credentials}" if credentials is not None else ""
    return f"nbds://{host}:{port}/{export}{query}"


def plain_uri(host: str, port: int, export: str) -> str:
    return f"nbd://{host}:{port}/{export}"


def qemu_tls(host: str, port: int, export: str, credentials: Path) -> list[str]:
    """The arguments qemu-io and qemu-img take for an export over TLS (options last)."""
    return ["--object", f"tls-creds-x509,id=tls0,dir={credentials},endpoint=client",
            "--image-opts",
            f"driver=nbd,host={host},port={port},export={export},tls-creds=tls0"]


def client_context(credentials: Path, with_certificate: bool = True) -> ssl.SSLContext:
    """A Python TLS client context from a credentials directory (for raw clients)."""
    context = ssl.create_default_context(cafile=str(credentials / "ca-cert.pem"))
    if with_certificate:
        context.load_cert_chain(credentials / "client-cert.pem", credentials / "client-key.pem")
    return context
