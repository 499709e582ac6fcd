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
SCORE, PREDICTED = "score", "predicted"  # the columns an output adds (and a rescored input's old ones)
NOT_SENTENCES = frozenset({ID_NAME, LABEL_NAME, SCORE, PREDICTED})  # never a default sentence column
KNOWN_NAMES = frozenset({ID_NAME, LABEL_NAME, SCORE, PREDICTED, *(name for pair in PAIR_NAMES for name in pair)})


def name_key(name: str) -> str:
    """A column name as the runtime compares it when it looks for a known one (header detection, the default
    columns): trimmed, in any case ('Question1 ' is question1)."""
    return name.strip().casefold()


def is_known_name(name: str) -> bool:
    return name_key(name) in KNOWN_NAMES


def known_pair(cells: list[str]) -> tuple[str, str] | None:
    """The first known pair of sentence names (sentence1/sentence2, ...) among the cells, in any case."""
    keys = {name_key(cell) for cell in cells}
    return next((pair for pair in PAIR_NAMES if set(pair) <= keys), None)


def find_named(name: str, columns: list[str]) -> int | None:
    """The index of the column called `name`: the one spelled exactly so, else the one alike (trimmed, any case);
    None when there is none; UsageError when two columns match it equally (ID and Id for 'id')."""
    for matches in ([i for i, c in enumerate(columns) if c == name],
                    [i for i, c in enumerate(columns) if name_key(c) == name_key(name)]):
        if len(matches) > 1:
            raise UsageError(f"{len(matches)} columns match {name!r} ({', '.join(columns[i] for i in matches)}); "
                             "rename one, or choose by number")
        if matches:
            return matches[0]
    return None


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
    names, else its first two columns not named id, label, score or predicted; the id column is the one named
    'id' (in any case) when there is one. No column is both the id and a sentence.
    """
    named = columns if header else []
    if left is None and right is None:
        known = known_pair(named)
        texts = [str(i + 1) for i, name in enumerate(columns) if not header or name_key(name) not in NOT_SENTENCES]
        left, right = known or (texts[:2] if len(texts) >= 2 else ("1", "2"))
    if left is None or right is None:
        raise UsageError("give both sentence columns (--left and --right), or neither")
    if id_column is None and (found := find_named(ID_NAME, named)) is not None:
        id_column = str(found + 1)
    chosen = Selection(
        resolve_column(left, columns, header), resolve_column(right, columns, header),
        None if id_column is None else resolve_column(id_column, columns, header),
    )
    if chosen.left == chosen.right:
        raise UsageError(f"the left and right sentence columns are the same ({columns[chosen.left]})")
    if chosen.id in (chosen.left, chosen.right):
        raise UsageError(f"column {columns[chosen.id]!r} is both the id column and a sentence column; choose them "
                         "with --left, --right and --id-column")
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
    found = find_named(spec, columns)
    if found is None:
        raise UsageError(f"no column named {spec!r}; the columns are {', '.join(columns)}")
    return found
