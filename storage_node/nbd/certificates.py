"""The node's certificate authority for private NBD exports, made by the openssl command.

Cinder's iSCSI targets each get a CHAP secret handed out in ``connection_info``; here
each attachment's export gets an x509 client certificate (TLS-PSK has no server side
in Python's ssl). Layout of the node's ``<host>.tls`` directory (0700):

    ca-key.pem      0600  the node's CA key, made on first start; never leaves the node
    ca-cert.pem           the CA certificate, handed to clients to verify the server
    server-key.pem  0600  the NBD server's key, remade with its certificate at every start
    server-cert.pem       for the node's storage address (IP or DNS subjectAltName)

A client certificate names its attachment in its CN and is signed by the CA. The CA
alone does not grant access: the server keeps, per export, the SHA-256 fingerprint of
the one certificate issued for it, so removing the export revokes the certificate
(no CRL to distribute). Client keys are not kept here; the export table keeps them so
that ``node.export`` repeated after a timeout answers the same credentials.

Every key and certificate comes from ``openssl`` (no home-made cryptography): P-256 EC
keys, ten-year certificates with random serials, key usages that GnuTLS clients
(qemu, libnbd) check. openssl writes into a private temporary directory; files are
written with their final modes first and renamed into place, so a crash leaves either
the old file or the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import os
import re
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

OPENSSL = "openssl"
OPENSSL_TIMEOUT_S = 30.0
VALID_DAYS = 3650
CA_KEY, CA_CERT = "ca-key.pem", "ca-cert.pem"
SERVER_KEY, SERVER_CERT = "server-key.pem", "server-cert.pem"

# The [req] part keeps openssl from reading the system's openssl.cnf or prompting; then
# the extensions of the kind of certificate being made.
_REQ = "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n"
_EXTENSIONS = {
    "ca": "basicConstraints = critical, CA:TRUE\n"
          "keyUsage = critical, keyCertSign, cRLSign\n"
          "subjectKeyIdentifier = hash\n",
    "server": "basicConstraints = critical, CA:FALSE\n"
              "keyUsage = critical, digitalSignature\n"
              "extendedKeyUsage = serverAuth\n"
              "subjectKeyIdentifier = hash\n"
              "authorityKeyIdentifier = keyid\n"
              "subjectAltName = {alt_name}\n",
    "client": "basicConstraints = critical, CA:FALSE\n"
              "keyUsage = critical, digitalSignature\n"
              "extendedKeyUsage = clientAuth\n"
              "subjectKeyIdentifier = hash\n"
              "authorityKeyIdentifier = keyid\n",
}
_COMMON_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .:_-]{0,63}")
_NEW_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc")


class CertificateError(Exception):
    """openssl could not make a key or certificate, or the CA on disk is incomplete."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A certificate and its private key, both PEM."""

    cert: str
    key: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert)


def fingerprint(cert_pem: str) -> str:
    """SHA-256 of the certificate's DER, in hex: what the server compares."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_pem)).hexdigest()


def der_fingerprint(cert_der: bytes) -> str:
    return hashlib.sha256(cert_der).hexdigest()


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write `text` to `path` atomically, with `mode` from the first byte on."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "w") as file:
        os.fchmod(fd, mode)  # an older tmp file keeps its mode through O_CREAT
        file.write(text)
        file.flush()
        os.fsync(fd)
    os.replace(tmp, path)


class NodeAuthority:
    """A node's CA in `directory`: opened (made on first use) by `open`, then issues."""

    def __init__(self, directory: Path, ca_cert: str) -> None:
        self.directory = directory
        self.ca_cert = ca_cert

    @classmethod
    async def open(cls, directory: Path, common_name: str) -> NodeAuthority:
        """Load the CA kept in `directory`, or make it if there is none yet."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        key_path, cert_path = directory / CA_KEY, directory / CA_CERT
        if cert_path.exists() and not key_path.exists():
            raise CertificateError(
                f"{cert_path} exists but {key_path} does not: restore the key, or remove "
                f"{directory} to make a new CA (every attachment's credentials change)")
        if not cert_path.exists():
            ca = await _issue(directory, "ca", f"cinderblock NBD CA {common_name}")
            write_private(key_path, ca.key)
            write_private(cert_path, ca.cert, 0o644)  # last: its presence means "made"
        return cls(directory, cert_path.read_text())

    async def issue_server(self, address: str) -> None:
        """A new server key and certificate for `address`, where `server_context` reads
        them (remade at every start: clients trust the CA, so nothing they hold changes)."""
        pair = await _issue(self.directory, "server", address, self, _alt_name(address))
        write_private(self.directory / SERVER_KEY, pair.key)
        write_private(self.directory / SERVER_CERT, pair.cert, 0o644)

    async def issue_client(self, name: str) -> KeyPair:
        """A client key and certificate whose CN is `name` (an attachment's id, at most 64
        characters as X.509 allows); not kept here."""
        return await _issue(self.directory, "client", name, self)

    def server_context(self) -> ssl.SSLContext:
        """TLS 1.2+ server context that demands a client certificate signed by this CA."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_cert_chain(self.directory / SERVER_CERT, self.directory / SERVER_KEY)
        context.load_verify_locations(cadata=self.ca_cert)
        return context


def _alt_name(address: str) -> str:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return f"DNS:{address}"
    return f"IP:{address}"


async def _issue(
    directory: Path, kind: str, common_name: str, issuer: NodeAuthority | None = None,
    alt_name: str = "",
) -> KeyPair:
    """Run ``openssl req -x509`` once: a new key and its certificate, self-signed (the
    CA) or signed by `issuer`, made in a private temporary directory under `directory`."""
    if not _COMMON_NAME.fullmatch(common_name):
        raise CertificateError(f"{common_name[:80]!r} cannot name a certificate")
    with tempfile.TemporaryDirectory(dir=directory, prefix=".issue-") as scratch:
        work = Path(scratch)
        config = work / "openssl.cnf"
        config.write_text(f"{_REQ}[{kind}]\n{_EXTENSIONS[kind].format(alt_name=alt_name)}")
        argv = [OPENSSL, "req", "-x509", *_NEW_KEY, "-keyout", str(work / "key.pem"),
                "-out", str(work / "cert.pem"), "-days", str(VALID_DAYS),
                "-subj", f"/CN={common_name}", "-config", str(config), "-extensions", kind]
        if issuer is not None:
            argv += ["-CA", str(issuer.directory / CA_CERT),
                     "-CAkey", str(issuer.directory / CA_KEY)]
        await _run(argv)
        return KeyPair((work / "cert.pem").read_text(), (work / "key.pem").read_text())


async def _run(argv: list[str]) -> None:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
    except FileNotFoundError as exc:
        raise CertificateError(f"{OPENSSL} is not installed: it makes the NBD "
                               f"certificates (Debian package openssl)") from exc
    try:
        async with asyncio.timeout(OPENSSL_TIMEOUT_S):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if process.returncode != 0:
        text = output.decode(errors="replace").strip()[-500:]
        raise CertificateError(f"openssl req failed ({process.returncode}): {text}")
