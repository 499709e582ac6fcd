"""Text to token ids: the one normalization and vocabulary shared by training and serving."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NORMALIZATION = "nfkc-casefold-collapse-whitespace-v2"
PAD_ID = 0
OOV_ID = 1
PAD_TOKEN = "<pad>"
OOV_TOKEN = "<oov>"
VOCAB_FORMAT = 1

SEPARATOR = "\x00"  # between texts normalized together: case folding leaves it alone, and it is not whitespace
# Full-width forms, the ideographic space and the ellipsis (most of what Chinese text needs NFKC for), each
# replaced by its own NFKC before NFKC runs: a character and its NFKC decompose alike, so the text's NFKC is
# the same, but NFKC's quick check then passes and its slow path is skipped.
_WIDTH_FORMS = str.maketrans({c: unicodedata.normalize("NFKC", c)
                              for c in ["\u3000", "\u2026", *map(chr, range(0xFF00, 0xFFF0))]
                              if unicodedata.normalize("NFKC", c) != c})


def _nfkc(text: str) -> str:
    if unicodedata.is_normalized("NFKC", text):
        return text
    return unicodedata.normalize("NFKC", text.translate(_WIDTH_FORMS))


@dataclass(frozen=True)
class Normalization:
    """NFKC (full-width -> half-width), case folded if `casefold`, whitespace runs collapsed to one space, ends
    stripped."""

    casefold: bool

    def __call__(self, text: str) -> str:
        return self._after_nfkc(_nfkc(text))

    def _after_nfkc(self, text: str) -> str:
        return " ".join((text.casefold() if self.casefold else text).split())  # split(): runs of str.isspace

    def code_points(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every text normalized, as one uint32 array of code points, and each text's length: the same as
        normalizing each alone, with the steps after NFKC done once over the texts joined by SEPARATOR.

        Case folding is per character and SEPARATOR is not whitespace, so whitespace collapses within each
        text, and each text's stripped ends are the single spaces beside a separator, removed here. Texts
        that hold SEPARATOR themselves are normalized one by one.
        """
        joined = SEPARATOR.join(map(_nfkc, texts))
        if not texts or joined.count(SEPARATOR) != len(texts) - 1:
            normalized = [self(text) for text in texts]
            lengths = np.fromiter(map(len, normalized), np.int64, len(normalized))
            return _code_points("".join(normalized)), lengths
        together = self._after_nfkc(joined).replace(f" {SEPARATOR}", SEPARATOR).replace(f"{SEPARATOR} ", SEPARATOR)
        code_points = _code_points(together)
        separators = np.flatnonzero(code_points == ord(SEPARATOR))
        lengths = np.diff(np.concatenate([[-1], separators, [len(code_points)]])) - 1
        return np.delete(code_points, separators), lengths.astype(np.int64)


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)


NORMALIZERS: dict[str, Normalization] = {
    "nfkc-collapse-whitespace-v1": Normalization(casefold=False),
    NORMALIZATION: Normalization(casefold=True),
}


def normalize(text: str, normalization: str = NORMALIZATION) -> str:
    """The current normalization: NFKC (full-width -> half-width), case folded, whitespace runs
    collapsed to one space, ends stripped. Older models name the one they were trained with."""
    return NORMALIZERS[normalization](text)


def characters(text: str, normalization: str = NORMALIZATION) -> list[str]:
    """The tokens of a sentence: its normalized characters, as the notebook's `list(sentence)`."""
    return list(normalize(text, normalization))


