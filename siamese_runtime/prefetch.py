"""Items produced ahead on a background thread: the next chunk read and parsed while the encoder runs."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()
JOIN_SECONDS = 0.25  # how long a closed prefetcher waits for its thread (a daemon) to finish the item under way


def prefetched(items: Iterator[T], ahead: int = 1) -> Generator[T, None, None]:
    """`items` in order, produced by one background thread up to `ahead` items before they are asked for.

    Made for work that releases the GIL (onnxruntime's run) beside work that needs it (parsing): while the
    consumer waits in native code, the thread parses. An exception raised producing an item is raised here,
    after every item before it, as iterating `items` directly would. Closing this generator (a consumer that
    stops early, or an error on its side) stops the thread before it produces more.
    """
    handoff: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _handed(handoff, (item, None), stop):
                    return
            _handed(handoff, (_DONE, None), stop)
        except BaseException as error:  # raised to the consumer, in order
            _handed(handoff, (_DONE, error), stop)

    producer = threading.Thread(target=produce, name="siamese-prefetch", daemon=True)
    producer.start()
    try:
        while True:
            item, error = handoff.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        producer.join(JOIN_SECONDS)


def _handed(handoff: queue.Queue, entry: tuple[object, BaseException | None], stop: threading.Event) -> bool:
    """Put `entry` once there is room; False where the consumer has stopped meanwhile."""
    while not stop.is_set():
        try:
            handoff.put(entry, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False
