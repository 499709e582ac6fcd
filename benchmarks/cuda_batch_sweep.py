"""`python -m benchmarks.cuda_batch_sweep OUT`: the encoder on CUDA by sentences per run (the token budget
following), fp32 with TF32 off and on, and fp16, over the distinct sentences of the official test files; with each
setting's largest score change against the CPU's fp32 on those files' pairs. Written to OUT as cuda-batch-sweep.json
and .md: the evidence behind the GPU defaults (providers.GPU_BATCH_SIZE, the CUDA record's default_options).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from siamese_runtime import Scorer
from siamese_runtime.bench.machine import machine_info
from siamese_runtime.bench.pair_files import read_pair_rows
from siamese_runtime.providers import CPU, CUDA
from train.data_home import TEST_FILES, data_home

RUN_SIZES = (256, 1024, 4096, 16384)
TOKENS_PER_SENTENCE = 64  # the token budget of a run: its sentences at the model's max_length


def settings() -> list[dict[str, Any]]:
    """fp32 and fp16 at every run size, TF32 off; fp32 with TF32 on at each size too; the old default (256, 8192)."""
    rows = [{"precision": "fp32", "use_tf32": "0", "batch_size": 256, "token_budget": 8192}]
    for size in RUN_SIZES:
        for precision, tf32 in (("fp32", "0"), ("fp32", "1"), ("fp16", "0")):
            rows.append({"precision": precision, "use_tf32": tf32, "batch_size": size,
                         "token_budget": size * TOKENS_PER_SENTENCE})
    return rows


def measure(setting: dict[str, Any], sentences: list[str], pairs: list[tuple[str, str]], reference: np.ndarray,
            repeats: int) -> dict[str, Any]:
    scorer = Scorer(providers=[(CUDA, {"use_tf32": setting["use_tf32"]}), CPU], precision=setting["precision"],
                    batch_size=setting["batch_size"], token_budget=setting["token_budget"], cache_size=0)
    scorer.encode(sentences)  # warm-up: cuDNN picks its kernels per shape
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        scorer.encode(sentences)
        seconds.append(time.perf_counter() - started)
    change = float(np.abs(scorer.score(pairs) - reference).max())
    return {**setting, "sentences_per_second": len(sentences) / min(seconds), "max_score_change_vs_cpu": change}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    pairs = [(row.columns[0], row.columns[1]) for name in TEST_FILES
             for row in read_pair_rows(str(data_home() / name))]
    sentences = list(dict.fromkeys(sentence for pair in pairs for sentence in pair))
    reference = Scorer(providers="cpu", precision="fp32").score(pairs)
    rows = []
    for setting in settings():
        rows.append(measure(setting, sentences, pairs, reference, args.repeats))
        print(json.dumps(rows[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"machine": machine_info(), "distinct_sentences": len(sentences), "pairs": len(pairs), "rows": rows}
    (args.out / "cuda-batch-sweep.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    lines = [f"# Encoder on CUDA by run size ({len(sentences):,} distinct sentences of {', '.join(TEST_FILES)})", "",
             "| precision | TF32 | sentences per run | token budget | sentences/s | largest score change vs CPU fp32 |",
             "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['precision']} | {'on' if r['use_tf32'] == '1' else 'off'} | {r['batch_size']:,} | "
              f"{r['token_budget']:,} | {r['sentences_per_second']:,.0f} | {r['max_score_change_vs_cpu']:.1e} |"
              for r in rows]
    (args.out / "cuda-batch-sweep.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
