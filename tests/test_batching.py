"""Batching: distinct sentences, token-budget batches, streamed chunks, the shared LRU cache."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siamese_runtime.batching import EncodingCache, chunked, distinct, length_batches, run_concurrently


def test_distinct_keeps_first_seen_order_and_positions() -> None:
    unique, positions = distinct(["b", "a", "b", "c", "a"])
    assert unique == ["b", "a", "c"] and positions.tolist() == [0, 1, 0, 2, 1]


def greedy_batches(lengths: list[int], token_budget: int, max_batch_size: int) -> list[list[int]]:
    """The rule, member by member: in length order, a batch takes the next sentence while it stays within the
    batch size and the budget (its count times the longest length, at least 1), and holds one at least."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for index in order:
        batch = batches[-1] if batches else []
        if batch and len(batch) < max_batch_size and (len(batch) + 1) * max(lengths[index], 1) <= token_budget:
            batch.append(index)
        else:
            batches.append([index])
    return batches


@settings(max_examples=500)
@given(st.lists(st.integers(0, 100), max_size=300), st.integers(1, 3000), st.integers(1, 300))
def test_length_batches_are_the_greedy_rule_member_by_member(lengths: list[int], budget: int, size: int) -> None:
    assert [batch.tolist() for batch in length_batches(lengths, budget, size)] == greedy_batches(lengths, budget, size)


@given(st.lists(st.integers(1, 100), max_size=200), st.integers(1, 2000), st.integers(1, 64))
def test_length_batches_cover_every_index_once_within_budget(lengths: list[int], budget: int, size: int) -> None:
    batches = length_batches(lengths, budget, size)
    assert sorted(np.concatenate(batches).tolist() if batches else []) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= size
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= budget


def test_chunked_streams_a_generator_in_order() -> None:
    assert list(chunked((i for i in range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]


def cached(cache: EncodingCache, sentences: list[str]) -> dict[str, list[float]]:
    """What the cache holds of `sentences` (marking them used)."""
    hits, rows = cache.get_many(sentences)
    return {sentences[hit]: row.tolist() for hit, row in zip(hits, rows if rows is not None else [])}


def test_cache_evicts_the_least_recently_used() -> None:
    cache = EncodingCache(2)
    rows = np.arange(6, dtype=np.float32).reshape(3, 2)
    cache.put_many(["a", "b"], rows[:2])
    assert list(cached(cache, ["a"])) == ["a"]  # a is now the most recently used
    cache.put_many(["c"], rows[2:])
    assert cached(cache, ["a", "b", "c"]) == {"a": [0, 1], "c": [4, 5]} and len(cache) == 2


def test_cache_copies_rows_both_ways_and_size_zero_turns_it_off() -> None:
    cache, off = EncodingCache(10), EncodingCache(0)
    rows = np.ones((2, 3), np.float32)
    cache.put_many(["a", "b"], rows)
    off.put_many(["a", "b"], rows)
    rows[:] = 0
    _, got = cache.get_many(["a"])
    assert got is not None and got.tolist() == [[1, 1, 1]]
    got[:] = 5
    assert cached(cache, ["a"]) == {"a": [1, 1, 1]}
    assert off.get_many(["a", "b"]) == ([], None) and len(off) == 0
    with pytest.raises(ValueError, match="cache size must be 0"):
        EncodingCache(-1)


CACHE_CALLS = st.lists(st.tuples(st.booleans(), st.lists(st.sampled_from("abcdef"), max_size=5)), max_size=30)


@settings(max_examples=1000, deadline=None)
@given(st.integers(1, 4), CACHE_CALLS)
def test_cache_is_an_lru_map(size: int, calls: list[tuple[bool, list[str]]]) -> None:
    """Against an independent LRU (an OrderedDict of each sentence's value): every get and put, in any order,
    with repeats and more sentences than fit, gives what the reference holds."""
    cache, reference = EncodingCache(size), OrderedDict[str, float]()
    for step, (is_put, sentences) in enumerate(calls):
        if is_put:  # repeats, sentences already cached and more than fit included: as if put one by one
            values = np.array([step * 10 + i for i, _ in enumerate(sentences)], np.float32).reshape(-1, 1)
            cache.put_many(sentences, values)
            for sentence, value in zip(sentences, values[:, 0].tolist()):
                reference[sentence] = value
                reference.move_to_end(sentence)
                while len(reference) > size:
                    reference.popitem(last=False)
        else:
            expected = {s: [reference[s]] for s in sentences if s in reference}
            for sentence in sentences:
                if sentence in reference:
                    reference.move_to_end(sentence)
            assert cached(cache, sentences) == expected
        assert len(cache) == len(reference)


def test_cache_clear_forgets_every_encoding() -> None:
    cache = EncodingCache(10)
    cache.put_many(["花呗", "借呗"], np.ones((2, 3), np.float32))
    cache.clear()
    assert len(cache) == 0 and cache.get_many(["花呗", "借呗"]) == ([], None)


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_run_concurrently_runs_every_item_once_on_up_to_workers_threads(workers: int) -> None:
    seen: list[int] = []
    threads: set[int] = set()
    lock = threading.Lock()

    def record(item: int) -> None:
        time.sleep(0.002)
        with lock:
            seen.append(item)
            threads.add(threading.get_ident())

    run_concurrently(record, list(range(40)), workers)
    assert sorted(seen) == list(range(40)) and len(threads) <= workers
    assert (len(threads) > 1) == (workers > 1)


def test_run_concurrently_raises_the_first_error_and_drops_items_not_started() -> None:
    started: list[int] = []

    def fail_first(item: int) -> None:
        started.append(item)
        if item == 0:
            raise ValueError("batch 0 failed")
        time.sleep(0.05)

    with pytest.raises(ValueError, match="batch 0 failed"):
        run_concurrently(fail_first, list(range(50)), 2)
    assert len(started) < 10
