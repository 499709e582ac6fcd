"""Choosing the two sentence columns and the id column of a table, by name or by 1-based number."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError

PAIR_NAMES = (
    ("sentence1", "sentence2"), ("text_a", "text_b"), ("text1", "text2"), ("question1", "question2"),
    ("s1", "s2"), ("query", "candidate"), ("left", "right"),
)
ID_NAME = "id"
LABEL_NAME = "label"
KNOWN_NAMES = frozenset({ID_NAME, LABEL_NAME, *(name for pair in PAIR_NAMES for name in pair)})


def name_key(name: str) -> str:
    """A column name as the runtime compares it when it looks for a known one (header detection, the default
    columns): trimmed, in any case ('Question1 ' is question1)."""
    return name.strip().casefold()


def is_known_name(name: str) -> bool:
    return name_key(name) in KNOWN_NAMES


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

    Defaults: a known pair of names (sentence1/sentence2, text_a/text_b, ..., in any case) when the table has
    names, else the first two columns; the id column is the one named 'id' (in any case) when there is one.
    """
    keys = [name_key(name) for name in columns] if header else []
    if left is None and right is None:
        known = next((pair for pair in PAIR_NAMES if set(pair) <= set(keys)), None)
        left, right = (columns[keys.index(name)] for name in known) if known else ("1", "2")
    if left is None or right is None:
        raise UsageError("give both sentence columns (--left and --right), or neither")
    if id_column is None and ID_NAME in keys:
        id_column = columns[keys.index(ID_NAME)]
    chosen = Selection(
        resolve_column(left, columns, header), resolve_column(right, columns, header),
        None if id_column is None else resolve_column(id_column, columns, header),
    )
    if chosen.left == chosen.right:
        raise UsageError(f"the left and right sentence columns are the same ({columns[chosen.left]})")
    return chosen


def resolve_column(spec: str, columns: list[str], header: bool) -> int:
    """The 0-based index of a column given by name or by number counted from 1 (ASCII digits, spaces around)."""
    if (digits := spec.strip()).isascii() and digits.isdigit():
        number = int(digits)
        if not 1 <= number <= len(columns):
            raise UsageError(f"column {number} does not exist: the input has {len(columns)} columns")
        return number - 1
    if not header:
        raise UsageError(f"column {spec!r} is chosen by name but the input has no header (try --header)")
    if spec in columns:
        return columns.index(spec)
    alike = [i for i, name in enumerate(columns) if name_key(name) == name_key(spec)]
    if len(alike) != 1:
        raise UsageError(f"no column named {spec!r}; the columns are {', '.join(columns)}")
    return alike[0]
