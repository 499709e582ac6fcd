"""`python -m benchmarks.stage_split OUT --before REF`: where the `score` command's time goes on a million pairs,
the code at REF (a git ref, checked out in a temporary worktree) against the working tree, side by side.

Each way runs the whole command with `--profile`, interleaved (before, after, before, ...): wall seconds, seconds
by stage, the share of the wall time outside the encoder, peak RSS and the output's sha256 (the two ways must
write the same bytes). Written to OUT as stage-split.json and stage-split.md, the machine named. The same script
runs on a GPU machine with `--provider cuda`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from siamese_runtime.bench.machine import machine_info
from train.data_home import REPO, data_home

from .cuda_e2e import million_pairs

STAGES = re.compile(r"seconds by stage: (.*)$", re.MULTILINE)


def run_score(source: Path, output: Path, code: Path, flags: list[str]) -> dict[str, Any]:
    """One `score --profile` process of the code in `code`: wall seconds, stage seconds, peak RSS, output hash."""
    output.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(code)}
    with tempfile.TemporaryFile("w+", encoding="utf-8") as said:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "siamese_runtime", "score", str(source), "-o",
                                    str(output), "--profile", *flags], cwd=code, env=env,
                                   stdout=subprocess.DEVNULL, stderr=said)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS, not the largest so far
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        said.seek(0)
        stderr = said.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"score failed ({os.waitstatus_to_exitcode(status)}) in {code}: {stderr}")
    found = STAGES.search(stderr)
    if found is None:
        raise SystemExit(f"no stage line in {stderr!r}")
    stages = {name: float(value) for name, value in (item.split() for item in found.group(1).split(", "))}
    return {"wall_seconds": wall, "stage_seconds": stages, "outside_encoder": 1 - stages["encode"] / wall,
            "peak_rss_mib": usage.ru_maxrss / 1024, "output_sha256": hashlib.sha256(output.read_bytes()).hexdigest()}


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        f"# Stage split of `score` on {results['pairs']:,} pairs ({results['created'][:10]})", "",
        f"Machine: {machine['cpu_model']}, {machine['logical_cores']} logical cores, onnxruntime "
        f"{machine['onnxruntime']['version']}; flags `{' '.join(results['flags'])}`; before = `{results['before']}`, "
        "after = the working tree; best wall time of the interleaved runs.", "",
        "| way | wall s | read | tokenize | encode | head | write | other | outside the encoder | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for way, best in results["best"].items():
        stages = best["stage_seconds"]
        lines.append(f"| {way} | {best['wall_seconds']:.1f} | "
                     + " | ".join(f"{stages.get(stage, 0.0):.1f}" for stage in
                                  ("read", "tokenize", "encode", "head", "write", "other"))
                     + f" | {best['outside_encoder']:.1%} | {best['peak_rss_mib']:.0f} |")
    lines += ["", f"Same output bytes: {results['same_output']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--before", required=True, help="git ref of the code to compare against")
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each way, interleaved")
    parser.add_argument("--provider", default="cpu")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    flags = ["--provider", args.provider]
    with tempfile.TemporaryDirectory(prefix="stage-split-") as scratch:
        work = Path(scratch)
        before = work / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), args.before], cwd=REPO, check=True,
                       capture_output=True)
        try:
            source = million_pairs(data_home(), args.pairs, work / "pairs.tsv")
            runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
            for _ in range(args.repeats):
                for way, code in (("before", before), ("after", REPO)):
                    runs[way].append(run_score(source, work / f"{way}.tsv", code, flags))
                    print(way, json.dumps(runs[way][-1]), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=REPO, capture_output=True)
    best = {way: min(found, key=lambda run: run["wall_seconds"]) for way, found in runs.items()}
    results = {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine_info(),
               "pairs": args.pairs, "flags": flags, "before": args.before, "runs": runs, "best": best,
               "same_output": len({run["output_sha256"] for found in runs.values() for run in found}) == 1}
    (args.out / "stage-split.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (args.out / "stage-split.md").write_text(markdown(results), encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
