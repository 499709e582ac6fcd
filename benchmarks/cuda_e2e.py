"""`python -m benchmarks.cuda_e2e OUT`: the `score` command on CUDA against the same command on the machine's CPU
cores, whole process (start-up included), on the official test files and on a million-pair file built from real
sentences; with the GPU's name and driver, and the achieved share of its matrix-product peak (measured with PyTorch
where it is installed). Written to OUT as cuda-e2e.json and cuda-e2e.md.

The million pairs join the first half of one real sentence to the second half of another (BQ and LCQMC, test and
dev), so nearly every sentence is distinct and the encoding cache cannot make the file free.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.scored_files import read_scored
from siamese_runtime.bench.machine import machine_info
from siamese_runtime.bench.pair_files import file_label, read_pair_rows
from siamese_runtime.model_folder import ModelFolder
from train.data_home import REPO, TEST_FILES, data_home

from . import limit

SENTENCE_FILES = ("bq/test.tsv", "bq/dev.tsv", "lcqmc/test.tsv", "lcqmc/dev.tsv")
WAYS = {  # name -> the score command's provider flags
    "cuda": ["--provider", "cuda"],
    "cuda_fp32": ["--provider", "cuda", "--precision", "fp32"],
    "cpu": ["--provider", "cpu"],
}


def million_pairs(data: Path, count: int, destination: Path, seed: int = 0) -> Path:
    """`count` pairs of half-and-half real sentences, as a headerless TSV with a 0 label."""
    sentences = sorted({row.columns[side] for name in SENTENCE_FILES for row in read_pair_rows(str(data / name))
                        for side in (0, 1)})
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(sentences), size=(count, 4))
    with destination.open("w", encoding="utf-8") as out:
        for a, b, c, d in picks:
            left = sentences[a][: len(sentences[a]) // 2] + sentences[b][len(sentences[b]) // 2:]
            right = sentences[c][: len(sentences[c]) // 2] + sentences[d][len(sentences[d]) // 2:]
            out.write(f"{left}\t{right}\t0\n")
    return destination


def score_command(source: Path, output: Path, flags: list[str]) -> tuple[float, str]:
    """Wall seconds of one `siamese-runtime score` process, and its summary line."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "siamese_runtime", "score", str(source), "-o", str(output), *flags],
                          capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"score {source} {' '.join(flags)} failed ({done.returncode}): {done.stderr}")
    return seconds, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""


def measure_file(source: Path, work: Path, repeats: int, per_token: int, labelled: bool) -> dict[str, Any]:
    """Each way `repeats` times, interleaved; best seconds, pairs/s, agreement with the CPU, achieved GFLOP/s,
    accuracy at the stored threshold (`labelled` files), and the stage split of one more `--profile` CUDA run."""
    outputs = {way: work / f"{way}.tsv" for way in WAYS}
    seconds: dict[str, list[float]] = {way: [] for way in WAYS}
    summaries: dict[str, str] = {}
    for _ in range(repeats):
        for way, flags in WAYS.items():
            elapsed, summaries[way] = score_command(source, outputs[way], flags)
            seconds[way].append(elapsed)
    _, stages = score_command(source, work / "profiled.tsv", [*WAYS["cuda"], "--profile"])
    scored = {way: read_scored(str(path)) for way, path in outputs.items()}
    scores = {way: values for way, (_, values) in scored.items()}
    model = ModelFolder.load()
    counts = limit.file_work(source, model.tokenizer, per_token, per_pair=0)  # the LSTM's work alone
    needed_flops = counts["needed_flops"]
    best = {way: min(values) for way, values in seconds.items()}
    return {
        "file": file_label(str(source)), "pairs": counts["pairs"], "distinct_sentences": counts["distinct_sentences"],
        "needed_gflop": needed_flops / 1e9, "seconds": seconds, "best_seconds": best,
        "pairs_per_second": {way: counts["pairs"] / value for way, value in best.items()},
        "cuda_speedup_over_cpu": {way: best["cpu"] / best[way] for way in WAYS if way != "cpu"},
        "achieved_gflops": {way: needed_flops / value / 1e9 for way, value in best.items()},
        "max_abs_diff_vs_cpu": {way: float(np.max(np.abs(scores[way] - scores["cpu"])))
                                for way in WAYS if way != "cpu"},
        "accuracy": {way: accuracy(cells, values, model.threshold) for way, (cells, values) in scored.items()}
        if labelled else None,
        "summaries": summaries,
        "cuda_stage_seconds": stages,
    }


