"""The Python API on the shipped default model: real onnxruntime sessions, owned sentences (tests/fixtures)."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siamese_runtime import ModelLoadError, Scorer
from siamese_runtime.scorer import EncodeStats

from .fixtures.questions import question_pairs

SCORER = Scorer(providers="cpu")


def owned_sentences(count: int) -> list[str]:
    """`count` distinct questions from the owned pair generator (tests/fixtures/questions.py)."""
    distinct = dict.fromkeys(sentence for left, right, _ in question_pairs(count) for sentence in (left, right))
    return list(distinct)[:count]


SENTENCES = st.text(
    alphabet=st.sampled_from("花呗借款还额度为什么不能用怎么？ ABC１２3😀龘"), min_size=1, max_size=80
).filter(lambda s: s.strip())


def test_pairs_score_in_unit_interval_and_vary() -> None:
    sentences = owned_sentences(200)
    scores = SCORER.score(sentences[:100], sentences[100:])
    assert scores.dtype == np.float32 and scores.shape == (100,)
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores.std() > 1e-3


def test_pairs_and_two_sequences_give_the_same_scores() -> None:
    sentences = owned_sentences(40)
    pairs = list(zip(sentences[:20], sentences[20:]))
    assert np.array_equal(SCORER.score(pairs), SCORER.score(sentences[:20], sentences[20:]))
    assert np.array_equal(SCORER.predict(pairs), SCORER.score(pairs) >= SCORER.threshold)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(SENTENCES, SENTENCES), min_size=1, max_size=12))
def test_scores_are_symmetric_and_probabilities(pairs: list[tuple[str, str]]) -> None:
    left = [a for a, _ in pairs]
    right = [b for _, b in pairs]
    forward = SCORER.score(left, right)
    assert np.all((forward > 0) & (forward < 1))
    np.testing.assert_array_equal(forward, SCORER.score(right, left))


@settings(max_examples=25, deadline=None)
@given(st.lists(SENTENCES, min_size=2, max_size=30), st.integers(1, 7))
def test_encoding_does_not_depend_on_batch_or_padding(sentences: list[str], batch_size: int) -> None:
    alone = np.concatenate([SCORER.encode([s]) for s in sentences])
    small_batches = Scorer(SCORER.model, providers="cpu", batch_size=batch_size, token_budget=64)
    np.testing.assert_array_equal(small_batches.encode(sentences), alone)  # bit for bit: resume relies on it
    np.testing.assert_array_equal(SCORER.encode(sentences), alone)


def test_cpu_threads_run_batches_at_once_each_on_one_thread_with_the_same_bytes() -> None:
    sentences = owned_sentences(600)
    one = Scorer(SCORER.model, providers="cpu", intra_op_num_threads=1, cache_size=0)
    two = Scorer(SCORER.model, providers="cpu", intra_op_num_threads=2, cache_size=0)
    assert (one.encoder.workers, two.encoder.workers, two.encoder.threads) == (1, 2, 2)
    assert two.encoder.session.get_session_options().intra_op_num_threads == 2  # a lone batch gets both threads
    assert two.encoder.batch_size == 64
    assert Scorer(SCORER.model, providers="cpu", batch_size=300).encoder.batch_size == 300
    np.testing.assert_array_equal(two.encode(sentences[:40]), one.encode(sentences[:40]))  # one batch
    np.testing.assert_array_equal(two.encode(sentences), one.encode(sentences))  # ten at once, two by two


def test_duplicates_are_encoded_once_and_restored_in_order() -> None:
    sentences = ["花呗怎么还款", "借呗额度", "花呗怎么还款", "借呗额度", "为什么不能用"]
    encodings = SCORER.encode(sentences)
    assert np.array_equal(encodings[0], encodings[2]) and np.array_equal(encodings[1], encodings[3])
    assert not np.array_equal(encodings[0], encodings[1])


@pytest.mark.parametrize(("cache_size", "batch_size"), [(0, None), (50, None), (100_000, None), (0, 8)])
def test_eight_threads_sharing_one_scorer_match_sequential(cache_size: int, batch_size: int | None) -> None:
    """batch_size 8: every call has several batches, so eight callers share the one-thread session too."""
    sentences = owned_sentences(400)
    chunks = [(sentences[i : i + 25], sentences[i + 25 : i + 50]) for i in range(0, 400, 50)] * 3
    sequential = [Scorer(SCORER.model, providers="cpu", cache_size=0, intra_op_num_threads=1).score(a, b)
                  for a, b in chunks]
    shared = Scorer(SCORER.model, providers="cpu", cache_size=cache_size, batch_size=batch_size,
                    intra_op_num_threads=2)
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda chunk: shared.score(*chunk), chunks))
    for one, other in zip(sequential, parallel):
        np.testing.assert_array_equal(one, other)


def test_dedup_and_cache_on_or_off_give_identical_scores_across_calls() -> None:
    sentences = owned_sentences(300)
    left, right = sentences[:150] * 2, sentences[150:] * 2
    no_cache = Scorer(SCORER.model, providers="cpu", cache_size=0)
    tiny_cache = Scorer(SCORER.model, providers="cpu", cache_size=7)
    expected = np.concatenate([no_cache.score([a], [b]) for a, b in zip(left, right)])
    for scorer in (no_cache, tiny_cache, SCORER):
        np.testing.assert_array_equal(scorer.score(left, right), expected)
        np.testing.assert_array_equal(scorer.score(left, right), expected)  # second call: cache hits
    assert len(no_cache.cache) == 0 and len(tiny_cache.cache) == 7


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(SENTENCES, SENTENCES), min_size=1, max_size=20), st.integers(0, 5))
def test_cache_and_dedup_do_not_change_scores(pairs: list[tuple[str, str]], cache_size: int) -> None:
    cached = Scorer(SCORER.model, providers="cpu", cache_size=cache_size)
    one_by_one = np.concatenate([cached.score([pair]) for pair in pairs])
    np.testing.assert_array_equal(cached.score(pairs), one_by_one)


def test_lists_tuples_arrays_series_and_generators_are_accepted() -> None:
    import pandas as pd

    sentences = owned_sentences(60)
    left, right = sentences[:30], sentences[30:]
    expected = SCORER.score(left, right)
    for convert in (tuple, np.array, pd.Series, lambda xs: (x for x in xs)):
        np.testing.assert_array_equal(SCORER.score(convert(left), convert(right)), expected)
    np.testing.assert_array_equal(SCORER.score(pair for pair in zip(left, right)), expected)
    np.testing.assert_array_equal(SCORER.score(np.array([left, right]).T), expected)  # numpy rows are pairs
    np.testing.assert_array_equal(SCORER.score([[a, b] for a, b in zip(left, right)]), expected)
    np.testing.assert_array_equal(np.array(list(SCORER.score_stream(zip(left, right), chunk_size=7))), expected)
    np.testing.assert_array_equal(SCORER.encode(pd.Series(left)), SCORER.encode(left))


def test_rank_orders_candidates_by_score_from_cached_encodings() -> None:
    candidates = owned_sentences(200)
    query = candidates[17]
    ranker = Scorer(SCORER.model, providers="cpu")
    top = ranker.rank(query, candidates, top_k=5)
    expected = SCORER.score([query] * len(candidates), candidates)
    assert [m.index for m in top] == list(np.argsort(-expected, kind="stable")[:5])
    assert top[0].index == 17 and top[0].score == SCORER.score([query], [query])[0]
    assert [m.score for m in top] == pytest.approx(sorted(expected, reverse=True)[:5], abs=1e-7)
    cached = len(ranker.cache)
    assert ranker.rank(candidates[3], iter(candidates), top_k=None)[0].index == 3
    assert len(ranker.cache) == cached  # every candidate and the new query were already cached
    assert len(ranker.rank(query, candidates, top_k=1000)) == len(candidates)


def test_empty_and_whitespace_only_text_is_refused() -> None:
    for blank in ("", "  \t ", "\u3000\n"):
        with pytest.raises(ValueError, match="empty after normalization"):
            SCORER.score(["花呗"], [blank])


def test_missing_values_are_refused_as_missing() -> None:
    import pandas as pd

    for missing in (None, float("nan"), np.float32("nan"), pd.NA):
        with pytest.raises(ValueError, match="sentence 1 is missing"):
            SCORER.encode(["花呗", missing])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="right sentence 0 is missing"):
        SCORER.score(pd.Series(["花呗"]), pd.Series([None]))


def test_a_lone_surrogate_is_refused_as_the_command_line_refuses_it() -> None:
    with pytest.raises(ValueError, match=r"right sentence 1 holds a lone surrogate \(U\+DC80 at character 2\)"):
        SCORER.score(["花呗", "借呗"], ["花呗", "借呗\udc80"])


UNORDERED = r"in order, got a (dict \(iterating it gives its keys\)|(frozen)?set, which has no order)"


@pytest.mark.parametrize("unordered", [{"花呗": 1, "借呗": 2}, {"花呗", "借呗"}, frozenset({"花呗"})])
def test_mappings_and_sets_are_refused_as_sentences_and_pairs_they_have_no_order_of_their_own(unordered: object,
                                                                                             ) -> None:
    for call in (lambda: SCORER.encode(unordered), lambda: SCORER.score(unordered),  # type: ignore[arg-type]
                 lambda: SCORER.score(["花呗"], unordered)):  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=UNORDERED):
            call()


def test_a_dicts_views_keep_its_order_and_are_taken_and_series_are_paired_by_label_or_refused() -> None:
    import pandas as pd

    pairs = {"花呗怎么还款": "花呗如何还钱", "借呗额度": "借呗的额度"}
    expected = SCORER.score(list(pairs), list(pairs.values()))
    assert (SCORER.score(pairs.keys(), pairs.values()) == expected).all()
    assert (SCORER.score(pairs.items()) == expected).all()
    left, right = pd.Series(list(pairs), index=["a", "b"]), pd.Series(list(pairs.values()), index=["b", "a"])
    with pytest.raises(ValueError, match="the two Series have different indexes"):
        SCORER.score(left, right)
    assert (SCORER.score(left, right.reindex(left.index)) == SCORER.score(list(pairs), list(pairs.values())[::-1])
            ).all()


def test_settings_that_are_not_what_they_name_are_refused_naming_them() -> None:
    with pytest.raises(TypeError, match="session_options must be an onnxruntime.SessionOptions, got str"):
        Scorer(session_options="x")  # type: ignore[arg-type]
    with pytest.raises(ModelLoadError, match="the model path is empty"):
        Scorer(model="")


def test_non_string_values_are_refused_with_their_type() -> None:
    with pytest.raises(TypeError, match="sentence 1 is int, not str"):
        SCORER.encode(["花呗", 12])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="sentence 0 is bytes"):
        SCORER.encode([b"hua bei"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="got a single str '花呗'; wrap it in a list"):
        SCORER.encode("花呗")
    for nothing in (None, 7):
        with pytest.raises(TypeError, match="expected a sequence of sentences, got (None|a single int 7);"):
            SCORER.encode(nothing)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="expected pairs, got (None|a single int 7);"):
            SCORER.score(nothing)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="expected a sequence of right sentences, got (None|a single int 7);"):
            SCORER.score(["花呗"], nothing or 7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="left has 2 sentences, right has 1"):
        SCORER.score(["花呗", "借呗"], ["花呗"])


def test_characters_outside_the_vocabulary_all_map_to_the_oov_id() -> None:
    vocabulary = set(SCORER.model.tokenizer.tokens)
    assert "㐀" not in vocabulary and "䶵" not in vocabulary
    np.testing.assert_array_equal(SCORER.encode(["花呗㐀还款", "㐀"]), SCORER.encode(["花呗䶵还款", "䶵"]))


def test_emoji_and_rare_unicode_score_in_the_unit_interval() -> None:
    texts = ["😀", "花呗😀👍🏽", "𠀀𪚥", "e\u0301", "\u200b花呗", "🇨🇳借呗"]
    scores = SCORER.score(texts, ["花呗"] * len(texts))
    assert np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1))


def test_full_width_and_half_width_forms_are_the_same_sentence() -> None:
    np.testing.assert_array_equal(
        SCORER.encode(["ＡＰＰ怎么用花呗？１２３", "花呗　还款"]), SCORER.encode(["APP怎么用花呗?123", "花呗 还款"])
    )


def test_overlong_text_is_truncated_counted_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    max_length = SCORER.model.tokenizer.max_length
    long_texts = ["花呗" * max_length + str(i) for i in range(3)]
    scorer = Scorer(SCORER.model, providers="cpu")
    stats = EncodeStats()
    scores = scorer.score(long_texts, ["花呗" * (max_length // 2)] * 3, stats=stats)
    identical = scorer.score(["花呗" * (max_length // 2)], ["花呗" * (max_length // 2)])
    np.testing.assert_array_equal(scores, np.repeat(identical, 3))  # all truncated to the same first max_length
    assert stats.truncated == 3 and stats.encoded == 4 and "truncated" not in caplog.text
    scorer.score(["借呗" * max_length, "借" * (max_length + 1)], ["借呗", "借呗"])
    warnings = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].getMessage().startswith("2 sentences longer than max_length")


NOT_A_PAIR = re.escape(", not a (sentence1, sentence2) tuple; call score([(left, right), ...]) or score(lefts, rights)")
PAIR_CALLS: dict[str, Callable[[list], object]] = {
    "score": SCORER.score,
    "predict": SCORER.predict,
    "score_stream": lambda pairs: list(SCORER.score_stream(pairs)),
}


@pytest.mark.parametrize("call", PAIR_CALLS)
@pytest.mark.parametrize(
    ("not_pairs", "kind"),
    [(["花呗", "借呗"], "str"), ([b"ab"], "bytes"), ([{"a": 1, "b": 2}], "dict"), ([{"花呗", "借呗"}], "set")],
)
def test_strings_mappings_and_sets_are_not_taken_for_pairs(call: str, not_pairs: list, kind: str) -> None:
    with pytest.raises(TypeError, match=f"^pair 0 is {kind} .*{NOT_A_PAIR}$"):
        PAIR_CALLS[call](not_pairs)


@pytest.mark.parametrize("call", PAIR_CALLS)
@pytest.mark.parametrize("text", ["花呗", b"ab"])
def test_a_single_text_passed_as_pairs_is_named_as_such(call: str, text: str | bytes) -> None:
    with pytest.raises(TypeError, match=f"^expected pairs, got a single {type(text).__name__} "):
        PAIR_CALLS[call](text)


def test_a_two_column_dataframe_is_pairs_and_other_widths_are_refused_with_their_columns() -> None:
    import pandas as pd

    sentences = owned_sentences(40)
    frame = pd.DataFrame({"q1": sentences[:20], "q2": sentences[20:]}, index=range(100, 120))
    expected = SCORER.score(sentences[:20], sentences[20:])
    np.testing.assert_array_equal(SCORER.score(frame), expected)
    np.testing.assert_array_equal(np.array(list(SCORER.score_stream(frame, chunk_size=3))), expected)
    np.testing.assert_array_equal(SCORER.predict(frame), expected >= SCORER.threshold)
    for wrong in (frame.assign(label=1), frame[["q1"]]):
        with pytest.raises(TypeError, match=rf"DataFrame of {wrong.shape[1]} columns \('q1'.*score\(df\[\[left"):
            SCORER.score(wrong)


def test_pairs_of_the_wrong_length_are_refused_with_their_index() -> None:
    with pytest.raises(ValueError, match=re.escape("pair 1 has 3 items, not 2 (sentence1, sentence2)")):
        SCORER.score([("花呗", "借呗"), ("花呗", "借呗", "额度")])


def test_rank_top_k_and_stream_chunk_size_must_be_positive_ints() -> None:
    for top_k in (0, -1):
        with pytest.raises(ValueError, match=f"top_k must be 1 or more, got {top_k}"):
            SCORER.rank("花呗", ["借呗", "花呗"], top_k=top_k)
    for top_k in (True, 1.5):
        with pytest.raises(TypeError, match="top_k must be an int"):
            SCORER.rank("花呗", ["借呗", "花呗"], top_k=top_k)  # type: ignore[arg-type]
    assert [m.index for m in SCORER.rank("花呗", ["借呗", "花呗"], top_k=np.int64(1))] == [1]
    with pytest.raises(ValueError, match="chunk_size must be 1 or more, got 0"):
        SCORER.score_stream([("花呗", "借呗")], chunk_size=0)  # refused at the call, not when first iterated


@pytest.mark.parametrize(
    ("argument", "value", "error", "message"),
    [
        ("batch_size", 0, ValueError, "batch_size must be 1 or more, got 0"),
        ("batch_size", 2.5, TypeError, "batch_size must be an int, got float 2.5"),
        ("token_budget", -8, ValueError, "token_budget must be 1 or more, got -8"),
        ("token_budget", "8192", TypeError, "token_budget must be an int, got str '8192'"),
        ("cache_size", -1, ValueError, "cache_size must be 0 or more, got -1"),
        ("cache_size", True, TypeError, "cache_size must be an int, got bool True"),
        ("intra_op_num_threads", 0, ValueError, "intra_op_num_threads must be 1 or more, got 0"),
        ("intra_op_num_threads", 4.0, TypeError, "intra_op_num_threads must be an int, got float 4.0"),
    ],
)
def test_scorer_arguments_are_checked_before_the_model_loads(
    tmp_path: Path, argument: str, value: object, error: type[Exception], message: str
) -> None:
    for model in (SCORER.model, tmp_path / "no model here"):
        with pytest.raises(error, match=f"^{re.escape(message)}$"):
            Scorer(model, providers="cpu", **{argument: value})


def test_smallest_valid_settings_score_like_the_defaults() -> None:
    sentences = owned_sentences(60)
    left, right = sentences[:30], sentences[30:]
    smallest = Scorer(
        SCORER.model, providers="cpu", intra_op_num_threads=1, batch_size=1, token_budget=1, cache_size=np.int64(0)
    )  # a token budget below every sentence's length runs each sentence alone
    np.testing.assert_allclose(smallest.score(left, right), SCORER.score(left, right), atol=1e-6)
    assert len(smallest.cache) == 0


def test_settings_out_of_range_are_value_errors_before_any_model_loads() -> None:
    from siamese_runtime.settings import max_threads

    with pytest.raises(ValueError, match=f"intra_op_num_threads {max_threads() + 1} is more than 64 per core"):
        Scorer(providers="cpu", intra_op_num_threads=max_threads() + 1)
    with pytest.raises(ValueError, match="precision 'int4': expected one of auto, fp32, int8, fp16"):
        Scorer(providers="cpu", precision="int4")
