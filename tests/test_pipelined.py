"""Scoring pipelined (the encoder running the next chunk while the caller handles the last), against the same
scorer called chunk by chunk: the same scores to the bit, the same cache, the same counts at every chunk, and
the same chunks before a failure; on the shipped default model with real onnxruntime sessions."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siamese_runtime import Scorer
from siamese_runtime.batching import EncodingCache
from siamese_runtime.scorer import EncodeStats

from .test_scorer import owned_sentences

SCORER = Scorer(providers="cpu")
POOL = st.sampled_from([*owned_sentences(10), "花呗", "ＡＢＣ１２３", "还款\u3000日期…", "😀龘"])
CHUNKS = st.lists(st.lists(st.tuples(POOL, POOL), max_size=7), max_size=6)  # repeats within and across chunks
Chunk = tuple[int, list[str], list[str]]


def tagged(chunks: list[list[tuple[str, str]]]) -> list[Chunk]:
    return [(i, [a for a, _ in chunk], [b for _, b in chunk]) for i, chunk in enumerate(chunks)]


def serial(chunks: list[Chunk], cache_size: int) -> tuple[list[np.ndarray], list[int], list[str]]:
    """Each chunk scored by its own `score` call: the scores, the sentences encoded so far after each, the
    cache's sentences at the end (most recent last)."""
    SCORER.cache, stats = EncodingCache(cache_size), EncodeStats()
    scores, counts = [], []
    for _, left, right in chunks:
        scores.append(SCORER.score(left, right, stats=stats))
        counts.append(stats.encoded)
    return scores, counts, cached_sentences()


def pipelined(chunks: Iterator[Chunk], cache_size: int, ahead: bool) -> tuple[list[np.ndarray], list[int], list[str]]:
    SCORER.cache, stats = EncodingCache(cache_size), EncodeStats()
    scores, counts = [], []
    for tag, chunk_scores in SCORER.pipelined_scores(chunks, stats, ahead=ahead):
        assert tag == len(scores)
        scores.append(chunk_scores)
        counts.append(stats.encoded)  # a chunk's sentences are counted once its scores are out, not before
    return scores, counts, cached_sentences()


def cached_sentences() -> list[str]:
    """The sentences the cache holds, least recently used first (what it would evict next)."""
    return list(SCORER.cache._slots)  # noqa: SLF001  # the order is the property under test


@settings(max_examples=60, deadline=None)
@given(CHUNKS, st.sampled_from([0, 1, 3, 100]), st.booleans())
def test_pipelined_scores_cache_and_counts_are_those_of_one_call_per_chunk(
    chunks: list[list[tuple[str, str]]], cache_size: int, ahead: bool
) -> None:
    expected = serial(tagged(chunks), cache_size)
    got = pipelined(iter(tagged(chunks)), cache_size, ahead)
    assert [s.tobytes() for s in got[0]] == [s.tobytes() for s in expected[0]]
    assert got[1:] == expected[1:]


class Unreadable(Exception):
    """What a chunk source raises where its next chunk cannot be read."""


def failing_at(chunks: list[Chunk], where: int, how: str) -> Iterator[Chunk]:
    """`chunks` up to `where`; there the source fails (`read`) or the chunk holds a sentence that is empty after
    normalization (`lookup`)."""
    yield from chunks[:where]
    if how == "read":
        raise Unreadable(f"chunk {where}")
    yield where, ["花呗", "   "], ["借呗", "花呗"]


@settings(max_examples=30, deadline=None)
@given(CHUNKS, st.data(), st.sampled_from(["read", "lookup"]), st.booleans())
def test_a_chunk_that_fails_comes_after_every_chunk_before_it(
    chunks: list[list[tuple[str, str]]], data: st.DataObject, how: str, ahead: bool
) -> None:
    where = data.draw(st.integers(0, len(chunks)))
    expected = serial(tagged(chunks)[:where], 3)[0]
    SCORER.cache, stats, got = EncodingCache(3), EncodeStats(), []
    with pytest.raises(Unreadable if how == "read" else ValueError):
        for _, chunk_scores in SCORER.pipelined_scores(failing_at(tagged(chunks), where, how), stats, ahead=ahead):
            got.append(chunk_scores)
    assert [s.tobytes() for s in got] == [s.tobytes() for s in expected]


def test_closing_early_waits_for_the_encoder_run_under_way() -> None:
    sentences = owned_sentences(400)
    chunks = ((i, sentences[i * 100 : i * 100 + 50], sentences[i * 100 + 50 : i * 100 + 100]) for i in range(4))
    SCORER.cache = EncodingCache(0)
    scored = SCORER.pipelined_scores(chunks, EncodeStats())
    next(scored)  # the second chunk's run is under way
    scored.close()
    assert not [thread.name for thread in threading.enumerate() if thread.name.startswith("siamese-encoder")]