def accuracy(cells: list[list[str]], scores: np.ndarray, threshold: float) -> float:
    """The share of rows whose label (third cell) the score at `threshold` predicts."""
    return float(np.mean((scores >= threshold) == np.array([row[2] == "1" for row in cells])))


def gpu_matmul_peaks(n: int = 8192, repeats: int = 10) -> dict[str, float]:
    """GFLOP/s of an n x n x n matrix product on the GPU in fp32 (no TF32) and fp16, via PyTorch; {} without it."""
    try:
        import torch
    except ImportError:
        return {}
    if not torch.cuda.is_available():
        return {}
    torch.backends.cuda.matmul.allow_tf32 = False
    peaks = {}
    for name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        a, b = (torch.randn(n, n, device="cuda", dtype=dtype) for _ in range(2))
        for _ in range(3):
            a @ b
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        torch.cuda.synchronize()
        peaks[name] = 2 * n**3 * repeats / (time.perf_counter() - started) / 1e9
    return peaks


def markdown(results: dict[str, Any]) -> str:
    gpus = ", ".join(f"{gpu.get('name')} (driver {gpu.get('driver')}, {gpu.get('memory')})"
                     for gpu in results["machine"]["gpus"]) or "none"
    peaks = results["gpu_matmul_peak_gflops"]
    lines = [
        f"# The score command on CUDA and on the CPU, whole process ({results['created']})", "",
        f"GPU: {gpus}; CPU: {results['machine']['cpu_model']}, {results['machine']['logical_cores']} logical cores; "
        f"onnxruntime {results['machine']['onnxruntime']['version']} "
        f"({', '.join(results['machine']['onnxruntime']['distributions'])}).",
        "Measured matrix-product peak (PyTorch, 8192^3): "
        + (", ".join(f"{name} {value / 1e3:,.0f} TFLOP/s" for name, value in peaks.items()) or "not measured"),
        "", "| file | pairs | way | best s | pairs/s | x CPU | GFLOP/s | share of fp16 peak | max diff vs CPU | "
        "accuracy |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["files"]:
        for way in WAYS:
            share = row["achieved_gflops"][way] / peaks["fp16"] if peaks.get("fp16") else float("nan")
            lines.append(
                f"| {row['file']} | {row['pairs']:,} | {way} | {row['best_seconds'][way]:.2f} | "
                f"{row['pairs_per_second'][way]:,.0f} | {row.get('cuda_speedup_over_cpu', {}).get(way, 1.0):.2f} | "
                f"{row['achieved_gflops'][way]:,.1f} | {share:.2e} | "
                f"{row['max_abs_diff_vs_cpu'].get(way, 0.0):.1e} | "
                f"{row['accuracy'][way] if row['accuracy'] else float('nan'):.4f} |")
    lines += ["", *(f"- {row['file']}, one more CUDA run with --profile: {row['cuda_stage_seconds']}"
                    for row in results["files"])]
    lines += ["", "Best of the repeats (interleaved: cuda, cuda_fp32, cpu, ...); `cuda` is the default precision on "
              "CUDA (auto: fp16). GFLOP/s counts the LSTM work of each distinct sentence's real tokens."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--pairs", type=int, default=1_000_000, help="pairs of the built file (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way on the test files")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "work"
    work.mkdir(exist_ok=True)
    data = data_home()
    per_token = limit.flops_per_token(limit.lstm_layers(ModelFolder.load().encoder_path("fp32")))
    results: dict[str, Any] = {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                               "machine": machine_info(), "gpu_matmul_peak_gflops": gpu_matmul_peaks(),
                               "flops_per_token": per_token, "files": []}
    big = million_pairs(data, args.pairs, work / f"pairs-{args.pairs}.tsv")
    for source, repeats in [*((data / name, args.repeats) for name in TEST_FILES), (big, 1)]:
        results["files"].append(measure_file(source, work, repeats, per_token, labelled=source != big))
        print(json.dumps(results["files"][-1]["best_seconds"]), source.name, flush=True)
        (args.out / "cuda-e2e.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
        (args.out / "cuda-e2e.md").write_text(markdown(results), encoding="utf-8")
    for path in work.iterdir():
        path.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
