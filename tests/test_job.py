"""Batch jobs on owned pairs: one output row per input row, bad-row policies, checkpoints and resume."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.scored_files import read_scored
from siamese_runtime import BadRowError, Scorer, SiameseRuntimeError
from siamese_runtime.checkpoint import Checkpoint
from siamese_runtime.io.safe_output import partial_path
from siamese_runtime.job import JobOptions, run_job

SCORER = Scorer(providers="cpu")


def test_stop_names_the_first_bad_row_and_leaves_nothing(broken: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.tsv"
    with pytest.raises(BadRowError, match=rf"^{broken}:11: found 2 columns, expected 4$"):
        run_job(SCORER, JobOptions(str(broken), str(out), chunk_rows=4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.tsv"]


@pytest.mark.parametrize("policy", ["skip", "null"])
def test_skip_and_null_write_rejects_and_count_them(broken: Path, tmp_path: Path, policy: str) -> None:
    out = tmp_path / "out.tsv"
    options = JobOptions(str(broken), str(out), left="2", right="3", id_column="1", on_bad_row=policy, chunk_rows=64)
    summary = run_job(SCORER, options)
    rejects = [json.loads(line) for line in Path(f"{out}.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["id"], r["reason"]) for r in rejects] == [
        (11, "10", "found 2 columns, expected 4"), (21, "20", "sentence1 is empty"),
        (31, "30", "sentence2 is empty"), (501, "500", "invalid UTF-8 at byte 4"),
    ]
    assert [sorted(set(r) - {"line", "id", "reason", "values"}) for r in rejects] == [[], [], [], ["raw_base64"]]
    assert base64.b64decode(rejects[-1]["raw_base64"]) == broken.read_bytes().splitlines(keepends=True)[-1]
    rows = read_scored(out)[0]
    assert summary.rows == 501 and summary.bad_rows == 4 and summary.written == len(rows)
    if policy == "skip":
        assert len(rows) == 497 and "10" not in [row[0] for row in rows]
    else:
        assert len(rows) == 501 and [row[0] for row in rows] == [str(i) for i in range(501)]
        assert rows[10] == ["10", "只有一列", "", "", ""] and all(rows[i][-1] == "" for i in (10, 20, 30, 500))
        assert all(float(row[-1]) >= 0 for i, row in enumerate(rows) if i not in (10, 20, 30, 500))


class Crash(Exception):
    """Stands for the process dying between two chunks."""


def crash_after(chunks: int) -> Callable[[object], None]:
    """An on_progress callback that raises Crash after `chunks` chunks: a process dying after a checkpoint."""
    seen: list[object] = []

    def on_progress(progress: object) -> None:
        seen.append(progress)
        if len(seen) == chunks:
            raise Crash

    return on_progress


@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".jsonl"])
def test_resume_after_a_crash_gives_the_uninterrupted_bytes(broken: Path, tmp_path: Path, suffix: str) -> None:
    options = dict(left="2", right="3", id_column="1", on_bad_row="null", chunk_rows=50, predict=True)
    whole = tmp_path / f"whole{suffix}"
    run_job(SCORER, JobOptions(str(broken), str(whole), **options))
    out = tmp_path / f"out{suffix}"
    with pytest.raises(Crash):
        run_job(Scorer(providers="cpu"), JobOptions(str(broken), str(out), **options), crash_after(3))
    assert not out.exists() and partial_path(str(out)).exists()
    with partial_path(str(out)).open("ab") as partial:
        partial.write(b"a half-written row that the checkpoint does not cover")
    summary = run_job(Scorer(providers="cpu"), JobOptions(str(broken), str(out), resume=True, **options))
    assert summary.resumed_rows == 150 and summary.rows == 501 and summary.bad_rows == 4
    assert out.read_bytes() == whole.read_bytes()
    assert Path(f"{out}.rejects.jsonl").read_bytes() == Path(f"{whole}.rejects.jsonl").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_resume_is_refused_when_the_input_or_options_changed(pairs_500: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.tsv"
    source.write_bytes(pairs_500.read_bytes())
    out = tmp_path / "out.tsv"
    with pytest.raises(Crash):
        run_job(SCORER, JobOptions(str(source), str(out), chunk_rows=100), crash_after(1))
    with pytest.raises(SiameseRuntimeError, match=r"cannot resume: .*\(predict\); rerun without --resume"):
        run_job(SCORER, JobOptions(str(source), str(out), chunk_rows=100, predict=True, resume=True))
    os.utime(source, ns=(0, 0))
    with pytest.raises(SiameseRuntimeError, match=r"cannot resume: .*\(input_mtime_ns\)"):
        run_job(SCORER, JobOptions(str(source), str(out), chunk_rows=100, resume=True))
    assert Checkpoint(str(out), {}).path.exists()  # refusing leaves the interrupted job as it was
    summary = run_job(SCORER, JobOptions(str(source), str(out), chunk_rows=100))  # start over
    assert summary.resumed_rows == 0 and len(read_scored(out)[0]) == 500


def _appended(path: Path) -> None:
    with path.open("ab") as stream:
        stream.write(path.read_bytes()[:200])


def _rewritten_in_place_with_its_time_put_back(path: Path) -> None:
    before = path.stat()
    with path.open("r+b") as stream:
        stream.seek(before.st_size // 2)
        stream.write(b"x" * 40)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _replaced(path: Path) -> None:
    other = path.with_name("other.tsv")
    other.write_bytes(path.read_bytes()[::-1].replace(b"\t\n", b"\n"))
    os.replace(other, path)


@pytest.mark.parametrize("change", [_appended, _rewritten_in_place_with_its_time_put_back, _replaced])
@pytest.mark.parametrize("to_stdout", [False, True])
def test_an_input_changed_while_the_job_reads_it_publishes_nothing(
    pairs_500: Path, tmp_path: Path, change: Callable[[Path], None], to_stdout: bool
) -> None:
    """Another program writing to the input mid-job (rows read part old, part new): the job refuses at its commit
    point, whatever else it was told, and leaves no output, partial file or checkpoint to resume from."""
    source = tmp_path / "in.tsv"
    source.write_bytes(pairs_500.read_bytes())
    out = "-" if to_stdout else str(tmp_path / "out.tsv")
    changed: list[int] = []

    def change_once(progress: object) -> None:
        if not changed:
            changed.append(1)
            change(source)

    with pytest.raises(SiameseRuntimeError, match=r"in\.tsv changed while the job read it \(.+\): .*nothing was"):
        run_job(SCORER, JobOptions(str(source), out, chunk_rows=100, on_bad_row="skip",
                                   reject_file=str(tmp_path / "rejects.jsonl")), on_progress=change_once)
    assert changed and sorted(p.name for p in tmp_path.iterdir()) == ["in.tsv"]


def test_resume_needs_files_and_starts_over_without_a_checkpoint(pairs_500: Path, tmp_path: Path) -> None:
    with pytest.raises(SiameseRuntimeError, match="--resume needs an input file"):
        run_job(SCORER, JobOptions(str(pairs_500), "-", resume=True))
    summary = run_job(SCORER, JobOptions(str(pairs_500), str(tmp_path / "o.tsv"), resume=True))
    assert summary.resumed_rows == 0 and summary.rows == 500


def test_json_values_that_are_not_text_are_bad_rows(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"s1": "花呗", "s2": "借呗"}\n{"s1": 12, "s2": "借呗"}\n{"s1": null, "s2": "借呗"}\n'
                      '{"s2": "借呗"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    summary = run_job(SCORER, JobOptions(str(source), str(out), on_bad_row="null"))
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    reasons = [json.loads(line)["reason"] for line in Path(f"{out}.rejects.jsonl").read_text().splitlines()]
    assert reasons == ["sentence1 is int, not text", "sentence1 is missing", "sentence1 is missing"]
    assert summary.bad_rows == 3 and [row["score"] is None for row in rows] == [False, True, True, True]
    assert rows[1] == {"s1": 12, "s2": "借呗", "score": None}


def test_overlong_sentences_are_counted_and_warned_once_per_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "long.tsv"
    source.write_text("".join(f"{'花呗' * 40}{i}\t借呗\n" for i in range(30)), encoding="utf-8")
    summary = run_job(Scorer(providers="cpu"), JobOptions(str(source), str(tmp_path / "o.tsv"), chunk_rows=4))
    assert summary.truncated == 30
    assert len([r for r in caplog.records if "truncated" in r.getMessage()]) == 1


@pytest.mark.parametrize(("name", "content", "said"), [
    ("empty.tsv", b"", "has no rows:"), ("empty.jsonl", b"", "has no rows:"), ("blank.parquet", None, "has no rows:"),
    ("header.tsv", b"sentence1\tsentence2\n", "has no rows below its header:"),
    ("header.csv", b"id,sentence1,sentence2\r\n", "has no rows below its header:"),
])
def test_an_input_without_rows_is_warned_about_and_gives_an_output_without_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, content: bytes | None, said: str
) -> None:
    source = tmp_path / name
    if content is None:
        pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
        pq.write_table(pa.table({"s1": pa.array([], pa.string()), "s2": pa.array([], pa.string())}), source)
    else:
        source.write_bytes(content)
    summary = run_job(Scorer(providers="cpu"), JobOptions(str(source), str(tmp_path / "out.jsonl")))
    assert summary.rows == 0 and (tmp_path / "out.jsonl").read_bytes() == b""
    assert [r.getMessage() for r in caplog.records if "no rows" in r.getMessage()] == [
        f"{source} {said} the output has none either"]
