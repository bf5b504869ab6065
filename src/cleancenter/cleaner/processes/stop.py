"""Ending one process the check found, without ever hitting a pid reused since the scan."""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from pathlib import Path

from cleancenter.cleaner.processes.info import PF_KTHREAD
from cleancenter.cleaner.processes.procfs import _read_stat

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is optional on Linux
    psutil = None  # type: ignore[assignment]


def stop_process(pid: int, start_time: float | None, proc_root: Path = Path("/proc"), *,
                 timeout: float = 5.0) -> str:
    """Stop one process, only if it is still the one that was found: same start time.

    SIGSTOP first, so it cannot react (fork, respawn a partner) between the check and the
    kill; on Linux through a pidfd, so the signal cannot reach a pid reused in between.
    Refuses pid 1, the cleaner itself and kernel threads. Returns what happened."""
    if pid <= 1:
        return "refused: pid 1 (init) is never stopped"
    if pid == os.getpid():
        return "refused: that is the cleaner's own process"
    if start_time is None:
        return "refused: start time unknown, a reused pid cannot be ruled out"
    if sys.platform == "win32" or not proc_root.is_dir():
        return _stop_psutil(pid, start_time, timeout)
    stat = _read_stat(proc_root, pid)
    if stat is None or stat.state in ("Z", "X"):
        return "gone: already exited"
    if stat.flags & PF_KTHREAD or pid == 2 or stat.ppid == 2:
        return "refused: kernel thread"
    if float(stat.start_time) != float(start_time):
        return "skipped: pid reused by another program (start time differs)"
    pidfd = None
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None  # old kernel: fall back to kill(), with the start time checked again
    try:
        again = _read_stat(proc_root, pid)
        if again is None or float(again.start_time) != float(start_time):
            return "gone: exited before it was stopped"
        try:
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                if pidfd is not None:
                    signal.pidfd_send_signal(pidfd, sig)
                else:
                    os.kill(pid, sig)
        except ProcessLookupError:
            return "gone: exited before it was stopped"
        except PermissionError:
            return "failed: permission denied (run the cleaner as administrator/root)"
        if _wait_gone(pid, start_time, proc_root, pidfd, timeout):
            return "stopped"
        return f"failed: still running {timeout:g} s after SIGKILL"
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _wait_gone(pid: int, start_time: float, proc_root: Path, pidfd: int | None,
               timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    if pidfd is not None:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if poller.poll(int(timeout * 1000)):
            return True
    while time.monotonic() < deadline:
        stat = _read_stat(proc_root, pid)
        if stat is None or stat.state in ("Z", "X") or float(stat.start_time) != start_time:
            return True  # exited (a zombie waits only for its parent to collect it)
        time.sleep(0.02)
    return False


def _stop_psutil(pid: int, start_time: float, timeout: float) -> str:
    if psutil is None:
        return "failed: no way to stop processes here (psutil missing)"
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - float(start_time)) > 1e-3:
            return "skipped: pid reused by another program (start time differs)"
        if sys.platform == "win32" and pid == 4:
            return "refused: kernel (System)"
        proc.suspend()
        proc.kill()
        proc.wait(timeout)
    except psutil.NoSuchProcess:
        return "gone: already exited"
    except psutil.AccessDenied:
        return "failed: permission denied (run the cleaner as administrator/root)"
    except psutil.TimeoutExpired:
        return f"failed: still running {timeout:g} s after kill"
    return "stopped"
