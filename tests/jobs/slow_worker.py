"""Test-only entry point: ``cleancenter worker`` with hooks that slow tasks down.

It lives under tests/ (never installed with the package), so no production worker can
turn these hooks on. ``CCTEST_DELAY``: seconds added to every task (a busy worker);
``CCTEST_SLOW_SHA256`` + ``CCTEST_SLOW_MARK``: the first task of that sample writes the
mark (the pid of its worker's main process) and then sleeps, so a test can kill that
worker while it holds the task; later attempts run at normal speed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from cleancenter.analyze.service import TaskResult
from cleancenter.analyze.service import analyze_sample as _real
from cleancenter.jobs import tasks

_delay = float(os.environ.get("CCTEST_DELAY", "0") or 0)
_slow = os.environ.get("CCTEST_SLOW_SHA256")
_mark = Path(os.environ.get("CCTEST_SLOW_MARK", "/nonexistent/mark"))


def _hooked(sha256: str, path: str, name: str | None, timeout: float) -> TaskResult:
    if _delay:
        time.sleep(_delay)
    if sha256 == _slow and not _mark.exists():
        tmp = _mark.with_suffix(".tmp")
        tmp.write_text(str(os.getppid()))
        tmp.rename(_mark)
        time.sleep(120)
    return _real(sha256, path, name, timeout)


vars(tasks)["analyze_sample"] = _hooked  # what the task calls, in every pool process

if __name__ == "__main__":
    from cleancenter.cli import main

    sys.argv = ["cleancenter", *sys.argv[1:]]
    main()
