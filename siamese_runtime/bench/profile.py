"""onnxruntime's profiler on the runtime's encoder: where the time of a `Scorer.score` call goes, by op type."""

from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..scorer import Scorer
from ..session import default_session_options


def profile_scoring(scorer: Scorer, left: Sequence[str], right: Sequence[str]) -> dict[str, Any]:
    """Score the pairs once with a profiling twin of `scorer` and sum the kernel time per op type.

    The twin has the scorer's model, precision, providers and thread count, its own session and an empty
    cache, so every sentence is encoded; `scorer` itself is left untouched (it may serve other threads).
    """
    session = scorer.encoder.session
    with tempfile.TemporaryDirectory(prefix="siamese-profile-") as folder:
        options = default_session_options(scorer.encoder.threads)
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "encoder")
        twin = Scorer.from_settings(replace(scorer.settings, model=scorer.model, providers=session.get_providers(),
                                            precision=scorer.precision, cache_size=0, session_options=options))
        started = time.perf_counter()
        twin.score(left, right)
        wall = time.perf_counter() - started
        trace = json.loads(Path(twin.encoder.session.end_profiling()).read_text(encoding="utf-8"))
    return {"pairs": len(left), "provider": session.get_providers()[0], "wall_ms": wall * 1e3,
            **summarize_trace(trace)}


def summarize_trace(trace: list[dict[str, Any]]) -> dict[str, Any]:
    """Kernel milliseconds and node-run counts per op type, largest first, and the time inside `run` calls."""
    milliseconds: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    run_ms = 0.0
    for event in trace:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            op_type = event.get("args", {}).get("op_name", "?")
            milliseconds[op_type] += event["dur"] / 1e3
            calls[op_type] += 1
        elif event.get("cat") == "Session" and event.get("name") == "model_run":
            run_ms += event["dur"] / 1e3
    kernel_ms = sum(milliseconds.values())
    ops = [
        {"op_type": op, "ms": ms, "share": ms / kernel_ms if kernel_ms else 0.0, "calls": calls[op]}
        for op, ms in sorted(milliseconds.items(), key=lambda item: -item[1])
    ]
    return {"run_ms": run_ms, "kernel_ms": kernel_ms, "ops": ops}
