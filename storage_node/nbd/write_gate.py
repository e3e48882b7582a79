"""Holding the writes to a set of files while they are copied as of one instant.

A snapshot or a clone of a volume a guest writes must be crash-consistent (what a power
cut would have left): no write a client was told is done after the copy began may be in
it, and every write told done before must be; a group snapshot's set likewise, all of
them at one instant. Each exported file has one ``WriteGate`` (its exports share it). A
write (WRITE, TRIM, WRITE_ZEROES) passes through it; ``held`` closes the gates of the
files asked, waits for the writes already under way to finish, and yields: while it is
held new writes wait (their clients are not answered), reads go on. Gates are kept by
path, made when a file is first exported or held, so that an export added meanwhile
waits too; one a hold made goes with it unless the file is exported by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator, Callable, Iterable


class WriteGate:
    """The writes to one file: counted while they run, held while a snapshot is taken."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writing = 0
        self._holds = 0

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """One write: waits while the gate is held."""
        while not self._open.is_set():
            await self._open.wait()
        self._writing += 1  # no await since the gate was seen open: counted before a hold
        self._idle.clear()
        try:
            yield
        finally:
            self._writing -= 1
            if not self._writing:
                self._idle.set()

    def close(self) -> None:
        self._holds += 1
        self._open.clear()

    async def drained(self) -> None:
        await self._idle.wait()

    def reopen(self) -> None:
        self._holds -= 1
        if not self._holds:
            self._open.set()

    @property
    def held(self) -> bool:
        return self._holds > 0


class WriteGates:
    """Every exported (or held) file's gate, by path; ``exported`` says whether a path
    is exported now (a gate a hold made is kept after it only if so)."""

    def __init__(self, exported: Callable[[pathlib.Path], bool]) -> None:
        self._gates: dict[pathlib.Path, WriteGate] = {}
        self._exported = exported

    def __contains__(self, path: object) -> bool:
        return path in self._gates

    def of(self, path: pathlib.Path) -> WriteGate:
        return self._gates.setdefault(path, WriteGate())

    def forget(self, path: pathlib.Path) -> None:
        """A file no export serves: its gate goes unless a snapshot holds it."""
        gate = self._gates.get(path)
        if gate is not None and not gate.held:
            del self._gates[path]

    @contextlib.asynccontextmanager
    async def held(self, paths: Iterable[pathlib.Path]) -> AsyncIterator[None]:
        """The writes to ``paths`` held: new ones wait, those under way have ended."""
        held = {p: self.of(p) for p in paths}
        gates = list(held.values())
        for gate in gates:  # all closed before any is waited on: one instant for all
            gate.close()
        try:
            for gate in gates:
                await gate.drained()
            yield
        finally:
            for path, gate in held.items():
                gate.reopen()
                if not gate.held and not self._exported(path):
                    self.forget(path)
