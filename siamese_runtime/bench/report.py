"""Benchmark reports as files: schema-checked JSON, Markdown tables and PNG plots (matplotlib, optional)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..schemas import validate


def validate_bench_report(report: Mapping[str, Any]) -> None:
    """Raise SchemaError unless `report` is a valid `siamese-runtime bench` report."""
    validate(report, "bench")


def write_json(report: Mapping[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub Markdown table; floats are shown with 3 significant digits."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "" if value is None else str(value)


def runtime_markdown(report: Mapping[str, Any]) -> str:
    """The runtime rows and the skipped configurations of a bench report."""
    machine = report["machine"]
    runtime = machine["onnxruntime"]
    gpus = ", ".join(f"{g['name']} (driver {g['driver']})" for g in machine["gpus"]) or "none"
    headers = ["provider", "precision", "threads", "profile", "batch", "tokens/sentence", "p50 ms", "p90 ms", "p99 ms",
               "pairs/s", "session s", "peak RSS MiB"]
    table = markdown_table(headers, (
        [row["provider"].removesuffix("ExecutionProvider"), row["precision"], row["threads"], row["profile"],
         row["batch_size"], row["mean_tokens"], row["latency_ms"]["p50"], row["latency_ms"]["p90"],
         row["latency_ms"]["p99"], row["pairs_per_second"], row["session_seconds"], row["peak_rss_mib"]]
        for row in report["rows"]
    ))
    config = report["config"]
    text = [
        f"Machine: {machine['cpu_model']}, {machine['logical_cores']} logical cores, {machine['memory_gib']} GiB; "
        f"GPU: {gpus}; onnxruntime {runtime['version']} ({', '.join(runtime['available_providers'])}).",
        f"Model: {report['model']['name']} (max_length {report['model']['max_length']}). Batch = pairs per "
        f"`Scorer.score` call; {config['warmup']} warm-up and {config['repeats']} timed calls per row.",
        "",
        table,
    ]
    text += [f"- skipped {s['provider']} / {s['precision']}: {s['reason']}" for s in report["skipped"]]
    if report.get("op_profile"):
        text += ["", op_profile_markdown(report["op_profile"])]
    return "\n".join(text) + "\n"


def op_profile_markdown(profile: Mapping[str, Any]) -> str:
    """onnxruntime's profiler summed by op type, with the time spent outside the encoder's `run` calls."""
    outside = profile["wall_ms"] - profile["run_ms"]
    head = (
        f"onnxruntime profile: {profile['pairs']} pairs on {profile['provider']} {profile['precision']}, "
        f"{profile['wall_ms']:.0f} ms wall, {profile['run_ms']:.0f} ms inside `run` "
        f"({profile['kernel_ms']:.0f} ms in kernels), {outside:.0f} ms outside (tokenizing, batching, head).\n\n"
    )
    rows = ([op["op_type"], op["ms"], f"{op['share']:.1%}", op["calls"]] for op in profile["ops"])
    return head + markdown_table(["op type", "ms", "share of kernel time", "node runs"], rows)


def plot_latency(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Median latency against batch size: one panel per length profile, one line per provider/precision/threads."""
    plt = _pyplot()
    profiles = list(dict.fromkeys(row["profile"] for row in rows))
    figure, axes = plt.subplots(1, len(profiles), figsize=(4.5 * len(profiles), 4), squeeze=False, sharey=True)
    for axis, profile in zip(axes[0], profiles):
        lines: dict[str, list[tuple[int, float]]] = {}
        for row in rows:
            if row["profile"] == profile:
                label = f"{row['provider'].removesuffix('ExecutionProvider')} {row['precision']}"
                label += f" {row['threads']}t" if row["threads"] else ""
                lines.setdefault(label, []).append((row["batch_size"], row["latency_ms"]["p50"]))
        for label, points in lines.items():
            axis.plot(*zip(*sorted(points)), marker="o", label=label)
        axis.set(xscale="log", yscale="log", title=profile, xlabel="batch size (pairs)")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("p50 latency (ms)")
    axes[0][-1].legend(fontsize="small")
    return _save(figure, path)


def plot_bars(values: Mapping[str, float], path: Path, ylabel: str, title: str) -> Path:
    """A horizontal bar per label, its value written beside it."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(values) + 1.5))
    labels = list(values)
    bars = axis.barh(labels, [values[label] for label in labels])
    axis.bar_label(bars, fmt="%.4g", padding=3)
    axis.invert_yaxis()
    axis.set(xlabel=ylabel, title=title)
    axis.margins(x=0.15)
    return _save(figure, path)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'siamese-runtime[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    _pyplot().close(figure)
    return path


def write_runtime_report(report: Mapping[str, Any], out: Path, plots: bool = True) -> list[Path]:
    """Validate a bench report and write it as `runtime-DATE.json`, `.md` and `-latency.png` under `out`."""
    validate_bench_report(report)
    stem = f"runtime-{report['created'][:10]}"
    paths = [write_json(report, out / f"{stem}.json"), out / f"{stem}.md"]
    paths[1].write_text(f"# siamese-runtime bench\n\n{runtime_markdown(report)}", encoding="utf-8")
    if plots:
        paths.append(plot_latency(report["rows"], out / f"{stem}-latency.png"))
    return paths
