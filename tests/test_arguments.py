"""The command line's number flags, against an independent definition: what a person types as a number."""

from __future__ import annotations

import argparse
import math
import re

from hypothesis import example, given
from hypothesis import strategies as st

from siamese_runtime.cli.arguments import non_negative_int, positive_float, positive_int

SPACE = "[ \t\n\r\x0b\x0c]*"
WHOLE = re.compile(f"{SPACE}[+-]?[0-9]+{SPACE}")
DECIMAL = re.compile(f"{SPACE}[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?{SPACE}")
NUMBERISH = st.text(st.sampled_from("0123456789+-_.eE \t١٣\u00a0infa"), max_size=8)


def accepted(parse: object, text: str) -> bool:
    try:
        parse(text)  # type: ignore[operator]
    except argparse.ArgumentTypeError:
        return False
    return True


@given(NUMBERISH | st.text(max_size=6))
@example("1_0")
@example("\u0663")
@example(" 7\n")
@example("+3")
@example("-0")
def test_a_whole_number_flag_takes_ascii_digits_and_nothing_else(text: str) -> None:
    assert accepted(positive_int, text) == bool(WHOLE.fullmatch(text) and int(text) >= 1)
    assert accepted(non_negative_int, text) == bool(WHOLE.fullmatch(text) and int(text) >= 0)


@given(NUMBERISH | st.text(max_size=6))
@example("inf")
@example("nan")
@example("1e-10")
@example("1_0.5")
@example(".5")
def test_a_number_flag_takes_finite_ascii_decimals_above_its_minimum(text: str) -> None:
    assert accepted(positive_float, text) == bool(
        DECIMAL.fullmatch(text) and math.isfinite(float(text)) and float(text) >= 1e-9)
