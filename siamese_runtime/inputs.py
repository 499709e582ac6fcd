"""API arguments to lists of sentences: lists, tuples, numpy arrays, pandas Series and generators."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from functools import lru_cache

import numpy as np

from .tokenizer import normalize


def as_texts(values: Iterable[object], name: str = "sentence") -> list[str]:
    """The values as a list of str; a missing value (None, NaN, pandas NA) raises ValueError, other types TypeError."""
    if isinstance(values, (str, bytes)):
        raise TypeError(f"expected a sequence of {name}s, got a single {type(values).__name__}; wrap it in a list")
    texts = list(values)
    for i, text in enumerate(texts):
        if isinstance(text, str):
            continue
        if is_missing(text):
            raise ValueError(f"{name} {i} is missing ({text!r})")
        raise TypeError(f"{name} {i} is {type(text).__name__}, not str; convert it explicitly")
    return texts  # type: ignore[return-value]


def as_pairs(left: Iterable[object], right: Iterable[object] | None) -> tuple[list[str], list[str]]:
    """Two aligned lists of sentences, from (sentence1, sentence2) pairs or from two sequences."""
    if right is None:
        pairs = [tuple(pair) for pair in left]  # type: ignore[arg-type]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError("score(pairs) takes (sentence1, sentence2) pairs")
        left, right = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
    left_texts, right_texts = as_texts(left, "left sentence"), as_texts(right, "right sentence")
    if len(left_texts) != len(right_texts):
        raise ValueError(f"left has {len(left_texts)} sentences, right has {len(right_texts)}")
    return left_texts, right_texts


def is_missing(value: object) -> bool:
    """None, a float NaN, or pandas' NA / NaT (checked only when pandas is already imported)."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return True
    pandas = sys.modules.get("pandas")
    return pandas is not None and (value is pandas.NA or value is pandas.NaT)


def text_problem(value: object, name: str) -> str | None:
    """Why `value` cannot be scored as a sentence (missing, not text, empty after normalization), or None."""
    if isinstance(value, str):
        return f"{name} is empty" if is_blank(value) else None
    if is_missing(value):
        return f"{name} is missing"
    return f"{name} is {type(value).__name__}, not text"


def pair_problem(left: object, right: object) -> str | None:
    """Why a pair of values cannot be scored (the first sentence's problem first), or None."""
    return text_problem(left, "sentence1") or text_problem(right, "sentence2")


@lru_cache(maxsize=1 << 16)
def is_blank(text: str) -> bool:
    """Nothing left after the tokenizer's normalization (cached: files repeat their sentences)."""
    return not normalize(text)
