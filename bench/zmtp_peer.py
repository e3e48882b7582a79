"""A ZMTP 3.0 CURVE client written by hand, to be the hostile peer libzmq cannot be.

libzmq never lets a multipart message that does not end leave the sender: its pipes
make frames visible to the I/O thread only once the last frame of the message is
written (``ypipe_t::write(value, incomplete)`` flushes up to the last complete
message). So a peer that sends ZMQ_SNDMORE forever grows its own memory, not ours.
A peer that speaks the wire itself has no such limit: this one does the CURVE
handshake of RFC 26 (HELLO, WELCOME, INITIATE, READY) with libsodium's
``crypto_box_easy`` (the copy pyzmq ships, through ctypes), then writes MESSAGE
frames whose ``more`` flag is always set. It is what a test needs to stream a
gigabyte in one never-ending message at a CURVE ROUTER, with a key that the
server's ZAP handler admits (or does not: then the handshake fails before any
frame is taken).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import socket
import struct
from pathlib import Path

import zmq
import zmq.utils.z85

BOX_MAC = 16


def _sodium() -> ctypes.CDLL:
    """libsodium: the copy in pyzmq's wheel, else the system's."""
    wheel = Path(zmq.__file__).parent.parent / "pyzmq.libs"
    found = sorted(glob.glob(str(wheel / "libsodium*.so*"))) or \
        [ctypes.util.find_library("sodium") or "libsodium.so.23"]
    lib = ctypes.CDLL(found[0])
    if lib.sodium_init() < 0:
        raise OSError("libsodium failed to initialise")
    return lib


_lib = _sodium()


def box(message: bytes, nonce: bytes, their_public: bytes, our_secret: bytes) -> bytes:
    out = ctypes.create_string_buffer(len(message) + BOX_MAC)
    if _lib.crypto_box_easy(out, message, ctypes.c_ulonglong(len(message)), nonce,
                            their_public, our_secret) != 0:
        raise ValueError("crypto_box_easy failed")
    return out.raw


def unbox(boxed: bytes, nonce: bytes, their_public: bytes, our_secret: bytes) -> bytes:
    out = ctypes.create_string_buffer(len(boxed) - BOX_MAC)
    if _lib.crypto_box_open_easy(out, boxed, ctypes.c_ulonglong(len(boxed)), nonce,
                                 their_public, our_secret) != 0:
        raise ValueError("a box from the server did not open")
    return out.raw


def keypair() -> tuple[bytes, bytes]:
    public, secret = zmq.curve_keypair()
    return zmq.utils.z85.decode(public), zmq.utils.z85.decode(secret)


class HandshakeRefused(Exception):
    """The server did not admit us (an ERROR command, or it hung up)."""


class ZmtpCurvePeer:
    """One TCP connection speaking ZMTP 3.0 with CURVE (as a DEALER, or ``socket_type``)."""

    def __init__(self, host: str, port: int, server_public_z85: bytes,
                 public_z85: bytes, secret_z85: bytes, socket_type: bytes = b"DEALER"
                 ) -> None:
        self.server = zmq.utils.z85.decode(server_public_z85)
        self.public = zmq.utils.z85.decode(public_z85)
        self.secret = zmq.utils.z85.decode(secret_z85)
        self.short_public, self.short_secret = keypair()
        self.nonce = 1
        self.server_short = b""
        self.sock = socket.create_connection((host, port), timeout=10.0)
        self.sent = 0  # bytes written to the socket
        self.socket_type = socket_type

    def close(self) -> None:
        self.sock.close()

    # ---- the wire ---------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent += len(data)

    def _frame(self, body: bytes, command: bool) -> bytes:
        flags = 0x04 if command else 0x00
        if len(body) > 255:
            return bytes([flags | 0x02]) + struct.pack(">Q", len(body)) + body
        return bytes([flags, len(body)]) + body

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise HandshakeRefused("the server hung up during the handshake")
            data += chunk
        return data

    def _read_command(self) -> bytes:
        flags = self._read_exact(1)[0]
        size = struct.unpack(">Q", self._read_exact(8))[0] if flags & 0x02 else \
            self._read_exact(1)[0]
        return self._read_exact(size)

    def _next_nonce(self) -> bytes:
        self.nonce += 1
        return struct.pack(">Q", self.nonce - 1)

    # ---- the handshake ----------------------------------------------------------
    def handshake(self) -> None:
        """Greeting, HELLO, WELCOME, INITIATE, READY; HandshakeRefused if not admitted."""
        greeting = (b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 0]) +
                    b"CURVE".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31)
        self._write(greeting)
        self._read_exact(64)
        short = self._next_nonce()
        hello_box = box(b"\x00" * 64, b"CurveZMQHELLO---" + short, self.server,
                        self.short_secret)
        self._write(self._frame(b"\x05HELLO\x01\x00" + b"\x00" * 72 + self.short_public +
                                short + hello_box, command=True))
        welcome = self._read_command()
        if not welcome.startswith(b"\x07WELCOME"):
            raise HandshakeRefused(f"expected WELCOME, got {welcome[:16]!r}")
        opened = unbox(welcome[24:168], b"WELCOME-" + welcome[8:24], self.server,
                       self.short_secret)
        self.server_short, cookie = opened[:32], opened[32:128]
        vouch_nonce = os.urandom(16)
        vouch = box(self.short_public + self.server, b"VOUCH---" + vouch_nonce,
                    self.server_short, self.secret)
        metadata = _property(b"Socket-Type", self.socket_type) + _property(b"Identity", b"")
        short = self._next_nonce()
        initiate = box(self.public + vouch_nonce + vouch + metadata,
                       b"CurveZMQINITIATE" + short, self.server_short, self.short_secret)
        self._write(self._frame(b"\x08INITIATE" + cookie + short + initiate, command=True))
        ready = self._read_command()
        if not ready.startswith(b"\x05READY"):
            raise HandshakeRefused(f"the server answered {ready[:16]!r}, not READY")

    # ---- messages ---------------------------------------------------------------
    def frame(self, payload: bytes, more: bool) -> bytes:
        """One MESSAGE frame, encrypted (what ``send_frames`` writes)."""
        short = self._next_nonce()
        sealed = box(bytes([1 if more else 0]) + payload, b"CurveZMQMESSAGEC" + short,
                     self.server_short, self.short_secret)
        return self._frame(b"\x07MESSAGE" + short + sealed, command=False)

    def send_frames(self, payload: bytes, count: int, more: bool = True) -> None:
        """``count`` frames of ``payload`` written in one go, each with ``more`` set."""
        self._write(b"".join(self.frame(payload, more) for _ in range(count)))


def _property(name: bytes, value: bytes) -> bytes:
    return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value
