"""The Python API on the shipped default model: real onnxruntime sessions, real sentences."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siamese_runtime import Scorer

SCORER = Scorer(providers="cpu")


def real_sentences(data: Path, count: int) -> list[str]:
    with (data / "bq" / "test.tsv").open(encoding="utf-8") as stream:
        return [line.split("\t")[0] for _, line in zip(range(count), stream)]


SENTENCES = st.text(alphabet=st.sampled_from("花呗借款还额度为什么不能用怎么？ ABC１２3😀龘"), min_size=1, max_size=80).filter(
    lambda s: s.strip()
)


def test_real_pairs_score_in_unit_interval_and_vary(data: Path) -> None:
    sentences = real_sentences(data, 200)
    scores = SCORER.score(sentences[:100], sentences[100:])
    assert scores.dtype == np.float32 and scores.shape == (100,)
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores.std() > 1e-3


def test_pairs_and_two_sequences_give_the_same_scores(data: Path) -> None:
    sentences = real_sentences(data, 40)
    pairs = list(zip(sentences[:20], sentences[20:]))
    assert np.array_equal(SCORER.score(pairs), SCORER.score(sentences[:20], sentences[20:]))
    assert np.array_equal(SCORER.predict(pairs), SCORER.score(pairs) >= SCORER.threshold)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(SENTENCES, SENTENCES), min_size=1, max_size=12))
def test_scores_are_symmetric_bounded_and_one_on_identical_sentences(pairs: list[tuple[str, str]]) -> None:
    left = [a for a, _ in pairs]
    right = [b for _, b in pairs]
    forward = SCORER.score(left, right)
    assert np.all((forward >= 0) & (forward <= 1))
    np.testing.assert_allclose(forward, SCORER.score(right, left), atol=1e-6)
    np.testing.assert_allclose(SCORER.score(left, left), 1.0, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.lists(SENTENCES, min_size=2, max_size=30), st.integers(1, 7))
def test_encoding_does_not_depend_on_batch_or_padding(sentences: list[str], batch_size: int) -> None:
    alone = np.concatenate([SCORER.encode([s]) for s in sentences])
    small_batches = Scorer(SCORER.model, providers="cpu", batch_size=batch_size, token_budget=64)
    np.testing.assert_allclose(small_batches.encode(sentences), alone, atol=1e-6)
    np.testing.assert_allclose(SCORER.encode(sentences), alone, atol=1e-6)


def test_duplicates_are_encoded_once_and_restored_in_order() -> None:
    sentences = ["花呗怎么还款", "借呗额度", "花呗怎么还款", "借呗额度", "为什么不能用"]
    encodings = SCORER.encode(sentences)
    assert np.array_equal(encodings[0], encodings[2]) and np.array_equal(encodings[1], encodings[3])
    assert not np.array_equal(encodings[0], encodings[1])


def test_eight_threads_sharing_one_scorer_match_sequential(data: Path) -> None:
    sentences = real_sentences(data, 400)
    chunks = [(sentences[i : i + 25], sentences[i + 25 : i + 50]) for i in range(0, 400, 50)]
    sequential = [SCORER.score(a, b) for a, b in chunks]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda chunk: SCORER.score(*chunk), chunks))
    for one, other in zip(sequential, parallel):
        np.testing.assert_array_equal(one, other)


def test_empty_and_non_string_input_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="empty after normalization"):
        SCORER.score(["花呗"], ["  \t "])
    with pytest.raises(TypeError, match="sentence 1 is NoneType, not str"):
        SCORER.encode(["花呗", None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="left has 2 sentences, right has 1"):
        SCORER.score(["花呗", "借呗"], ["花呗"])


def test_out_of_vocabulary_emoji_and_overlong_text_still_score(caplog: pytest.LogCaptureFixture) -> None:
    long_text = "花呗" * 200
    scores = SCORER.score(["😀𠀀龘", long_text], ["花呗", long_text + "借呗"])
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[1] == pytest.approx(1.0, abs=1e-6)  # both truncated to the same first max_length chars
    assert "truncated" in caplog.text
