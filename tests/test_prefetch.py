"""The prefetcher hands over exactly what iterating directly would: the same items in order, the same error after
the same items, and its thread stops when the consumer does."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siamese_runtime.prefetch import prefetched


class Broken(Exception):
    pass


def produced(items: list[int], fail_at: int | None, seen: list[int]) -> Iterator[int]:
    for index, item in enumerate(items):
        if index == fail_at:
            raise Broken(index)
        seen.append(item)
        yield item


def consumed(iterator: Iterator[int]) -> tuple[list[int], BaseException | None]:
    got: list[int] = []
    try:
        for item in iterator:
            got.append(item)
    except Broken as error:
        return got, error
    return got, None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(), max_size=30), st.one_of(st.none(), st.integers(0, 30)), st.integers(1, 4))
def test_prefetched_gives_the_items_and_the_error_of_iterating_directly(
    items: list[int], fail_at: int | None, ahead: int
) -> None:
    direct = consumed(produced(items, fail_at, []))
    ahead_of_time = consumed(prefetched(produced(items, fail_at, []), ahead))
    assert ahead_of_time[0] == direct[0]
    assert repr(ahead_of_time[1]) == repr(direct[1])


@pytest.mark.parametrize("ahead", [1, 3])
def test_a_consumer_that_stops_stops_the_thread_within_ahead_items(ahead: int) -> None:
    seen: list[int] = []
    iterator = prefetched(produced(list(range(1000)), None, seen), ahead)
    assert [next(iterator) for _ in range(5)] == list(range(5))
    iterator.close()
    assert not any(thread.name == "siamese-prefetch" and thread.is_alive() for thread in threading.enumerate())
    assert len(seen) <= 5 + ahead + 1  # the ones handed over, those queued, and the one under way
