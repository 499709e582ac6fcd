"""Flags shared by the commands: number types that refuse what the runtime could not use, with the reason, and
--header/--no-header."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from ..job import MAX_CHUNK_ROWS


def _number(
    kind: type[int] | type[float], minimum: float, description: str, maximum: float = float("inf")
) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:  # written as a person types numbers: ASCII, no underscores (Python's int takes '1_0' and '١')
            if not text.isascii() or "_" in text:
                raise ValueError(text)
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {description}") from None
        if not value >= minimum or not math.isfinite(value):  # also refuses NaN
            raise argparse.ArgumentTypeError(f"{text} is not {description}")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"{text} is more than {maximum:,}, the most this flag takes")
        return value

    parse.__name__ = description  # argparse names the type in some messages
    return parse


positive_int = _number(int, 1, "a whole number of at least 1")
chunk_rows = _number(int, 1, "a whole number of at least 1", MAX_CHUNK_ROWS)
non_negative_int = _number(int, 0, "a whole number of at least 0")
non_negative_float = _number(float, 0, "a number of at least 0")
positive_float = _number(float, 1e-9, "a number above 0")


def add_header_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """--header or --no-header (not both; neither: detected) into `header`; `what` names the files concerned."""
    header = parser.add_mutually_exclusive_group()
    header.add_argument("--header", action="store_true", default=None,
                        help=f"{what}: the first row names the columns (default: detected)")
    header.add_argument("--no-header", dest="header", action="store_false", default=None,
                        help=f"{what}: the first row is data")
