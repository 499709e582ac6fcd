"""Choosing the two sentence columns and the id column of a table, by name or by 1-based number."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError

PAIR_NAMES = (
    ("sentence1", "sentence2"), ("text_a", "text_b"), ("text1", "text2"), ("question1", "question2"),
    ("s1", "s2"), ("query", "candidate"), ("left", "right"),
)
ID_NAME = "id"


@dataclass(frozen=True)
class Selection:
    """Indices (0-based) of the left and right sentence columns and of the id column, if any."""

    left: int
    right: int
    id: int | None


def select_columns(
    columns: list[str], header: bool, left: str | None = None, right: str | None = None, id_column: str | None = None
) -> Selection:
    """Resolve column specs (a name, or a number counted from 1 as in `cut -f`) against a table's columns.

    Defaults: a known pair of names (sentence1/sentence2, text_a/text_b, ...) when the table has names,
    else the first two columns; the id column is the one named 'id' when there is one.
    """
    if left is None and right is None:
        known = next((pair for pair in PAIR_NAMES if header and set(pair) <= set(columns)), None)
        left, right = known if known else ("1", "2")
    if left is None or right is None:
        raise UsageError("give both sentence columns (--left and --right), or neither")
    if id_column is None and header and ID_NAME in columns:
        id_column = ID_NAME
    chosen = Selection(
        resolve_column(left, columns, header), resolve_column(right, columns, header),
        None if id_column is None else resolve_column(id_column, columns, header),
    )
    if chosen.left == chosen.right:
        raise UsageError(f"the left and right sentence columns are the same ({columns[chosen.left]})")
    return chosen


def resolve_column(spec: str, columns: list[str], header: bool) -> int:
    """The 0-based index of a column given by name or by number counted from 1."""
    if spec.isdigit():
        number = int(spec)
        if not 1 <= number <= len(columns):
            raise UsageError(f"column {number} does not exist: the input has {len(columns)} columns")
        return number - 1
    if not header:
        raise UsageError(f"column {spec!r} is chosen by name but the input has no header (try --header)")
    if spec not in columns:
        raise UsageError(f"no column named {spec!r}; the columns are {', '.join(columns)}")
    return columns.index(spec)
