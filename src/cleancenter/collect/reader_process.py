"""Run a reader (a producer of picklable batches) in a child process.

Parsing a honeypot log and inserting it into the catalog are both CPU work in Python; in
one process they take turns, in two they overlap (threads do not help: the GIL). The
child is forked, so it inherits the reader without pickling it, and it dies with its
parent: a ``kill -9`` of the ingest never leaves a reader behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from queue import Empty, Full
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
_DONE = "__reader-done__"
_PR_SET_PDEATHSIG = 1


class StopSignal(Protocol):
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class ReaderFailed(RuntimeError):
    """The reader process raised, or died."""


@dataclass
class _Failure:
    text: str


def fork_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def read_in_child(
    make_reader: Callable[[StopSignal], Iterable[T]],
    *,
    stop: threading.Event | None = None,
    depth: int = 3,
    on_child_start: Callable[[], None] | None = None,
) -> Iterator[T]:
    """Yield what ``make_reader(child_stop)`` yields, produced in a forked child.

    ``stop`` (set by the parent, e.g. on SIGTERM) is passed on to the child, whose reader
    should then finish its current item and end. ``on_child_start`` runs first in the
    child (to drop connections inherited from the parent, say).
    """
    ctx = multiprocessing.get_context("fork")
    queue: Any = ctx.Queue(maxsize=depth)
    child_stop = ctx.Event()
    parent = os.getpid()
    process = ctx.Process(
        target=_child_main,
        args=(make_reader, queue, child_stop, parent, on_child_start),
        name="cleancenter-reader",
        daemon=True,
    )
    process.start()
    finished = False
    try:
        while True:
            if stop is not None and stop.is_set():
                child_stop.set()
            try:
                item = queue.get(timeout=0.2)
            except Empty:
                if not process.is_alive():
                    raise ReaderFailed(
                        f"the reader process ended without finishing (exit code "
                        f"{process.exitcode})"
                    ) from None
                continue
            if isinstance(item, str) and item == _DONE:
                finished = True
                return
            if isinstance(item, _Failure):
                raise ReaderFailed(item.text)
            yield item
    finally:
        child_stop.set()
        if not finished:
            _drain(queue)
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
        queue.close()


def _drain(queue: Any) -> None:
    with contextlib.suppress(Exception):
        while True:
            queue.get_nowait()


def _die_with_parent() -> None:
    name = ctypes.util.find_library("c")
    if name:
        with contextlib.suppress(Exception):
            ctypes.CDLL(name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _child_main(
    make_reader: Callable[[StopSignal], Iterable[Any]],
    queue: Any,
    stop: Any,
    parent: int,
    on_child_start: Callable[[], None] | None,
) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def put(item: Any) -> bool:
        while True:
            if os.getppid() != parent:
                os._exit(0)  # orphaned: nobody will store what we read
            try:
                queue.put(item, timeout=0.5)
                return True
            except Full:
                if stop.is_set():
                    return False

    try:
        if on_child_start is not None:
            on_child_start()
        for item in make_reader(stop):
            if not put(item):
                break
        put(_DONE)
    except BaseException:
        put(_Failure(traceback.format_exc()))
    finally:
        queue.close()
        queue.join_thread()
