"""Holding the writes to a set of files while they are snapshotted together.

A group snapshot must be crash-consistent: no write a client was told is done after the
first snapshot began may be in any of them, and every write told done before must be
in all. Each exported file has one ``WriteGate`` (its exports share it). A write
(WRITE, TRIM, WRITE_ZEROES) passes through it; ``held`` closes the gates of the files
asked, waits for the writes already under way to finish, and yields: while it is held
new writes wait (their clients are not answered), reads go on. Gates are kept by path,
made when a file is first exported or held, so that an export added meanwhile waits
too.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator, Iterable


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
    """Every exported (or held) file's gate, by path."""

    def __init__(self) -> None:
        self._gates: dict[pathlib.Path, WriteGate] = {}

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
        gates = [self.of(p) for p in dict.fromkeys(paths)]
        for gate in gates:  # all closed before any is waited on: one instant for all
            gate.close()
        try:
            for gate in gates:
                await gate.drained()
            yield
        finally:
            for gate in gates:
                gate.reopen()
