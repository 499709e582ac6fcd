"""Batching for the encoder: distinct sentences, length-sorted batches, a shared LRU cache of encodings."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TypeVar

import numpy as np

from .inputs import int_at_least

T = TypeVar("T")


def distinct(sentences: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct sentences in first-seen order, and for each input its index among them."""
    index: dict[str, int] = {}
    positions = np.fromiter((index.setdefault(s, len(index)) for s in sentences), dtype=np.int64, count=len(sentences))
    return list(index), positions


def length_batches(lengths: Sequence[int], token_budget: int, max_batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, each padded size within `token_budget`.

    Sorting by length means a batch pads to its own longest sentence, not the file's.
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        end = start + 1
        # lengths ascend, so the last member is the longest and sets the padded width
        while (end < len(order) and end - start < max_batch_size
               and (end - start + 1) * max(lengths[order[end]], 1) <= token_budget):
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


def run_concurrently(function: Callable[[T], None], items: Sequence[T], workers: int) -> None:
    """`function` on every item, on up to `workers` threads (onnxruntime releases the GIL while it runs).

    The first error is raised; items not yet started are then dropped, and so are they on Ctrl-C, which
    waits only for the runs already under way.
    """
    if workers == 1 or len(items) < 2:
        for item in items:
            function(item)
        return
    pool = ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="siamese-encode")
    try:
        for future in [pool.submit(function, item) for item in items]:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items: an iterable streamed with bounded memory."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class EncodingCache:
    """A bounded, thread-safe LRU map from sentence to its encoding; size 0 turns it off."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = int_at_least(max_entries, "cache size", minimum=0)
        self._entries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def get_many(self, sentences: Iterable[str]) -> dict[str, np.ndarray]:
        """The cached encodings among `sentences`, each marked as recently used."""
        if not self.max_entries:
            return {}
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for sentence in sentences:
                encoding = self._entries.get(sentence)
                if encoding is not None:
                    self._entries.move_to_end(sentence)
                    found[sentence] = encoding
        return found

    def put_many(self, sentences: Sequence[str], encodings: np.ndarray) -> None:
        """Remember encodings (copied, so a batch array is not kept alive), evicting the least recently used."""
        if not self.max_entries:
            return
        with self._lock:
            for sentence, encoding in zip(sentences[-self.max_entries :], encodings[-self.max_entries :]):
                self._entries[sentence] = encoding.copy()
                self._entries.move_to_end(sentence)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
