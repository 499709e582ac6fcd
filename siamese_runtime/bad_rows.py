"""Bad rows, one owner: the policy for rows that cannot be scored, the reason for each, the reject-file line.

The local job, the Ray engine and `train/` all use it, so the same input gives the same reasons and
byte-identical reject files whichever reads it.
"""

from __future__ import annotations

import base64
import json
from typing import Literal, cast

from .errors import BadRowError, UsageError
from .inputs import is_blank, is_missing
from .io.writers import text_cell

BadRowPolicy = Literal["stop", "skip", "null"]
POLICIES: tuple[BadRowPolicy, ...] = ("stop", "skip", "null")
SENTENCE_LABELS = ("sentence1", "sentence2")


def bad_row_policy(value: str, allowed: tuple[str, ...] = POLICIES) -> BadRowPolicy:
    """`value` as a policy, or a UsageError naming the allowed ones."""
    if value not in allowed:
        raise UsageError(f"unknown bad-row policy {value!r}; use {', '.join(allowed)}")
    return cast(BadRowPolicy, value)


def keeps_bad_row(policy: BadRowPolicy, source: str, line: int | str, problem: str) -> bool:
    """What `policy` does with a bad row (at `source`:`line`, for `problem`), the one place it is decided:
    BadRowError under stop; else the row goes to the reject file, and stays in the output (empty score) only
    under null: True there, False under skip."""
    if policy == "stop":
        raise BadRowError(source, line, problem)
    return policy == "null"


def text_problem(value: object, name: str) -> str | None:
    """Why `value` cannot be scored as a sentence (missing, not text, empty after normalization), or None."""
    if isinstance(value, str):
        return f"{name} is empty" if is_blank(value) else None
    if is_missing(value):
        return f"{name} is missing"
    return non_text_problem(name, type(value).__name__)


def non_text_problem(name: str, type_name: str) -> str:
    """The reason for a sentence that is a number, a list, ... rather than text."""
    return f"{name} is {type_name}, not text"


def pair_problem(left: object, right: object) -> str | None:
    """Why a pair of values cannot be scored (the first sentence's problem first), or None."""
    return text_problem(left, SENTENCE_LABELS[0]) or text_problem(right, SENTENCE_LABELS[1])


def pair_problems(left: list[object], right: list[object]) -> list[str | None]:
    """`pair_problem` of each pair: at once where every value is text with a character that is not whitespace
    (the usual chunk, which then cannot have one), else pair by pair."""
    if _plainly_text(left) and _plainly_text(right):
        return [None] * len(left)
    return list(map(pair_problem, left, right))


def _plainly_text(values: list[object]) -> bool:
    """Every value a str, none empty or all whitespace (only those can be blank: `inputs.is_blank`)."""
    return set(map(type, values)) == {str} and all(values) and not any(map(str.isspace, values))  # type: ignore[arg-type]


def reject_line(line: int, row_id: object, reason: str, values: list[object], path: str | None = None,
                raw: bytes | None = None) -> str:
    """One line of a reject file: JSON with the row's file (when several are read), line, id, reason and
    values as text (as an output file writes them); and where the values do not show the row whole (`raw`, the
    bytes the file has), those bytes: as "raw" text when they are UTF-8, else as "raw_base64"."""
    entry: dict[str, object] = {"path": path} if path is not None else {}
    entry |= {"line": line, "id": text_cell(row_id), "reason": reason, "values": [text_cell(v) for v in values]}
    if raw is not None:
        try:
            entry["raw"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            entry["raw_base64"] = base64.b64encode(raw).decode("ascii")
    return json.dumps(entry, ensure_ascii=False) + "\n"
