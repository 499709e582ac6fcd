"""Batching for the encoder: distinct sentences, length-sorted batches, a shared LRU cache of encodings."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TypeVar

import numpy as np

from .inputs import int_at_least

T = TypeVar("T")


def distinct(sentences: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct sentences in first-seen order, and for each input its index among them."""
    unique = list(dict.fromkeys(sentences))
    index = dict(zip(unique, range(len(unique))))
    return unique, np.array(list(map(index.__getitem__, sentences)), np.int64).reshape(len(sentences))


def length_batches(lengths: Sequence[int], token_budget: int, max_batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, each padded size within `token_budget`.

    Sorting by length means a batch pads to its own longest sentence, not the file's.
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    widths = np.maximum(np.asarray(lengths, np.int64)[order], 1)  # ascending: a batch's last member sets its width
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        # members after the first while their count times the width stays within the budget (a batch holds one
        # sentence at least); that product grows with each member, so they are a prefix: searchsorted finds it
        sizes = np.arange(2, min(max_batch_size, len(order) - start) + 1)
        end = start + 1 + int(np.searchsorted(sizes * widths[start + 1 : start + len(sizes) + 1], token_budget,
                                              side="right"))
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
    """A bounded, thread-safe LRU map from sentence to its encoding; size 0 turns it off.

    The encodings are rows of one array (grown as it fills, up to the size), so a chunk's are stored and read
    with one copy each way instead of one array per sentence; an evicted sentence's row is reused.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = int_at_least(max_entries, "cache size", minimum=0)
        self._slots: dict[str, int] = {}  # sentence -> its row, least recently used first (a dict keeps order)
        self._rows: np.ndarray | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._slots)

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()
            self._rows = None

    def get_many(self, sentences: Sequence[str]) -> tuple[list[int], np.ndarray | None]:
        """The positions in `sentences` of the cached ones, each marked as recently used, and their encodings
        (a copy, one row each; None when none is cached)."""
        with self._lock:
            if not self._slots or self._rows is None:
                return [], None
            found = list(map(self._slots.get, sentences))
            hits = [position for position, slot in enumerate(found) if slot is not None]
            for position in hits:  # to the end: now the most recently used
                self._slots[sentences[position]] = self._slots.pop(sentences[position])
            return hits, (self._rows[[slot for slot in found if slot is not None]] if hits else None)

    def put_many(self, sentences: Sequence[str], encodings: np.ndarray, distinct: bool = False) -> None:
        """Remember encodings (copied), evicting the least recently used; as if put one by one. `distinct`: the
        caller knows no sentence is given twice (the scorer's misses), which is then not checked."""
        if not self.max_entries or not len(sentences):
            return
        with self._lock:
            distinct = distinct or len(dict.fromkeys(sentences)) == len(sentences)
            if distinct and not any(map(self._slots.__contains__, sentences)):
                # the scorer's case, distinct sentences it just missed (none put since by another thread): at once
                sentences, encodings = sentences[-self.max_entries :], encodings[-self.max_entries :]
                slots = self._new_slots(sentences)
                self._grown(max(slots) + 1, encodings)[slots] = encodings
                return
            for sentence, encoding in zip(sentences, encodings):
                slot = self._slot_for(sentence)
                self._grown(slot + 1, encodings)[slot] = encoding

    def _new_slots(self, sentences: Sequence[str]) -> list[int]:
        """Rows for distinct sentences none of which is cached, as `_slot_for` one by one gives them: free rows
        first, then the least recently used ones' (their sentences forgotten, oldest first), in one pass."""
        size = len(self._slots)
        unused = list(range(size, min(self.max_entries, size + len(sentences))))
        oldest = list(islice(self._slots, len(sentences) - len(unused)))
        slots = unused + list(map(self._slots.pop, oldest))
        self._slots.update(zip(sentences, slots))
        return slots

    def _slot_for(self, sentence: str) -> int:
        """The row for `sentence`, now the most recently used: its own, a free one, or the least recent's."""
        slot = self._slots.pop(sentence, None)
        if slot is None:
            full = len(self._slots) >= self.max_entries
            slot = self._slots.pop(next(iter(self._slots))) if full else len(self._slots)
        self._slots[sentence] = slot
        return slot

    def _grown(self, needed: int, like: np.ndarray) -> np.ndarray:
        """The rows array with at least `needed` rows (doubling, at most max_entries)."""
        rows = self._rows
        if rows is None or len(rows) < needed:
            size = min(self.max_entries, max(needed, 2 * (0 if rows is None else len(rows))))
            grown = np.empty((size, *like.shape[1:]), like.dtype)
            if rows is not None:
                grown[: len(rows)] = rows
            self._rows = rows = grown
        return rows
