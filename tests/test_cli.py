"""The `siamese-runtime` command line, run as a real subprocess on real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .conftest import run_cli


def read_scores(path: Path) -> tuple[list[list[str]], np.ndarray]:
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]
    return rows, np.array([float(row[-1]) for row in rows])


def test_score_writes_one_row_per_input_row_with_the_score_last(lcqmc_500: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.tsv"
    result = run_cli("score", str(lcqmc_500), "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    rows, scores = read_scores(out)
    inputs = [line.split("\t") for line in lcqmc_500.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 500 and [row[:-1] for row in rows] == inputs
    assert np.all((scores >= 0) & (scores <= 1)) and len(np.unique(scores)) > 100
    assert b"scored 500 rows" in result.stderr and b"CPUExecutionProvider" in result.stderr


def test_stdin_to_stdout_matches_file_output(lcqmc_500: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.tsv"
    assert run_cli("score", str(lcqmc_500), "-o", str(out)).returncode == 0
    piped = run_cli("score", "-", "-o", "-", input_bytes=lcqmc_500.read_bytes())
    assert piped.returncode == 0 and piped.stdout == out.read_bytes()


def test_bad_row_stops_with_file_line_reason_and_writes_nothing(lcqmc_500: Path, tmp_path: Path) -> None:
    lines = lcqmc_500.read_text(encoding="utf-8").splitlines(keepends=True)
    broken = tmp_path / "broken.tsv"
    broken.write_text("".join(lines[:41] + ["只有一列\n"] + lines[41:]), encoding="utf-8")
    out = tmp_path / "scores.tsv"
    result = run_cli("score", str(broken), "-o", str(out))
    assert result.returncode == 1
    assert f"{broken}:42: expected sentence1<TAB>sentence2[<TAB>label], found 1 columns" in result.stderr.decode()
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["broken.tsv"]


def test_model_that_fails_to_load_is_named(lcqmc_500: Path, tmp_path: Path) -> None:
    result = run_cli("score", str(lcqmc_500), "-o", str(tmp_path / "o.tsv"), "--model", str(tmp_path))
    assert result.returncode == 1 and f"{tmp_path}/manifest.json: no such file" in result.stderr.decode()


def test_info_reports_providers_and_manifest() -> None:
    result = run_cli("info")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert "CPUExecutionProvider" in report["available_providers"]
    assert report["manifest"]["files"]["encoder.onnx"]["role"] == "encoder"
