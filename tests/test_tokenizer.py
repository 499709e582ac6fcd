"""The shared tokenizer: normalization, OOV, truncation, padding, vocabulary files."""

from __future__ import annotations

import json
import re
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siamese_runtime.tokenizer import NORMALIZATION, NORMALIZERS, OOV_ID, PAD_ID, Tokenizer, characters, normalize

TOKENIZER = Tokenizer.fit(["花呗怎么还款", "借呗额度 提升", "ABC abc"], max_length=8)


def test_full_width_half_width_and_case_normalize_alike() -> None:
    assert normalize("ＡＢＣ１２３，？") == "abc123,?"
    assert TOKENIZER.ids("ＡＢＣ") == TOKENIZER.ids("ABC") == TOKENIZER.ids("abc")


def test_models_keep_the_normalization_they_were_trained_with() -> None:
    older = Tokenizer(TOKENIZER.tokens, 8, "nfkc-collapse-whitespace-v1")
    assert Tokenizer.from_json(older.to_json()) == older
    assert older.ids("ABC") != older.ids("abc")


def test_whitespace_runs_collapse_and_ends_strip() -> None:
    assert normalize("  借呗 \t\u3000 额度\n") == "借呗 额度"
    assert characters(" 花 呗 ") == ["花", " ", "呗"]


def test_unseen_characters_map_to_oov_not_nothing() -> None:
    ids = TOKENIZER.ids("花😀呗龘")
    assert ids[1] == OOV_ID and ids[3] == OOV_ID and len(ids) == 4


def test_long_text_is_truncated_and_counted() -> None:
    sequences, truncated = TOKENIZER.ids_batch(["花呗" * 10, "花呗"])
    assert [len(s) for s in sequences] == [8, 2] and truncated == 1


def test_vocabulary_round_trips_through_json(tmp_path) -> None:
    path = tmp_path / "vocab.json"
    TOKENIZER.save(path)
    assert Tokenizer.load(path) == TOKENIZER
    data = json.loads(path.read_text(encoding="utf-8"))
    data["normalization"] = "something-else"
    with pytest.raises(ValueError, match="normalization"):
        Tokenizer.from_json(data)


def test_min_count_drops_rare_characters() -> None:
    tokenizer = Tokenizer.fit(["aab", "ac"], max_length=4, min_count=2)
    assert tokenizer.tokens[2:] == ("a",)


@given(st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=20))
def test_padded_batch_keeps_ids_in_range_and_pads_with_zero(texts: list[str]) -> None:
    sequences, _ = TOKENIZER.ids_batch(texts)
    batch = TOKENIZER.pad(sequences)
    assert batch.dtype == np.int32 and batch.shape[0] == len(texts)
    for row, sequence in zip(batch, sequences):
        assert list(row[: len(sequence)]) == sequence
        assert np.all(row[len(sequence) :] == PAD_ID)
        assert all(0 < i < TOKENIZER.vocab_size for i in sequence)


ANY_CHARACTER = st.one_of(st.characters(codec=None), st.integers(0xD800, 0xDFFF).map(chr))  # lone surrogates too
VOCABULARIES = st.lists(st.one_of(ANY_CHARACTER, st.text(min_size=2, max_size=3)), max_size=40)


def reference_ids(tokenizer: Tokenizer, text: str) -> list[int]:
    """The per-character dictionary lookup the bulk tokenizer replaced: an independent implementation."""
    lookup = {token: i for i, token in enumerate(tokenizer.tokens)}
    return [lookup.get(char, OOV_ID) for char in normalize(text, tokenizer.normalization)[: tokenizer.max_length]]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(ANY_CHARACTER, max_size=30), max_size=12), VOCABULARIES, st.integers(1, 40))
def test_bulk_ids_and_padding_equal_a_per_character_lookup_on_any_text(
    texts: list[str], tokens: list[str], max_length: int
) -> None:
    from siamese_runtime.model_folder import ModelFolder

    vocabulary = list(ModelFolder.load().tokenizer.tokens[:300]) + tokens  # real characters, then any, repeats
    tokenizer = Tokenizer(("<pad>", "<oov>", *vocabulary), max_length)
    expected = [reference_ids(tokenizer, text) for text in texts]
    ids = tokenizer.token_ids(texts)
    assert ids.lists() == expected
    assert ids.truncated == sum(len(normalize(text)) > max_length for text in texts)
    if texts:
        rows = np.arange(len(texts))[::-1]
        width = max(1, *(len(e) for e in expected))
        padded = [e + [PAD_ID] * (width - len(e)) for e in (expected[i] for i in rows)]
        np.testing.assert_array_equal(ids.padded(rows), np.array(padded, np.int32))


# what could make texts normalized together, or through the width forms' shortcut, differ from each alone by
# NFKC: whitespace of every kind at their ends, full-width forms followed by marks that compose with what they
# become, Hangul vowels that compose with what precedes them, characters whose NFKC or case folding is several,
# and the separator inside a text
BOUNDARY_CHARACTERS = st.sampled_from(
    " \t\n\u3000\xa0\x1c\x85\x00\u0301\u0327\u0308\u1100\u1161\u11a8Ａａｅﾞﾟｶ…？，ß\ufb01ǅ花a?")


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(BOUNDARY_CHARACTERS | ANY_CHARACTER, max_size=6), max_size=8),
       st.sampled_from(sorted(NORMALIZERS)))
def test_texts_normalized_together_equal_each_alone_by_unicodedata(texts: list[str], normalization: str) -> None:
    """Against an independent normalization of each text (unicodedata's NFKC and re, as the vocabulary format
    defines it)."""
    def reference(text: str) -> str:
        nfkc = unicodedata.normalize("NFKC", text)
        return re.sub(r"\s+", " ", nfkc.casefold() if normalization == NORMALIZATION else nfkc).strip()

    code_points, lengths = NORMALIZERS[normalization].code_points(texts)
    expected = [reference(text) for text in texts]
    assert lengths.tolist() == [len(e) for e in expected]
    assert "".join(map(chr, code_points.tolist())) == "".join(expected)
    assert [normalize(text, normalization) for text in texts] == expected


def test_the_width_forms_shortcut_is_nfkc_for_each_form_beside_anything_that_composes() -> None:
    """Every character the shortcut replaces, alone, twice and between characters that compose with a neighbour
    (combining marks, Hangul jamo, the halfwidth voiced marks): NFKC through the shortcut is unicodedata's."""
    from siamese_runtime.tokenizer import _WIDTH_FORMS, _nfkc

    neighbours = ["", "a", "e", "\u0301", "\u0308", "\u3099", "\u309a", "\u1100", "\u1161", "\u11a8", "\uff9e", "カ"]
    wrong = [(before, chr(form), after) for form in _WIDTH_FORMS for before in neighbours for after in neighbours
             if _nfkc(before + chr(form) * 2 + after) != unicodedata.normalize("NFKC", before + chr(form) * 2 + after)]
    assert len(_WIDTH_FORMS) > 200 and wrong == []
