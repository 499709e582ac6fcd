"""Hostile pair files, generated: every bad-row policy ends in exit 0 or a clean error, never a traceback,
with every input row accounted for, no stray file, and the input untouched."""

from __future__ import annotations

import base64
import json
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from io import StringIO
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from siamese_runtime.cli.command import EXIT_ERROR, EXIT_USAGE, main

SENTENCES = ["花呗怎么还款", "借呗额度", "为什么我的花呗不能用", "Ｈｕａｂｅｉ", "a", "1", "0"]
ODD = ["", " ", "\u3000", '"', '""', "'", ",", "\x00", "\\ud800", "\\ud83d\\ude00", "\ufeff", "é", "\r", "NaN",
       "{", "}", "[1]", "长" * 140_000]
LINE_ENDS = [b"\n", b"\r\n", b"\r", b""]
BOMS = [b"", b"", b"\xef\xbb\xbf", b"\xff\xfe"]

cells = st.one_of(st.sampled_from(SENTENCES), st.sampled_from(ODD), st.text(max_size=8))


@st.composite
def hostile_files(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(["tsv", "csv", "jsonl"]))
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=4), max_size=12))
    ends = draw(st.lists(st.sampled_from(LINE_ENDS), min_size=len(rows), max_size=len(rows)))
    lines = []
    for row, end in zip(rows, ends):
        if fmt == "jsonl":
            text = "{" + ", ".join(f'"s{i + 1}": "{cell}"' for i, cell in enumerate(row)) + "}"
        else:
            text = ("\t" if fmt == "tsv" else ",").join(row)
        lines.append(text.encode("utf-8", errors="surrogatepass") + (end or b"\n"))
    data = draw(st.sampled_from(BOMS)) + b"".join(lines)
    if draw(st.integers(0, 9)) == 0:
        data = draw(st.binary(max_size=200))
    return fmt, data


def rows_in(data: bytes) -> int:
    """Rows of a TSV or JSONL file, counted as the job must: one per line ended by LF, CRLF or a lone CR (what
    bytes.splitlines breaks at), and a last one; a byte-order mark is not a row."""
    return len(data.removeprefix(b"\xef\xbb\xbf").splitlines())


def lost_in_rejects(fmt: str, data: bytes, rejects: list[dict]) -> list[dict]:
    """The reject lines from which the row's bytes cannot be had back: where a reject carries "raw" or
    "raw_base64", those must be the line as the file has it (its line break included); else a TSV row's values
    must join to it, and a JSONL line has them always (its values never show it whole: other keys, numbers as
    written, its line break); a CSV row without them was parsed, its fields its values."""
    lines = data.removeprefix(b"\xef\xbb\xbf").splitlines(keepends=True)
    lost = []
    for reject in rejects:
        line = lines[reject["line"] - 1] if fmt != "csv" else None
        if "raw_base64" in reject or "raw" in reject:
            raw = base64.b64decode(reject["raw_base64"]) if "raw_base64" in reject else reject["raw"].encode()
            kept = line is None or raw == line
        elif fmt == "tsv":
            kept = "\t".join(reject["values"]).encode() == line.rstrip(b"\r\n") if line is not None else False
        elif fmt == "jsonl":
            kept = False
        else:
            kept = True  # a CSV row read whole: its fields are its values
        if not kept:
            lost.append(reject)
    return lost


def lines_of(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@contextmanager
def default_sigterm() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(argv: list[str]) -> tuple[int, str]:
    stderr = StringIO()
    with redirect_stderr(stderr), default_sigterm():
        code = main(argv)
    return code, stderr.getvalue()


@pytest.mark.slow  # 250 examples, each a job
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(hostile_files(), st.sampled_from(["tsv", "jsonl"]))
def test_hostile_files_keep_every_invariant_under_every_policy(file: tuple[str, bytes], out_format: str) -> None:
    fmt, data = file
    outcomes = {}
    for policy in ("stop", "skip", "null"):
        with tempfile.TemporaryDirectory() as folder:
            source, out = Path(folder) / f"in.{fmt}", Path(folder) / f"out.{out_format}"
            source.write_bytes(data)
            flags = [] if fmt == "jsonl" else ["--no-header"]
            code, stderr = run(["score", str(source), "-o", str(out), "--on-bad-row", policy, "--chunk-rows", "3",
                                "--provider", "cpu", *flags])
            event(f"{policy}: exit {code}")
            assert "Traceback" not in stderr and "internal error" not in stderr, stderr
            assert code in (0, EXIT_ERROR, EXIT_USAGE), (code, stderr)
            assert source.read_bytes() == data
            rejects = Path(f"{out}.rejects.jsonl")
            written = {out.name} | ({rejects.name} if policy != "stop" else set())
            expected = {source.name} | (written if code == 0 else set())
            assert {p.name for p in Path(folder).iterdir()} == expected
            if code == 0:
                # split on \n alone: splitlines() would also break a line at a U+0085 or U+2028 inside a value
                lines = rejects.read_text(encoding="utf-8").split("\n")[:-1] if policy != "stop" else []
                bad = [json.loads(line) for line in lines]
                header = 1 if fmt == "jsonl" and out_format == "tsv" else 0  # JSONL keys name the columns
                outcomes[policy] = (lines_of(out) - header, len(bad))
                assert not lost_in_rejects(fmt, data, bad), lost_in_rejects(fmt, data, bad)
                if fmt != "csv":
                    written = outcomes[policy][0] + (len(bad) if policy == "skip" else 0)
                    assert written == rows_in(data) or rows_in(data) == 0, (policy, written, rows_in(data))
            else:
                assert stderr.strip().split("\n")[-1].startswith("siamese-runtime: error: "), stderr
                outcomes[policy] = None
    if outcomes["skip"] is not None and outcomes["null"] is not None:
        skipped, null = outcomes["skip"], outcomes["null"]
        assert null == (skipped[0] + skipped[1], skipped[1])
        assert (outcomes["stop"] is not None) == (skipped[1] == 0)


@pytest.mark.parametrize("policy", ["stop", "skip", "null"])
def test_the_fuzz_harness_sees_a_bad_row(policy: str, tmp_path: Path) -> None:
    """The invariants above are not vacuous: a known bad row is counted as the fuzz test counts it."""
    source, out = tmp_path / "in.tsv", tmp_path / "out.tsv"
    source.write_text("花呗\t借呗\n只有一列\n额度\t还款\n", encoding="utf-8")
    code, _ = run(["score", str(source), "-o", str(out), "--on-bad-row", policy, "--no-header"])
    assert code == (EXIT_ERROR if policy == "stop" else 0)
    if policy != "stop":
        assert lines_of(out) == {"skip": 2, "null": 3}[policy] and lines_of(Path(f"{out}.rejects.jsonl")) == 1
