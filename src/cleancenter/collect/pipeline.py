"""Run a producer in a thread, one or two items ahead of its consumer.

Parsing a honeypot log is Python work; inserting it is mostly the database's own C
code, which lets go of the GIL. Overlapping the two uses both cores of a small machine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from queue import Empty, Full, Queue
from typing import TypeVar

T = TypeVar("T")


@dataclass
class _Failure:
    error: BaseException


_DONE = object()


def prefetch(source: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield ``source``'s items, produced in a background thread ``depth`` items ahead.

    An exception in the producer is raised in the consumer; when the consumer stops
    early, the producer is told to stop too.
    """
    queue: Queue[object] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failure(exc))

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = queue.get(timeout=0.5)
            except Empty:
                if not thread.is_alive() and queue.empty():
                    return
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=10)
