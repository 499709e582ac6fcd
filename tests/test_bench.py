"""Benchmarks in their quick modes: the outputs' structure, never their timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from siamese_runtime.bench.report import plot_latency, validate_bench_report

from .conftest import run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_bench_quick_writes_a_valid_report_with_every_profile(pairs_500: Path, tmp_path: Path) -> None:
    result = run_cli("bench", "--quick", "--pairs", str(pairs_500), "--profile", "--out", str(tmp_path), "--no-plots")
    assert result.returncode == 0, result.stderr.decode()
    [report_path] = tmp_path.glob("runtime-*.json")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    validate_bench_report(report)
    rows = report["rows"]
    assert {row["profile"] for row in rows} == {f"real:{pairs_500.parent.name}/pairs_500.tsv", "fixed:8"}
    assert {row["batch_size"] for row in rows} == {1, 8}
    assert all(row["provider"] == "CPUExecutionProvider" for row in rows)
    assert {row["precision"] for row in rows} == {"fp32", "int8", "fp16"}  # the default model ships all three
    assert all(s["precision"] == "*" for s in report["skipped"])  # only providers this build lacks are skipped
    assert report["op_profile"]["ops"][0]["op_type"] == "LSTM" and report["op_profile"]["pairs"] == 500
    assert "| CPU | fp32 |" in result.stdout.decode()
    assert (tmp_path / report_path.name.replace(".json", ".md")).is_file()


@pytest.mark.parametrize(("repeats", "shown"), [(3, {"p50"}), (12, {"p50", "p90"}), (100, {"p50", "p90", "p99"})])
def test_percentiles_are_reported_only_from_samples_that_reach_beyond_them(
    tmp_path: Path, repeats: int, shown: set[str]
) -> None:
    result = run_cli("bench", "--quick", "--batch-sizes", "1", "--precisions", "fp32", "--repeats", str(repeats),
                     "--out", str(tmp_path), "--no-plots")
    assert result.returncode == 0, result.stderr.decode()
    [row] = json.loads(next(tmp_path.glob("runtime-*.json")).read_text())["rows"]
    assert {q for q, value in row["latency_ms"].items() if value is not None} == shown and row["spread"] >= 0


def test_noise_warnings_name_a_busy_machine_and_exactly_the_rows_that_vary() -> None:
    from siamese_runtime.bench.matrix import NOISY_SPREAD, noise_warnings

    row = {"provider": "CPUExecutionProvider", "precision": "fp32", "profile": "fixed:8", "batch_size": 8}
    rows = [{**row, "spread": spread} for spread in (0.0, NOISY_SPREAD, NOISY_SPREAD * 1.01, 3.0)]
    assert noise_warnings(rows[:2], load_average=0.4, cores=2) == []
    [busy, varying] = noise_warnings(rows, load_average=1.5, cores=2)
    assert busy.startswith("the machine was busy: load average 1.50 over 2 cores")
    assert varying.startswith("2 of 4 rows vary by more than 25%") and "worst 300%: CPU fp32 fixed:8 batch 8" in varying


def test_fixed_lengths_beyond_max_length_are_truncated_and_reported(tmp_path: Path) -> None:
    result = run_cli("bench", "--quick", "--lengths", "100", "--batch-sizes", "2", "--precisions", "fp32",
                     "--out", str(tmp_path), "--no-plots")
    assert result.returncode == 0, result.stderr.decode()
    [row] = json.loads(next(tmp_path.glob("runtime-*.json")).read_text())["rows"]
    assert row["profile"] == "fixed:100" and row["mean_tokens"] == 64


def test_bench_rejects_a_non_positive_batch_size(tmp_path: Path) -> None:
    result = run_cli("bench", "--batch-sizes", "0", "--out", str(tmp_path))
    assert result.returncode == 2 and b"0 is not a whole number of at least 1" in result.stderr


def test_bench_with_nothing_it_can_measure_says_why_and_writes_nothing(tmp_path: Path) -> None:
    result = run_cli("bench", "--quick", "--providers", "NoSuchExecutionProvider", "--out", str(tmp_path))
    assert result.returncode == 1, result.stderr.decode()
    stderr = result.stderr.decode()
    assert "nothing could be measured: NoSuchExecutionProvider / *: not in this onnxruntime build" in stderr
    assert "internal error" not in stderr and list(tmp_path.iterdir()) == []


def test_latency_plot_is_a_png(tmp_path: Path) -> None:
    result = run_cli("bench", "--quick", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr.decode()
    [plot] = tmp_path.glob("runtime-*-latency.png")
    assert plot.read_bytes().startswith(PNG_MAGIC)
    assert next(tmp_path.glob("runtime-*-throughput.png")).read_bytes().startswith(PNG_MAGIC)
    rows = json.loads(next(tmp_path.glob("runtime-*.json")).read_text())["rows"]
    assert plot_latency(rows, tmp_path / "again.png", "title").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.slow
def test_benchmarks_quick_compares_every_way_on_the_same_weights(
    tiny_run: Path, tiny_model: Path, data: Path, tmp_path: Path
) -> None:
    pytest.importorskip("tf2onnx", reason="the baselines need the [train] extra")
    from benchmarks import report
    from benchmarks.run import main

    results = main(["--quick", "--run", str(tiny_run), "--model", str(tiny_model), "--data", str(data),
                    "--repeats", "1", "--out", str(tmp_path)])
    report.validate(results)
    validate_bench_report(results["runtime"])
    assert [row["file"] for row in results["files"]] == [
        "bq/test.tsv", "lcqmc/test.tsv", "bq/test.tsv + lcqmc/test.tsv"
    ]
    assert results["settings"]["plain_onnx_ops"]["Loop"] > 0
    for row in results["files"]:
        assert row["agreement_max_abs_diff"]["runtime_vs_keras"] <= 1e-5
        assert row["agreement_max_abs_diff"]["plain_onnx_vs_keras"] <= 1e-5
        assert row["agreement_max_abs_diff"]["cli_vs_keras"] <= 1e-5  # the command, as a process, in fp32
        assert row["needed_tokens"] <= row["padded_tokens"]
        stages = row["cli_stage_seconds"]
        assert set(stages) == {"read", "tokenize", "encode", "wait", "head", "write", "other"}
        assert stages["other"] >= 0  # the job thread's stages, waiting for the encoder included, fit in its time
    assert list(results["ways"]) == ["keras", "plain_onnx", "runtime", "cli", "cli_int8"]
    plots = [path.name for path in tmp_path.glob("*.png")]
    assert any(name.endswith("-end-to-end.png") for name in plots)
    assert any(name.endswith("-throughput.png") for name in plots)
    on_disk = json.loads(next(tmp_path.glob("*-quick.json")).read_text(encoding="utf-8"))
    assert on_disk["files"] == results["files"]


def test_bench_on_an_empty_pairs_file_is_one_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    result = run_cli("bench", "--quick", "--pairs", str(empty), "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and result.stderr.decode().endswith(f"error: {empty}: no pairs to measure "
                                                                       "(an empty file)\n"), result.stderr


def test_stage_split_compares_two_revisions_on_the_same_pairs(data: Path, tmp_path: Path) -> None:
    from benchmarks.stage_split import main

    results = main([str(tmp_path), "--before", "HEAD", "--pairs", "300"])
    assert results["same_output"] and set(results["best"]) == {"before", "after"}
    for best in results["best"].values():
        assert {"read", "encode", "write"} <= set(best["stage_seconds"]) and 0 < best["outside_encoder"] < 1
        assert best["peak_rss_mib"] > 10
    assert "| after |" in (tmp_path / "stage-split.md").read_text(encoding="utf-8")
