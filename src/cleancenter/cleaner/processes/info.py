"""What every process view shares: the record of one process, the `ProcessView` protocol
the check is written against, and the caps and markers the views and the check agree on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from cleancenter.cleaner.network import Connection

PF_KTHREAD = 0x00200000  # include/linux/sched.h: the task is a kernel thread
DELETED = " (deleted)"
EXE_CAP = 128 * 1024 * 1024  # larger running images are not hashed (and named as such)
MEMORY_CAP = 64 * 1024 * 1024  # bytes of memory read per process for `scan_memory`
# hidden-pid probing: at least up to min(pid_max, PROBE_CAP), and past the highest pid seen
PROBE_CAP = 65536
PROBE_MARGIN = 4096
# memory mappings that cannot be read through /proc/pid/mem (or only with an error)
UNREADABLE_MAPPINGS = frozenset({"[vvar]", "[vvar_vclock]", "[vsyscall]"})


@dataclass
class ProcessInfo:
    """One process as a view sees it. ``exe`` has no " (deleted)" suffix; ``exe_deleted``
    says the running image is gone from disk and ``exe_replaced`` that another file now
    sits at its path (what a package upgrade does). ``start_time`` is in clock ticks since
    boot (/proc) or seconds since the epoch (psutil); it tells a pid from its reuse."""

    pid: int
    ppid: int
    name: str
    exe: str | None = None
    exe_deleted: bool = False
    cmdline: list[str] = field(default_factory=list)
    uid: int | None = None
    start_time: float | None = None
    kernel_thread: bool = False
    exe_replaced: bool = False

    @property
    def exe_display(self) -> str | None:
        if self.exe is None:
            return None
        return self.exe + DELETED if self.exe_deleted else self.exe

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessInfo:
        names = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in names}
        values["cmdline"] = [str(part) for part in values.get("cmdline") or []]
        return cls(**values)


@dataclass(frozen=True)
class Listing:
    """One way of enumerating pids. ``limit`` is the highest pid the source covers (a
    probe stops somewhere); a pid above it is not "missing" from this source."""

    name: str
    pids: frozenset[int]
    limit: int | None = None

    def misses(self, pid: int) -> bool:
        return pid not in self.pids and (self.limit is None or pid <= self.limit)


class ProcessView(Protocol):
    """What the process check needs from a machine; ``errors`` collects what could not
    be read (permission, races), which is reported but never fatal."""

    system: str
    live: bool  # this machine, right now (not a recording or a copied /proc tree)
    errors: list[str]

    def processes(self) -> list[ProcessInfo]: ...

    def process(self, pid: int) -> ProcessInfo | None: ...

    def read_executable(self, pid: int, limit: int = EXE_CAP) -> bytes | None: ...

    def stat_executable(self, pid: int) -> os.stat_result | None: ...

    def listing_sources(self) -> list[Listing]: ...

    def memory_regions(self, pid: int, cap: int) -> Iterator[tuple[int, bytes]]: ...

    def connections(self) -> list[Connection]: ...


def sys_system() -> str:
    """The system this cleaner runs on, in the words the behaviour table uses."""
    return "windows" if sys.platform == "win32" else \
        "linux" if sys.platform.startswith("linux") else sys.platform
