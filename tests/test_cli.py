"""The `siamese-runtime` command line, run as a real subprocess on owned pairs (tests/fixtures)."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from benchmarks.scored_files import read_scored

from .conftest import REPO, run_cli


def test_score_writes_one_row_per_input_row_with_the_score_last(pairs_500: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.tsv"
    result = run_cli("score", str(pairs_500), "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    rows, scores = read_scored(out)
    inputs = [line.split("\t") for line in pairs_500.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 500 and [row[:-1] for row in rows] == inputs
    assert np.all((scores >= 0) & (scores <= 1)) and len(np.unique(scores)) > 100
    summary = result.stderr.decode().splitlines()[-1]
    assert summary.startswith("siamese-runtime: scored 500 rows in ") and " on CPU fp32; " in summary
    assert len(summary) < 120, summary  # one line on a terminal


def test_stdin_to_stdout_matches_file_output(pairs_500: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.tsv"
    assert run_cli("score", str(pairs_500), "-o", str(out)).returncode == 0
    piped = run_cli("score", "-", "-o", "-", input_bytes=pairs_500.read_bytes())
    assert piped.returncode == 0 and piped.stdout == out.read_bytes()


def test_bad_row_stops_with_file_line_reason_and_writes_nothing(pairs_500: Path, tmp_path: Path) -> None:
    lines = pairs_500.read_text(encoding="utf-8").splitlines(keepends=True)
    broken = tmp_path / "broken.tsv"
    broken.write_text("".join(lines[:41] + ["只有一列\n"] + lines[41:]), encoding="utf-8")
    out = tmp_path / "scores.tsv"
    result = run_cli("score", str(broken), "-o", str(out))
    assert result.returncode == 1
    assert f"{broken}:42: found 1 columns, expected 3" in result.stderr.decode()
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["broken.tsv"]


def test_model_that_fails_to_load_is_named(pairs_500: Path, tmp_path: Path) -> None:
    result = run_cli("score", str(pairs_500), "-o", str(tmp_path / "o.tsv"), "--model", str(tmp_path))
    assert result.returncode == 1 and f"{tmp_path}/manifest.json: no such file" in result.stderr.decode()


def test_info_reports_providers_and_manifest() -> None:
    short = run_cli("info")
    assert short.returncode == 0 and short.stdout.decode().startswith("siamese-runtime ")
    assert "CPUExecutionProvider: fp32" in short.stdout.decode() and len(short.stdout.splitlines()) < 12
    result = run_cli("info", "--json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["siamese_runtime"] == short.stdout.decode().split()[1]
    assert "CPUExecutionProvider" in report["available_providers"]
    assert report["manifest"]["files"]["encoder.onnx"]["role"] == "encoder"


def test_csv_with_named_columns_to_csv_jsonl_and_parquet(pairs_500: Path, tmp_path: Path) -> None:
    source = tmp_path / "pairs.csv"
    with source.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "question", "answer", "label"])
        for i, line in enumerate(pairs_500.read_text(encoding="utf-8").splitlines()):
            writer.writerow([f"q{i}", *line.split("\t")])
    reference = tmp_path / "ref.tsv"
    assert run_cli("score", str(pairs_500), "-o", str(reference), "--predict").returncode == 0
    expected = [row[-2:] for row in read_scored(reference)[0]]
    out = tmp_path / "out.csv"
    result = run_cli("score", str(source), "-o", str(out), "--columns", "question,answer", "--predict")
    assert result.returncode == 0, result.stderr.decode()
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[0] == ["id", "question", "answer", "label", "predicted", "score"]
    assert [row[0] for row in rows[1:]] == [f"q{i}" for i in range(500)] and [row[-2:] for row in rows[1:]] == expected
    jsonl, parquet = tmp_path / "out.jsonl", tmp_path / "out.parquet"
    assert run_cli("score", str(source), "-o", str(jsonl), "--left", "2", "--right", "answer").returncode == 0
    first = json.loads(jsonl.read_text(encoding="utf-8").splitlines()[0])
    assert list(first) == ["id", "question", "answer", "label", "score"] and first["id"] == "q0"
    assert run_cli("score", str(jsonl), "-o", str(parquet), "--columns", "question,answer").returncode == 0
    table = pytest.importorskip("pyarrow.parquet").read_table(parquet).to_pylist()
    assert len(table) == 500 and [f"{row['score']:.9g}" for row in table] == [row[-1] for row in expected]
    back = tmp_path / "back.tsv"
    assert run_cli("score", str(parquet), "-o", str(back), "--columns", "question,answer").returncode == 0
    header = back.read_text(encoding="utf-8").splitlines()[0]
    assert header == "id\tquestion\tanswer\tlabel\tscore"  # rescored: the old score column is replaced
    rescored = tmp_path / "rescored.csv"  # out.csv has a predicted column: without --predict it is left out, said
    result = run_cli("score", str(out), "-o", str(rescored), "--columns", "question,answer")
    assert result.returncode == 0 and b"'predicted' column is left out" in result.stderr
    assert next(csv.reader(rescored.open(encoding="utf-8"))) == ["id", "question", "answer", "label", "score"]


def test_cuda_request_fails_clearly_on_a_cpu_build(pairs_500: Path, tmp_path: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime build has CUDA")
    result = run_cli("score", str(pairs_500), "-o", str(tmp_path / "o.tsv"), "--provider", "cuda")
    assert result.returncode == 1 and b"CUDAExecutionProvider was requested" in result.stderr
    assert not (tmp_path / "o.tsv").exists()


def repeated(source: Path, times: int, destination: Path) -> Path:
    """A large input: a pair file written `times` times over."""
    block = source.read_bytes()
    with destination.open("wb") as stream:
        for _ in range(times):
            stream.write(block)
    return destination


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "siamese_runtime", *args]


def test_kill_9_mid_job_then_resume_gives_the_uninterrupted_output(
    owned_pairs: Callable[..., Path], tmp_path: Path
) -> None:
    source = repeated(owned_pairs(10_000), 6, tmp_path / "pairs.tsv")  # 60,000 pairs, 17,000 distinct sentences
    args = ["--chunk-rows", "1000", "--predict", "--provider", "cpu"]
    whole = tmp_path / "whole.tsv"
    assert run_cli("score", str(source), "-o", str(whole), *args).returncode == 0
    out = tmp_path / "out.tsv"
    checkpoint = tmp_path / ".out.tsv.checkpoint.json"
    job = subprocess.Popen(cli_command("score", str(source), "-o", str(out), *args), cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    job.send_signal(signal.SIGKILL)
    assert job.wait() == -signal.SIGKILL, "the job finished before it could be killed"
    done = json.loads(checkpoint.read_text())["progress"]["rows"]
    assert 0 < done < 60_000 and not out.exists()
    resumed = run_cli("score", str(source), "-o", str(out), *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert f"{done} done before resuming".encode() in resumed.stderr
    assert out.read_bytes() == whole.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tsv", "pairs.tsv", "whole.tsv"]


# Run a command from a small process and print its peak RSS (kB). Not measured from pytest's own child:
# a child's ru_maxrss starts from the parent's pages it was forked (or vforked) with.
PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)


@pytest.mark.slow
def test_a_million_pairs_stream_with_peak_rss_under_500_mb(owned_pairs: Callable[..., Path], tmp_path: Path) -> None:
    source = repeated(owned_pairs(12_500), 80, tmp_path / "million.tsv")  # 1,000,000 pairs, 21,000 distinct sentences
    out = tmp_path / "scores.tsv"
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *cli_command("score", str(source), "-o", str(out), "--provider", "cpu")],
        capture_output=True, cwd=REPO, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr.decode()
    peak_mb = int(result.stdout) / 1024  # kilobytes on Linux
    assert peak_mb < 500, f"peak RSS {peak_mb:.0f} MB"
    assert b"scored 1000000 rows" in result.stderr
    with out.open("rb") as stream:
        assert sum(1 for _ in stream) == 1_000_000


def test_the_progress_bar_shows_percent_done_and_warnings_never_land_on_it(pairs_500: Path, tmp_path: Path) -> None:
    source = tmp_path / "pairs.tsv"
    source.write_bytes(pairs_500.read_bytes() * 4 + ("花呗" * 50 + "\t借呗\t1\n").encode())  # one truncated sentence
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    job = subprocess.Popen(cli_command("score", str(source), "-o", str(tmp_path / "out.tsv"), "--chunk-rows", "200"),
                           cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=follower)
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the job closed its end
            break
        if not chunk:
            break
        screen += chunk
    assert job.wait(timeout=120) == 0
    text = screen.decode(errors="replace")
    assert "100%|" in text and "2,001 pairs, " in text and "pairs/s" in text  # bytes read of a known size
    warning = text.index("siamese-runtime: sentences longer than max_length")
    assert text[:warning].endswith("\r"), "the warning was written into the bar's line"


def test_scores_go_to_stdout_by_default_and_an_output_extension_must_name_a_format(tmp_path: Path) -> None:
    pairs = REPO / "examples" / "pairs.tsv"
    default = run_cli("score", str(pairs))
    assert default.returncode == 0 and default.stdout.decode().count("\n") == 20
    refused = run_cli("score", str(pairs), "-o", str(tmp_path / "scores.xlsx"))
    assert refused.returncode == 2 and b".xlsx names no output format" in refused.stderr
    assert sorted(tmp_path.iterdir()) == []
    told = run_cli("score", str(pairs), "-o", str(tmp_path / "scores.xlsx"), "--output-format", "csv")
    assert told.returncode == 0
    assert (tmp_path / "scores.xlsx").read_bytes() == run_cli("score", str(pairs), "--output-format", "csv").stdout


@pytest.mark.parametrize(("flags", "said"), [
    (["--header", "--no-header"], "argument --no-header: not allowed with argument --header"),
    (["--actors", "2"], "--actors is for --engine ray"),
    (["--cpus-per-actor", "2", "--ray-address", "auto"], "--cpus-per-actor, --ray-address are for --engine ray"),
    (["--provider", "cpu,nowhere"], "unknown provider 'nowhere'"),
])
def test_flags_that_contradict_or_do_nothing_are_usage_errors(tmp_path: Path, flags: list[str], said: str) -> None:
    source = tmp_path / "in.tsv"
    source.write_text("花呗\t借呗\n", encoding="utf-8")
    result = run_cli("score", str(source), *flags)
    assert result.returncode == 2 and said in result.stderr.decode(), result.stderr.decode()
    assert not result.stdout


def test_providers_are_taken_as_a_comma_separated_list_of_onnxruntime_names(tmp_path: Path) -> None:
    source = tmp_path / "in.tsv"
    source.write_text("花呗\t借呗\n", encoding="utf-8")
    by_alias = run_cli("score", str(source), "--provider", "cpu")
    by_name = run_cli("score", str(source), "--provider", "CPUExecutionProvider")
    assert by_alias.returncode == by_name.returncode == 0 and by_alias.stdout == by_name.stdout
    assert "on CPU fp32" in by_name.stderr.decode()
