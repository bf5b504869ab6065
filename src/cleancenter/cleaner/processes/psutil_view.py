"""Processes through psutil, for Windows, macOS and any machine without a /proc to read."""

from __future__ import annotations

import os
from collections.abc import Iterator

from cleancenter.cleaner.network import Connection, PsutilNetView
from cleancenter.cleaner.processes.info import (
    EXE_CAP,
    PROBE_CAP,
    PROBE_MARGIN,
    Listing,
    ProcessInfo,
    sys_system,
)

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is optional on Linux
    psutil = None  # type: ignore[assignment]


class PsutilView:
    """Processes through psutil. On Windows pids are multiples of 4, so the probe that
    looks for hidden pids steps by 4 there."""

    def __init__(self, *, probe_limit: int | None = None) -> None:
        if psutil is None:
            raise RuntimeError("psutil is not installed")
        self.system = sys_system()
        self.probe_limit = probe_limit
        self.live = True
        self.errors: list[str] = []

    def _info(self, proc: psutil.Process) -> ProcessInfo | None:
        try:
            with proc.oneshot():
                name = proc.name()
                ppid = proc.ppid()
                start = proc.create_time()
                try:
                    exe: str | None = proc.exe() or None
                except psutil.AccessDenied:
                    exe = None
                    self.errors.append(f"pid {proc.pid}: executable path unreadable "
                                       "(access denied)")
                try:
                    cmdline = proc.cmdline()
                except psutil.AccessDenied:
                    cmdline = []
                uid = None
                if hasattr(proc, "uids"):
                    try:
                        uid = proc.uids().real
                    except psutil.AccessDenied:
                        uid = None
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None
        except psutil.Error as exc:
            self.errors.append(f"pid {proc.pid}: {exc}")
            return None
        deleted = False
        if exe is not None and os.path.isabs(exe):
            deleted = not os.path.exists(exe)
        if self.system == "windows":
            kernel = proc.pid in (0, 4)  # System Idle Process, System
        else:
            kernel = exe is None and not cmdline and (ppid == 2 or proc.pid == 2)
        return ProcessInfo(pid=proc.pid, ppid=ppid, name=name, exe=exe, exe_deleted=deleted,
                           cmdline=cmdline, uid=uid, start_time=start, kernel_thread=kernel)

    def processes(self) -> list[ProcessInfo]:
        found = []
        for proc in psutil.process_iter():
            info = self._info(proc)
            if info is not None:
                found.append(info)
        return sorted(found, key=lambda p: p.pid)

    def process(self, pid: int) -> ProcessInfo | None:
        try:
            return self._info(psutil.Process(pid))
        except psutil.Error:
            return None

    def read_executable(self, pid: int, limit: int = EXE_CAP) -> bytes | None:
        info = self.process(pid)
        if info is None or info.exe is None:
            return None
        path = f"/proc/{pid}/exe" if self.system == "linux" else info.exe
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > limit:
                    self.errors.append(f"pid {pid}: executable of {size} bytes not hashed "
                                       f"(over the {limit} byte cap)")
                    return None
                return handle.read(limit + 1)[:limit]
        except OSError as exc:
            self.errors.append(f"pid {pid}: executable unreadable ({exc.strerror})")
            return None

    def stat_executable(self, pid: int) -> os.stat_result | None:
        info = self.process(pid)
        path = f"/proc/{pid}/exe" if self.system == "linux" else info.exe if info else None
        try:
            return os.stat(path) if path else None
        except OSError:
            return None

    def listing_sources(self) -> list[Listing]:
        """psutil's list against a probe with pid_exists (kill(pid, 0) on POSIX,
        OpenProcess on Windows): neither walks a directory a rootkit may filter."""
        listed = frozenset(psutil.pids())
        step = 4 if self.system == "windows" else 1
        limit = self.probe_limit or max(PROBE_CAP, max(listed, default=0) + PROBE_MARGIN)
        probed = set()
        for pid in range(step, limit + 1, step):
            try:
                if psutil.pid_exists(pid):
                    probed.add(pid)
            except (psutil.Error, OSError):
                continue
        return [Listing("psutil.pids", listed), Listing("pid_exists", frozenset(probed), limit)]

    def memory_regions(self, pid: int, cap: int) -> Iterator[tuple[int, bytes]]:
        self.errors.append(f"pid {pid}: memory scan not available through psutil")
        return iter(())

    def connections(self) -> list[Connection]:
        net = PsutilNetView()
        conns = net.connections()
        self.errors += net.errors
        return conns