@dataclass(frozen=True)
class TokenIds:
    """The token ids of many sentences in one flat array: sentence i is `ids[starts[i] : starts[i] + lengths[i]]`,
    already cut to the tokenizer's max_length; `truncated` counts the sentences that were longer."""

    ids: np.ndarray  # int32
    starts: np.ndarray  # int64
    lengths: np.ndarray  # int64
    truncated: int

    def __len__(self) -> int:
        return len(self.lengths)

    def padded(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """The ids of sentences `rows`, post-padded with PAD_ID to the longest of them: int32 [len(rows), width]."""
        lengths = self.lengths[rows]
        columns = np.arange(max(int(lengths.max(initial=0)), 1))
        inside = columns < lengths[:, None]
        batch = np.zeros(inside.shape, np.int32)
        batch[inside] = self.ids[(self.starts[rows][:, None] + columns)[inside]]
        return batch

    def lists(self) -> list[list[int]]:
        """Each sentence's ids as a list."""
        return [self.ids[start : start + length].tolist() for start, length in zip(self.starts, self.lengths)]


@dataclass(frozen=True)
class Tokenizer:
    """Character vocabulary: id 0 pads, id 1 stands for every character outside the vocabulary."""

    tokens: tuple[str, ...]
    max_length: int
    normalization: str = NORMALIZATION

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZERS:
            raise ValueError(
                f"unknown normalization {self.normalization!r}; this runtime implements {', '.join(NORMALIZERS)}"
            )
        if self.tokens[:2] != (PAD_TOKEN, OOV_TOKEN):
            raise ValueError(f"vocabulary must start with {PAD_TOKEN!r}, {OOV_TOKEN!r}")
        if self.max_length < 1:
            raise ValueError("max_length must be at least 1")
        object.__setattr__(self, "_lookup", _code_point_lookup(self.tokens))

    @classmethod
    def fit(
        cls, sentences: Iterable[str], max_length: int, min_count: int = 1
    ) -> Tokenizer:
        """Build a vocabulary from training sentences, most frequent characters first."""
        counts = Counter(char for sentence in sentences for char in characters(sentence))
        kept = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))
        return cls((PAD_TOKEN, OOV_TOKEN, *kept), max_length)

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def ids(self, text: str) -> list[int]:
        """Token ids of one sentence, truncated to max_length."""
        return self.token_ids([text]).lists()[0]

    def ids_batch(self, texts: Iterable[str]) -> tuple[list[list[int]], int]:
        """Token ids of each sentence as lists, truncated to max_length, and how many were truncated."""
        tokens = self.token_ids(list(texts))
        return tokens.lists(), tokens.truncated

    def token_ids(self, texts: Sequence[str]) -> TokenIds:
        """The ids of every sentence at once: all normalized (`Normalization.code_points`), then every character's
        code point mapped through a lookup array (characters outside the vocabulary, and beyond it, to OOV_ID)."""
        code_points, lengths = NORMALIZERS[self.normalization].code_points(texts)
        lookup: np.ndarray = self._lookup  # type: ignore[attr-defined]
        ids = lookup[np.minimum(code_points, len(lookup) - 1)]
        starts = np.zeros(len(lengths), np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        kept = np.minimum(lengths, self.max_length)
        return TokenIds(ids, starts, kept, int((lengths > self.max_length).sum()))

    def pad(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """Post-pad id sequences with PAD_ID to the longest one: int32 [n, longest]."""
        width = max((len(s) for s in sequences), default=0)
        batch = np.zeros((len(sequences), max(width, 1)), dtype=np.int32)
        for row, sequence in enumerate(sequences):
            batch[row, : len(sequence)] = sequence
        return batch

    def to_json(self) -> dict:
        return {
            "format": VOCAB_FORMAT,
            "normalization": self.normalization,
            "max_length": self.max_length,
            "pad_id": PAD_ID,
            "oov_id": OOV_ID,
            "tokens": list(self.tokens),
        }

    @classmethod
    def from_json(cls, data: dict) -> Tokenizer:
        if data.get("format") != VOCAB_FORMAT:
            raise ValueError(f"unknown vocabulary format {data.get('format')!r}, expected {VOCAB_FORMAT}")
        return cls(tuple(data["tokens"]), int(data["max_length"]), data.get("normalization", ""))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Tokenizer:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def _code_point_lookup(tokens: Sequence[str]) -> np.ndarray:
    """An id for every code point up to the vocabulary's largest, OOV_ID where no token is that character;
    its last entry (one past the largest) is OOV_ID, for every code point beyond. A later duplicate wins,
    as in a dict. Tokens that are not one character (<pad>, <oov>) can never match a character."""
    characters = [(ord(token), i) for i, token in enumerate(tokens) if len(token) == 1]
    lookup = np.full(max((c for c, _ in characters), default=0) + 2, OOV_ID, np.int32)
    for code_point, token_id in characters:
        lookup[code_point] = token_id
    return lookup
