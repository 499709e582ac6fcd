"""API arguments to lists of sentences: lists, tuples, numpy arrays, pandas Series and generators."""

from __future__ import annotations

import math
import sys
from collections.abc import ItemsView, Iterable, KeysView, Mapping, Sequence
from collections.abc import Set as AbstractSet
from numbers import Integral
from typing import Any

import numpy as np

from .tokenizer import normalize


def as_texts(values: Iterable[object], name: str = "sentence") -> list[str]:
    """The values as a list of str; a missing value (None, NaN, pandas NA) raises ValueError, other types TypeError."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"expected a sequence of {name}s, got {_a(values)}; wrap it in a list")
    _check_ordered(values, f"{name}s")
    texts = list(values)
    if not set(map(type, texts)) <= {str}:  # one by one only where some value is not exactly a str
        _check_each_is_text(texts, name)
    _check_encodable(texts, name)  # type: ignore[arg-type]
    return texts  # type: ignore[return-value]


def _check_each_is_text(values: list[object], name: str) -> None:
    """ValueError for the first missing value, TypeError for the first that is not a str."""
    for i, text in enumerate(values):
        if isinstance(text, str):
            continue
        if is_missing(text):
            raise ValueError(f"{name} {i} is missing ({text!r})")
        raise TypeError(f"{name} {i} is {type(text).__name__}, not str; convert it explicitly")


def _check_encodable(texts: list[str], name: str) -> None:
    """A lone surrogate (from surrogateescape or a bad JSON escape) is not text: ValueError naming where it is.
    Checked for all texts in one encode, then one by one only when that fails."""
    try:
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        for i, text in enumerate(texts):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as error:
                raise ValueError(f"{name} {i} holds a lone surrogate (U+{ord(text[error.start]):04X} at character "
                                 f"{error.start}), which is not text") from None


def as_pairs(left: Iterable[object], right: Iterable[object] | None) -> tuple[list[str], list[str]]:
    """Two aligned lists of sentences, from (sentence1, sentence2) pairs or from two sequences."""
    if right is None:
        pairs = [as_pair(pair, i) for i, pair in enumerate(pair_rows(left))]
        left, right = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
    _check_aligned(left, right)
    left_texts, right_texts = as_texts(left, "left sentence"), as_texts(right, "right sentence")
    if len(left_texts) != len(right_texts):
        raise ValueError(f"left has {len(left_texts)} sentences, right has {len(right_texts)}")
    return left_texts, right_texts


def _check_aligned(left: object, right: object) -> None:
    """ValueError for two pandas Series with other indexes: pairs are taken by position, and pandas users expect
    them matched by label."""
    pandas = sys.modules.get("pandas")
    if pandas is None or not (isinstance(left, pandas.Series) and isinstance(right, pandas.Series)):
        return
    if not left.index.equals(right.index):
        raise ValueError("the two Series have different indexes, and pairs are taken by position: align them "
                         "(right.reindex(left.index)) or pass lists")


def pair_rows(value: Iterable[Any]) -> Iterable[Any]:
    """The rows of what was passed as pairs: a two-column pandas DataFrame's rows; the iterable itself otherwise.
    TypeError for a single str (its characters are no pairs) and for a DataFrame of another width."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"expected pairs, got {_a(value)}; call score([(left, right)]) or score([left], [right])")
    _check_ordered(value, "pairs")
    pandas = sys.modules.get("pandas")  # looked at only when the caller has imported it
    if pandas is None or not isinstance(value, pandas.DataFrame):
        return value
    if value.shape[1] != 2:
        names = ", ".join(map(repr, value.columns[:6]))
        raise TypeError(f"expected pairs, got a DataFrame of {value.shape[1]} columns ({names}); pass the two "
                        "sentence columns: score(df[[left, right]]) or score(df[left], df[right])")
    return zip(value.iloc[:, 0], value.iloc[:, 1])


def as_pair(value: object, index: int) -> tuple[object, object]:
    """The two items of a pair: a tuple, list, numpy row or other sequence, but not text or a mapping."""
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(
            f"pair {index} is {type(value).__name__} {_preview(value)}, not a (sentence1, sentence2) tuple; "
            "call score([(left, right), ...]) or score(lefts, rights)"
        )
    if len(value) != 2:
        raise ValueError(f"pair {index} has {len(value)} items, not 2 (sentence1, sentence2)")
    return value[0], value[1]


def int_at_least(value: object, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """`value` as an int if it is one (bool is not), at least `minimum` and at most `maximum`; else TypeError or
    ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {_preview(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be {minimum} or more, got {value}")
    if maximum is not None and int(value) > maximum:
        raise ValueError(f"{name} must be at most {maximum:,}, got {value}")
    return int(value)


def _check_ordered(value: object, what: str) -> None:
    """TypeError for a mapping or a set: scores come back in input order, and these have none of their own (a
    dict would give its keys)."""
    if isinstance(value, Mapping):
        raise TypeError(f"expected {what} in order, got a {type(value).__name__} (iterating it gives its keys); "
                        "pass a list, such as list(d.values())")
    if isinstance(value, AbstractSet) and not isinstance(value, (KeysView, ItemsView)):  # dict views keep order
        raise TypeError(f"expected {what} in order, got a {type(value).__name__}, which has no order; pass a list")


def _a(value: object) -> str:
    """What a caller passed, in an error: 'None', or 'a single str 'abc''."""
    return "None" if value is None else f"a single {type(value).__name__} {_preview(value)}"


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_missing(value: object) -> bool:
    """None, a float NaN, or pandas' NA / NaT (checked only when pandas is already imported)."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return True
    pandas = sys.modules.get("pandas")
    return pandas is not None and (value is pandas.NA or value is pandas.NaT)


def is_blank(text: str) -> bool:
    """Nothing left after the tokenizer's normalization, i.e. `not normalize(text)`.

    Fast path: a character that is not whitespace never normalizes to whitespace alone (tests check every
    code point), so only empty or all-whitespace text is normalized.
    """
    return (not text or text.isspace()) and not normalize(text)
