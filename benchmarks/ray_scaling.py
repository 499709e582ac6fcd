"""`python -m benchmarks.ray_scaling`: the Ray engine with 1 and 2 actors against the local job at equal cores,
file in -> Parquet out, written to benchmarks/results/ as dated JSON and Markdown (needs the [ray] extra)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import ray

from siamese_runtime.bench.machine import machine_info
from siamese_runtime.bench.pair_files import file_label
from siamese_runtime.bench.report import markdown_table, write_json
from siamese_runtime.job import JobOptions, run_job
from siamese_runtime.ray.cluster import quiet_ray_data
from siamese_runtime.ray.job import ClusterOptions, run_ray_job
from siamese_runtime.scorer import Scorer
from siamese_runtime.settings import ScorerSettings
from train.data_home import ENV, REPO, TEST_FILES, data_home

CORES = (1, 2)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ray_scaling", description=__doc__)
    parser.add_argument("--data", type=Path, help=f"data folder holding --files (default: ${ENV}, else ../shared/data)")
    parser.add_argument("--files", nargs="+", default=list(TEST_FILES), help="pair files, relative to --data")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per file and way, interleaved")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    args.data = args.data or data_home()
    if absent := [name for name in args.files if not (args.data / name).is_file()]:
        parser.error(f"{', '.join(absent)} not in the data folder {args.data}: pass --data, set {ENV}, or fetch the "
                     "data with python -m train.fetch (docs/data.md)")
    quiet_ray_data()
    logging.basicConfig(level=logging.ERROR)  # truncation warnings of every run
    with tempfile.TemporaryDirectory(prefix="siamese-ray-bench-") as scratch:
        results = measure([args.data / name for name in args.files], args.repeats, Path(scratch))
    stem = args.out / f"ray-{results['date']}"
    write_json(results, stem.with_suffix(".json"))
    stem.with_suffix(".md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))
    return results


def measure(files: list[Path], repeats: int, work: Path) -> dict[str, Any]:
    """Per file: seconds of each way, interleaved `repeats` times; the load average around each run."""
    loads: list[float] = []
    ray.init(num_cpus=max(CORES), include_dashboard=False, logging_level=logging.WARNING)
    try:
        rows = [_file_row(path, repeats, work, loads) for path in files]
        cli = _cli_row(files[0], repeats, work, loads)
    finally:
        ray.shutdown()
    return {
        "date": dt.date.today().isoformat(),
        "machine": machine_info(),
        "ray": ray.__version__,
        "repeats": repeats,
        "load_average_1min": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)},
        "files": rows,
        "cli": cli,
    }


def _ways(source: Path, work: Path) -> dict[str, Callable[[], int]]:
    """Each way scores `source` into a Parquet file and returns the rows written.

    Each run starts cold, as a command does: a new Scorer (session and cache) or new actors.
    """
    ways: dict[str, Callable[[], int]] = {}
    local = JobOptions(str(source), str(work / "local.parquet"))
    for cores in CORES:
        ways[f"local_{cores}"] = partial(_local_job, local, cores)
        cluster = ClusterOptions(actors=cores)
        options = JobOptions(str(source), str(work / "ray.parquet"), chunk_rows=1024)
        ways[f"ray_{cores}"] = partial(_ray_job, options, cluster)
    return ways


def _local_job(options: JobOptions, cores: int) -> int:
    return run_job(Scorer(providers="cpu", intra_op_num_threads=cores), options).written


def _ray_job(options: JobOptions, cluster: ClusterOptions) -> int:
    return run_ray_job(ScorerSettings(providers="cpu"), options, cluster).written


def _file_row(source: Path, repeats: int, work: Path, loads: list[float]) -> dict[str, Any]:
    seconds, written = _interleaved(_ways(source, work), repeats, loads)
    pairs = written["local_1"]
    if set(written.values()) != {pairs}:
        raise RuntimeError(f"the ways wrote different row counts: {written}")
    best = {name: min(times) for name, times in seconds.items()}
    return {
        "file": file_label(source), "pairs": pairs, "seconds": seconds, "best_seconds": best,
        "pairs_per_second": {name: pairs / s for name, s in best.items()},
        "speedup_2_actors_over_1": best["ray_1"] / best["ray_2"],
        "ray_over_local": {str(cores): best[f"ray_{cores}"] / best[f"local_{cores}"] for cores in CORES},
    }


def _cli_row(source: Path, repeats: int, work: Path, loads: list[float]) -> dict[str, Any]:
    """The command line end to end in a subprocess: the ray engine starts its own local cluster each time."""
    def cli(*extra: str) -> Callable[[], int]:
        command = [sys.executable, "-m", "siamese_runtime", "score", str(source), "-o", str(work / "cli.parquet"),
                   "--provider", "cpu", *extra]
        return lambda: subprocess.run(command, check=True, capture_output=True, cwd=REPO).returncode

    ways = {"local_2": cli("--threads", "2"), "ray_2": cli("--engine", "ray", "--actors", "2")}
    seconds, _ = _interleaved(ways, repeats, loads)
    return {"file": file_label(source), "seconds": seconds,
            "best_seconds": {name: min(times) for name, times in seconds.items()}}


def _interleaved(
    ways: dict[str, Callable[[], int]], repeats: int, loads: list[float]
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Seconds of each run of each way, the ways taking turns; what each way returned last."""
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    returned: dict[str, int] = {}
    for _ in range(repeats):
        for name, way in ways.items():
            loads.append(os.getloadavg()[0])
            started = time.perf_counter()
            returned[name] = way()
            seconds[name].append(time.perf_counter() - started)
    return seconds, returned


def markdown(results: dict[str, Any]) -> str:
    load = results["load_average_1min"]
    rows = [
        [r["file"], r["pairs"], *(r["pairs_per_second"][w] for w in ("local_1", "ray_1", "local_2", "ray_2")),
         f"{r['speedup_2_actors_over_1']:.2f}x", *(f"{r['ray_over_local'][str(c)]:.2f}x" for c in CORES)]
        for r in results["files"]
    ]
    cli = results["cli"]
    return "\n".join([
        f"# Ray engine scaling, {results['date']}",
        "",
        f"{results['machine']['cpu_model']}, {results['machine']['logical_cores']} cores, Ray {results['ray']}, "
        f"onnxruntime {results['machine']['onnxruntime']['version']}, CPU, default model. File in -> Parquet out, "
        f"best of {results['repeats']} interleaved runs, on one local Ray cluster (num_cpus=2) started beforehand. "
        f"1-minute load average during the runs: min {load['min']:.2f}, median {load['median']:.2f}, "
        f"max {load['max']:.2f}; it counts the benchmark's own processes, about 2 while they keep both cores busy.",
        "",
        markdown_table(
            ["file", "pairs", "local, 1 thread (pairs/s)", "ray, 1 actor", "local, 2 threads", "ray, 2 actors",
             "2 actors / 1 actor", "ray time / local time, 1 core", "ray / local, 2 cores"],
            rows,
        ),
        "",
        f"Command line end to end on {cli['file']}, including the Ray engine starting a local cluster: local "
        f"`--threads 2` {cli['best_seconds']['local_2']:.2f} s, `--engine ray --actors 2` "
        f"{cli['best_seconds']['ray_2']:.2f} s.",
        "",
    ])


if __name__ == "__main__":
    main()
