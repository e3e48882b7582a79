"""Break a process's TCP connections, as a partition that lasted until TCP gave up does.

``ss -K`` (iproute2; root, and a kernel with ``CONFIG_INET_DIAG_DESTROY``) aborts a
socket in the kernel: what was on its way on it, in the sender's buffers, is lost, and
both ends see the connection reset. ZeroMQ then drops what its ROUTER sockets held for
that peer and reconnects its DEALER sockets, under the routing id they had: the same
process, back on a new connection. A frozen process (SIGSTOP) still reads, once thawed,
the bytes that had reached its own socket before the abort; to lose what a peer sends
it, break the connection before the peer sends.

Used by ``bench.chaos --cut`` and the export sweep's e2e test.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

ESTABLISHED = "01"  # /proc/net/tcp's state column


def socket_inodes(pid: int) -> set[str]:
    """The inode numbers of the sockets process ``pid`` holds (``/proc/PID/fd``)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:["):
                inodes.add(link[len("socket:["):-1])
    return inodes


def connections(pid: int) -> list[tuple[int, int]]:
    """(local port, remote port) of each established TCP connection ``pid`` holds."""
    inodes = socket_inodes(pid)
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == ESTABLISHED and fields[9] in inodes:
                    found.append((int(fields[1].rpartition(":")[2], 16),
                                  int(fields[2].rpartition(":")[2], 16)))
    return found


def break_connections(pid: int, remote_port: int | None = None) -> int:
    """Abort (``ss -K``, both ends) the TCP connections ``pid`` holds, or only those to
    ``remote_port``. Returns how many were broken; raises ``CalledProcessError`` if
    ``ss`` fails and ``OSError`` if it is missing."""
    ours = [(local, remote) for local, remote in connections(pid)
            if remote_port is None or remote == remote_port]
    for local, remote in ours:
        subprocess.run(["ss", "-K", "-t", f"( sport = :{local} and dport = :{remote} ) or "
                        f"( sport = :{remote} and dport = :{local} )"],
                       check=True, capture_output=True, timeout=10)
    return len(ours)
