"""Single-pair latency: one pair through `Scorer.score` against a bare onnxruntime call on the same
pre-tokenized input (issue target: at most 1.5x)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from siamese_runtime.scorer import Scorer

TARGET_RATIO = 1.5


def single_pair_overhead(model: Path, pairs: list[tuple[str, str]], rounds: int = 3) -> dict[str, Any]:
    """p50 microseconds of each way over real pairs, interleaved call by call; the cache is off so every
    API call tokenizes and encodes, as for a pair never seen before."""
    scorer = Scorer(model, providers="cpu", cache_size=0)
    tokenizer, session = scorer.model.tokenizer, scorer.encoder.session
    name = session.get_inputs()[0].name
    feeds = [{name: tokenizer.pad(tokenizer.ids_batch(list(pair))[0])} for pair in pairs]
    api, bare = [], []
    for _ in range(rounds):
        for pair, feed in zip(pairs, feeds):
            started = time.perf_counter()
            scorer.score([pair])
            api.append(time.perf_counter() - started)
            started = time.perf_counter()
            session.run(None, feed)
            bare.append(time.perf_counter() - started)
    api_p50, bare_p50 = float(np.median(api)) * 1e6, float(np.median(bare)) * 1e6
    return {
        "pairs": len(pairs), "calls_each": len(api), "api_p50_us": round(api_p50, 1),
        "bare_onnxruntime_p50_us": round(bare_p50, 1), "ratio": round(api_p50 / bare_p50, 3),
        "target_ratio": TARGET_RATIO,
    }
