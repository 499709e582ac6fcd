"""Argument checks shared by the API: blank sentences, integer settings."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siamese_runtime.bad_rows import pair_problem, pair_problems
from siamese_runtime.inputs import int_at_least, is_blank
from siamese_runtime.tokenizer import normalize

# whitespace, compatibility forms of it, characters that decompose to a space plus a mark, marks, format characters
TRICKY = " \t\n\x1f\x85\xa0\u1680\u2000\u2028\u202f\u3000\u200b\u180e\ufeff\xa8\u02dc\u0301\u0308\uff21A花😀"


def test_is_blank_matches_normalization_on_every_code_point() -> None:
    assert [hex(cp) for cp in range(sys.maxunicode + 1) if is_blank(chr(cp)) != (not normalize(chr(cp)))] == []


@given(st.text(st.sampled_from(TRICKY) | st.characters(), max_size=12))
def test_is_blank_matches_normalization_on_mixed_text(text: str) -> None:
    assert is_blank(text) == (not normalize(text))


class Text(str):
    """A str subclass: text, but not of type str."""


TEXTS = st.text(st.sampled_from(TRICKY) | st.characters(), max_size=6) | st.text(st.sampled_from(TRICKY), max_size=3)
SENTENCE_VALUES = TEXTS | st.none() | st.integers() | st.floats() | st.binary(max_size=3) | st.builds(Text, TEXTS)
CHUNKS = st.lists(st.tuples(TEXTS, TEXTS), max_size=8) | st.lists(st.tuples(SENTENCE_VALUES, SENTENCE_VALUES),
                                                                 max_size=8)


@settings(max_examples=500)
@given(CHUNKS)
def test_a_chunk_is_checked_at_once_as_pair_by_pair(pairs: list[tuple[object, object]]) -> None:
    """The whole-chunk check a job makes against `pair_problem` on each pair: the same reason for every row."""
    left, right = [a for a, _ in pairs], [b for _, b in pairs]
    assert pair_problems(left, right) == [pair_problem(a, b) for a, b in pairs]


def test_checking_a_sentence_does_not_keep_it_alive() -> None:
    sentence = "花呗" * 100_000 + str(id(object()))  # a fresh, long str
    references = sys.getrefcount(sentence)
    assert pair_problem(sentence, " \u3000") == "sentence2 is empty"
    assert sys.getrefcount(sentence) == references


def test_int_at_least_accepts_ints_and_names_the_argument_otherwise() -> None:
    assert int_at_least(1, "batch_size") == 1 and int_at_least(np.int64(0), "cache_size", minimum=0) == 0
    assert type(int_at_least(np.int32(7), "top_k")) is int
    with pytest.raises(ValueError, match="batch_size must be 1 or more, got 0"):
        int_at_least(0, "batch_size")
    with pytest.raises(ValueError, match="cache_size must be 0 or more, got -1"):
        int_at_least(-1, "cache_size", minimum=0)
    for wrong in (True, 2.0, "8", None):
        with pytest.raises(TypeError, match=f"top_k must be an int, got {type(wrong).__name__}"):
            int_at_least(wrong, "top_k")
