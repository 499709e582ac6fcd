"""`python -m benchmarks.run`: the runtime matrix, the three end-to-end baselines, the machine's limit and an
onnxruntime profile, in one run, written to benchmarks/results/ as dated JSON, Markdown and PNG."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.scored_files import read_scored
from siamese_runtime.bench.machine import machine_info
from siamese_runtime.bench.matrix import BenchConfig, run_bench
from siamese_runtime.bench.pair_files import file_label, read_pair_rows
from siamese_runtime.bench.report import validate_bench_report
from siamese_runtime.heads import Calibration
from siamese_runtime.model_folder import ModelFolder
from train.data_home import ENV, REPO, TEST_FILES, data_home

from . import baselines, limit, overhead, report

TINY_TRAIN_FILES = ("atec/train.tsv", "bq/dev.tsv")  # --quick without --run trains on these
QUICK_ROWS = 200
RAW_WAYS = ("keras", "plain_onnx")  # the pair model's own output: the head's score before the calibration
log = logging.getLogger("benchmarks")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--run", type=Path, help="training run directory for (a) and (b); required unless --quick")
    parser.add_argument("--model", type=Path, help="model folder for (c), exported from --run "
                        "(default: models/default; with --quick and no --run: the tiny run's export)")
    parser.add_argument("--data", type=Path, help=f"data folder holding --files (default: ${ENV}, else ../shared/data)")
    parser.add_argument("--files", nargs="+", default=list(TEST_FILES), help="pair files, relative to --data")
    parser.add_argument("--repeats", type=int, default=3, help="timed end-to-end runs per file and way (best kept)")
    parser.add_argument("--out", type=Path,
                        help="results folder (default: benchmarks/results; --quick: bench-results/quick)")
    parser.add_argument("--quick", action="store_true", help=f"seconds: the first {QUICK_ROWS} rows, quick matrix")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    args.data = args.data or data_home()
    needed = [*args.files, *(TINY_TRAIN_FILES if args.run is None else ())]
    if absent := [name for name in needed if not (args.data / name).is_file()]:
        parser.error(f"{', '.join(absent)} not in the data folder {args.data}: pass --data, set {ENV}, or fetch the "
                     "data with python -m train.fetch (docs/data.md)")
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    log.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="siamese-bench-") as scratch:
        work = Path(scratch)
        if args.run is None:
            if not args.quick:
                parser.error("--run is required (a training run directory); only --quick trains a tiny one")
            args.run, args.model = _tiny_run(work, args.data)
        model = args.model or REPO / "models" / "default"
        files = [_input_file(args.data / name, work, args.quick) for name in args.files]
        results = measure(args.run, model, files, args.repeats, args.quick, work)
    out = args.out or (REPO / "bench-results" / "quick" if args.quick else REPO / "benchmarks" / "results")
    for path in report.write(results, out, plots=not args.no_plots):
        log.info("wrote %s", path)
    return results


def measure(run_dir: Path, model: Path, files: list[Path], repeats: int, quick: bool, work: Path) -> dict[str, Any]:
    """Everything of one benchmark run, as a JSON-ready dict (see results.schema.json)."""
    config = BenchConfig.quick_config if quick else BenchConfig
    log.info("runtime matrix")
    runtime_report = run_bench(config(model=str(model), pairs_file=str(files[0]), op_profile=True))
    validate_bench_report(runtime_report)
    log.info("loading the baselines")
    keras_way = baselines.KerasPredict(run_dir)
    plain = baselines.PlainOnnx(keras_way, work)
    command_line = baselines.CommandLine(model)
    ways: list[baselines.Baseline] = [keras_way, plain, baselines.Runtime(model), command_line,
                                      baselines.CommandLine(model, "int8")]
    layers = limit.lstm_layers(ModelFolder.load(model).encoder_path())
    per_token = limit.flops_per_token(layers)
    per_pair = limit.head_flops(ModelFolder.load(model))
    labels = [file_label(path) for path in files]
    rows = []
    for label, path in [*zip(labels, files), (" + ".join(labels), _concatenated(files, work))]:
        log.info("end to end on %s", label)
        rows.append({"file": label, **limit.file_work(path, keras_way.tokenizer, per_token, per_pair),
                     **_end_to_end(ways, path, repeats, work, ModelFolder.load(model).calibration),
                     "cli_stage_seconds": command_line.stage_seconds(str(path))})
    log.info("single-pair latency: API vs bare onnxruntime")
    first_pairs = [(row.columns[0], row.columns[1]) for row in read_pair_rows(str(files[0]))][: 50 if quick else 500]
    single_pair = overhead.single_pair_overhead(model, first_pairs)
    log.info("matrix-multiply peaks")
    peaks = {"numpy_sgemm": limit.numpy_sgemm_peak(), "onnxruntime_matmul": limit.onnxruntime_matmul_peak()}
    for row in rows:
        row["limit"] = _share(row, peaks)
    return {
        "schema": "siamese-benchmarks/1",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine_info(),
        "run": str(run_dir),
        "model": str(model),
        "ways": {way.key: way.label for way in ways},
        "settings": {
            "keras_predict_batch": baselines.KERAS_PREDICT_BATCH,
            "plain_onnx_batch": baselines.RUNTIME_BATCH,
            "plain_onnx_ops": plain.op_counts,
            "repeats": repeats,
        },
        "files": rows,
        "single_pair": single_pair,
        "limit": {"formula": limit.FORMULA, "lstm_layers": layers, "flops_per_token": per_token, **peaks},
        "runtime": runtime_report,
    }


def _input_file(path: Path, work: Path, quick: bool) -> Path:
    """The data file itself, or in quick mode a copy of its first rows under the same folder/name label."""
    if not quick:
        return path
    head = work / "quick" / path.parent.name / path.name
    head.parent.mkdir(parents=True, exist_ok=True)
    with path.open(encoding="utf-8") as lines:
        head.write_text("".join(line for _, line in zip(range(QUICK_ROWS), lines)), encoding="utf-8")
    return head


def _tiny_run(work: Path, data: Path) -> tuple[Path, Path]:
    """A seconds-long training run and its export (reporting on the official tests), for --quick without --run."""
    from export.folder import export_run
    from train.run import TrainConfig, train_run

    train_files = [str(data / name) for name in TINY_TRAIN_FILES]
    run = train_run(TrainConfig(out=str(work / "tiny-run"), train_files=train_files, max_pairs=1000, epochs=1,
                                embedding_dim=16, lstm_units=(24, 8)))
    export_run(run, work / "tiny-model", report_files=[str(data / name) for name in TEST_FILES])
    return run, work / "tiny-model"


def _end_to_end(
    ways: list[baselines.Baseline], path: Path, repeats: int, work: Path, calibration: Calibration | None
) -> dict[str, Any]:
    """Each way scores the file `repeats` times after a warm-up on its first rows; the best time is kept.

    The repeats are interleaved (a, b, c, a, b, c, ...) so that a busy spell of the machine hits every way.
    Keras and the plain export give the head's raw score: the runtime's is compared with it calibrated.
    """
    warmup = work / "warmup.tsv"
    with path.open(encoding="utf-8") as lines:
        warmup.write_text("".join(line for _, line in zip(range(64), lines)), encoding="utf-8")
    outputs = {way.key: str(work / f"{way.key}.tsv") for way in ways}
    seconds: dict[str, list[float]] = {way.key: [] for way in ways}
    for way in ways:
        way.score_file(str(warmup), outputs[way.key])
    for _ in range(repeats):
        for way in ways:
            started = time.perf_counter()
            way.score_file(str(path), outputs[way.key])
            seconds[way.key].append(time.perf_counter() - started)
    scores = {key: read_scored(output)[1] for key, output in outputs.items()}
    reference = scores["keras"] if calibration is None else calibration(scores["keras"])
    best = {key: min(values) for key, values in seconds.items()}
    log.info("  best seconds: %s", ", ".join(f"{key} {value:.2f}" for key, value in best.items()))
    return {
        "seconds": seconds,
        "best_seconds": best,
        "pairs_per_second": {key: len(scores[key]) / value for key, value in best.items()},
        "speedup": {
            "c_over_a": best["keras"] / best["runtime"], "c_over_b": best["plain_onnx"] / best["runtime"],
            "d_over_a": best["keras"] / best["cli"], "e_over_a": best["keras"] / best["cli_int8"],
        },
        "agreement_max_abs_diff": {
            f"{key}_vs_keras": float(np.max(np.abs(scores[key] - (scores["keras"] if key in RAW_WAYS else reference))))
            for key in scores if key != "keras"
        },
    }


def _concatenated(files: list[Path], work: Path) -> Path:
    """All files as one input file."""
    together = work / "together.tsv"
    together.write_bytes(b"".join(path.read_bytes() for path in files))
    return together


def _share(row: dict[str, Any], peaks: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The runtime's achieved FLOP/s on the needed work, and its share of each measured peak."""
    achieved = row["needed_flops"] / row["best_seconds"]["runtime"] / 1e9
    shares = {f"share_of_{name}": achieved / peak["gflops"] for name, peak in peaks.items()}
    return {"achieved_gflops": achieved, **shares}


if __name__ == "__main__":
    main()
