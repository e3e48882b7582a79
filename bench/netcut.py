"""Break a process's TCP connections, as a partition that lasted until TCP gave up does.

``ss -K`` (iproute2; root, and a kernel with ``CONFIG_INET_DIAG_DESTROY``) aborts a
socket in the kernel: what was on its way on it, in the sender's buffers, is lost, and
both ends see the connection reset. ZeroMQ then drops what its ROUTER sockets held for
that peer and reconnects its DEALER sockets, under the routing id they had: the same
process, back on a new connection. A frozen process (SIGSTOP) still reads, once thawed,
the bytes that had reached its own socket before the abort; to lose what a peer sends
it, break the connection before the peer sends.

Half a cut (``break_dialling_sides`` inside ``resets_dropped``): only the side that
dialled is aborted, and the reset that would tell the other side is dropped (an
nftables table of our own), so the server still holds the old connection when its peer
connects again under the same routing id: the case ``actors.runtime.redial`` mends,
made every time rather than by a race.

Used by ``bench.chaos --cut`` and ``--wedge``, and by e2e tests.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
from collections.abc import Iterable, Iterator
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


def connections(pid: int | None) -> list[tuple[int, int]]:
    """(local port, remote port) of each established TCP connection ``pid`` holds (any
    process's, for None)."""
    inodes = socket_inodes(pid) if pid is not None else None
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == ESTABLISHED and (inodes is None or fields[9] in inodes):
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


def break_dialling_sides(server_port: int, pid: int | None = None) -> int:
    """Abort (``ss -K``) the dialling side only of each TCP connection to this host's
    ``server_port`` (only those process ``pid`` dialled, if given); the server's side
    learns of it from the reset, unless ``resets_dropped``. Returns how many."""
    ours = [local for local, remote in connections(pid) if remote == server_port]
    for local in ours:
        subprocess.run(["ss", "-K", "-t", f"( sport = :{local} and dport = :{server_port} )"],
                       check=True, capture_output=True, timeout=10)
    return len(ours)


_tables = itertools.count()


@contextlib.contextmanager
def resets_dropped(ports: Iterable[int]) -> Iterator[None]:
    """TCP resets sent to ``ports`` on this host dropped meanwhile (``nft``: a table of
    this process's own, removed on the way out), so that a server whose peer's side of
    a connection was aborted keeps its own side open."""
    table = f"cinderblock_resets_{os.getpid()}_{next(_tables)}"
    drops = "".join(f"    tcp dport {port} tcp flags & rst == rst drop\n" for port in ports)
    rules = (f"table inet {table} {{\n  chain out {{\n"
             "    type filter hook output priority 0; policy accept;\n"
             f"{drops}  }}\n}}\n")
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True,
                   capture_output=True, timeout=10)
    try:
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], check=True,
                       capture_output=True, timeout=10)
