"""Any exception one row's value raises while it is parsed makes that row a bad row with a reason, and reading goes
on: JSON nested past the recursion limit or deeper than an output can write, integers past Python's conversion
limit, numbers past a float, Parquet text that is not UTF-8 and dates past Python's; the job accounts for each.
(Parquet values cannot nest deeper than pyarrow's schema depth limit, 100, which is also MAX_NESTING.)"""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siamese_runtime.cli.command import main
from siamese_runtime.io.formats import pyarrow_parquet
from siamese_runtime.io.readers import MAX_NESTING, STORED_NOTE, open_table

GOOD = '{"s1": "花呗怎么还款", "s2": "花呗如何还钱"}\n'
DEEP = f"invalid JSON: a value nested more than {MAX_NESTING} levels deep"
HOSTILE_JSONL = [  # a line, and how its reason starts
    ('{"s1": "a", "s2": ' + "[" * 100_000 + "]" * 100_000 + "}", DEEP),  # past the recursion limit
    ('{"s1": "a", "s2": "b", "x": ' + "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1) + "}", DEEP),
    ('{"s1": "a", "s2": "b", "x": ' + "9" * 5000 + "}", "invalid JSON: a number of 5000 digits"),
    ('{"s1": "a", "s2": "b", "x": -1e999}', "invalid JSON: the number -1e999 is too large"),
    ('{"s1": "a", "s2": "b", "x": 1' + "0" * 400 + ".0}", "invalid JSON: the number 1000"),
]


def is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def problems(path: Path) -> list[tuple[int, str | None]]:
    with open_table(str(path), path.suffix[1:]) as table:
        return [(r.line, r.problem) for r in table.records]


def test_jsonl_values_no_parser_or_writer_can_hold_are_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    at_limit = '{"s1": "a", "s2": "b", "x": ' + "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1) + "}"
    path.write_text("".join(f"{line}\n{at_limit}\n" for line, _ in HOSTILE_JSONL), encoding="utf-8")
    found = problems(path)
    assert found[1::2] == [(n, None) for n in range(2, 2 * len(HOSTILE_JSONL) + 1, 2)]  # as deep as allowed: kept
    for (line, problem), (_, reason) in zip(found[::2], HOSTILE_JSONL):
        assert problem is not None and problem.startswith(reason), (line, problem)


def parquet_file(path: Path, column: object) -> Path:
    import pyarrow as pa

    count = len(column)  # type: ignore[arg-type]
    table = pa.table({"s1": ["花呗"] * count, "s2": ["借呗"] * count, "x": column})
    pyarrow_parquet().write_table(table, path, row_group_size=2)
    return path


def test_parquet_values_python_cannot_hold_are_bad_rows(tmp_path: Path) -> None:
    import pyarrow as pa

    offsets = pa.py_buffer(b"".join(n.to_bytes(4, "little") for n in (0, 2, 4, 6)))
    text = pa.Array.from_buffers(pa.string(), 3, [None, offsets, pa.py_buffer(b"ok\xff\xfeok")])
    assert problems(parquet_file(tmp_path / "text.parquet", text)) == [
        (1, None), (2, f"column 'x': invalid UTF-8 at byte 0{STORED_NOTE}"), (3, None)]
    dates = pa.array([0, 2**62, 5], pa.timestamp("us"))
    found = problems(parquet_file(tmp_path / "dates.parquet", dates))
    assert found[0] == (1, None) and found[2] == (3, None) and found[1][1].startswith("column 'x': unreadable value")


def text_array(values: list[bytes]) -> object:
    """An Arrow string array holding exactly these bytes, UTF-8 or not (pyarrow validates nothing here)."""
    import pyarrow as pa

    ends = [0, *itertools.accumulate(len(v) for v in values)]
    offsets = pa.py_buffer(b"".join(n.to_bytes(4, "little") for n in ends))
    return pa.Array.from_buffers(pa.string(), len(values), [None, offsets, pa.py_buffer(b"".join(values))])


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hostile=st.lists(st.binary(min_size=1, max_size=12).filter(lambda b: not is_utf8(b)), min_size=1, max_size=4),
       far=st.integers(min_value=253_402_300_800_000_000, max_value=2**63 - 1))
def test_a_parquet_reject_keeps_every_value_as_stored(tmp_path: Path, hostile: list[bytes], far: int) -> None:
    """No rejected Parquet row loses a value: text that is not UTF-8 comes back as its exact bytes (base64), at top
    level and inside a list; a date past year 9999 as its stored integer; the good rows are scored."""
    import pyarrow as pa

    count = len(hostile) + 1
    sentences = [b"\xe8\x8a\xb1\xe5\x91\x97"] + hostile  # the first row is good
    table = pa.table({
        "s1": text_array(sentences), "s2": ["借呗"] * count,
        "tags": pa.ListArray.from_arrays(pa.array(range(count + 1), pa.int32()), text_array(sentences)),
        "when": pa.array([0] + [far] * len(hostile), pa.timestamp("us")),
    })
    source, out = tmp_path / f"in{len(list(tmp_path.iterdir()))}.parquet", tmp_path / "out.tsv"
    pyarrow_parquet().write_table(table, source)
    out.unlink(missing_ok=True)
    assert main(["score", str(source), "-o", str(out), "--on-bad-row", "skip", "--provider", "cpu"]) == 0
    rejects = [json.loads(line) for line in Path(f"{out}.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in rejects] == list(range(2, count + 1))
    for reject, raw in zip(rejects, hostile):
        assert reject["reason"].endswith(STORED_NOTE)
        s1, _, tags, when = reject["values"]
        assert base64.b64decode(s1) == raw and [base64.b64decode(t) for t in json.loads(tags)] == [raw]
        assert int(when) == far
    assert out.read_text(encoding="utf-8").count("\n") == 2  # header and the good row


@pytest.mark.parametrize("policy", ["skip", "null"])
def test_a_job_rejects_each_hostile_row_and_scores_the_rest(tmp_path: Path, policy: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(GOOD + "".join(line + "\n" for line, _ in HOSTILE_JSONL), encoding="utf-8")
    code = main(["score", str(source), "-o", str(out), "--on-bad-row", policy, "--provider", "cpu"])
    assert code == 0, capsys.readouterr().err
    rejects = [json.loads(line) for line in Path(f"{out}.rejects.jsonl").read_text(encoding="utf-8").split("\n")[:-1]]
    assert [r["line"] for r in rejects] == list(range(2, len(HOSTILE_JSONL) + 2))
    assert out.read_text(encoding="utf-8").count("\n") == (1 if policy == "skip" else 1 + len(HOSTILE_JSONL))



def test_a_parquet_output_keeps_a_null_row_whose_value_its_column_cannot_hold(tmp_path: Path) -> None:
    """Parquet to Parquet under `null`: the row with text that is not UTF-8 is written with that cell and its score
    empty (its reject line keeps the bytes), the other rows as they are."""
    import pyarrow as pa

    source, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    table = pa.table({"s1": text_array([b"\xe8\x8a\xb1\xe5\x91\x97", b"bad\xff"]), "s2": ["借呗", "借呗"]})
    pyarrow_parquet().write_table(table, source)
    assert main(["score", str(source), "-o", str(out), "--on-bad-row", "null", "--provider", "cpu"]) == 0
    written = pyarrow_parquet().read_table(out).to_pylist()
    assert [(row["s1"], row["score"] is None) for row in written] == [("花呗", False), (None, True)]
    reject = json.loads(Path(f"{out}.rejects.jsonl").read_text(encoding="utf-8"))
    assert base64.b64decode(reject["values"][0]) == b"bad\xff"
