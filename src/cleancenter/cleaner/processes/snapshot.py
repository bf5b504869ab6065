"""A recorded process listing (JSON), so the Windows rules can be run and tested on any
machine, and a machine can be judged from what was recorded on it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from cleancenter.cleaner.network import Connection
from cleancenter.cleaner.processes.info import EXE_CAP, Listing, ProcessInfo


class SnapshotView:
    """A recorded listing (JSON): either a list of process dicts, or an object with
    ``processes``, optional ``connections``, ``system`` and ``listings`` (name -> pids,
    as recorded by independent enumerations on the machine)."""

    def __init__(self, path: Path, *, system: str = "windows") -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, list):
            data = {"processes": data}
        self.system = str(data.get("system", system))
        self.live = False
        self.errors: list[str] = []
        self._processes = [ProcessInfo.from_dict(item) for item in data.get("processes", [])]
        self._connections = [Connection.from_dict(c) for c in data.get("connections", [])]
        self._listings = {str(name): frozenset(int(p) for p in pids)
                          for name, pids in (data.get("listings") or {}).items()}

    def processes(self) -> list[ProcessInfo]:
        return list(self._processes)

    def process(self, pid: int) -> ProcessInfo | None:
        return next((p for p in self._processes if p.pid == pid), None)

    def read_executable(self, pid: int, limit: int = EXE_CAP) -> bytes | None:
        return None  # a listing records names, not images

    def stat_executable(self, pid: int) -> os.stat_result | None:
        return None

    def listing_sources(self) -> list[Listing]:
        if not self._listings:
            return [Listing("snapshot", frozenset(p.pid for p in self._processes))]
        return [Listing(name, pids) for name, pids in sorted(self._listings.items())]

    def memory_regions(self, pid: int, cap: int) -> Iterator[tuple[int, bytes]]:
        return iter(())

    def connections(self) -> list[Connection]:
        return list(self._connections)
