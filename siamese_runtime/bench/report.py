"""Benchmark reports as files: schema-checked JSON, Markdown tables and PNG plots (matplotlib, optional)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..schemas import validate

log = logging.getLogger(__name__)


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
               "spread", "pairs/s", "session s", "peak RSS MiB"]
    table = markdown_table(headers, (
        [row["provider"].removesuffix("ExecutionProvider"), row["precision"], row["threads"], row["profile"],
         row["batch_size"], row["mean_tokens"], row["latency_ms"]["p50"], row["latency_ms"]["p90"],
         row["latency_ms"]["p99"], f"{row['spread']:.0%}" if "spread" in row else None, row["pairs_per_second"],
         row["session_seconds"], row["peak_rss_mib"]]
        for row in report["rows"]
    ))
    config = report["config"]
    text = [
        f"Machine: {machine['cpu_model']}, {machine['logical_cores']} logical cores, {machine['memory_gib']} GiB; "
        f"GPU: {gpus}; onnxruntime {runtime['version']} ({', '.join(runtime['available_providers'])}).",
        f"Model: {report['model']['name']} (max_length {report['model']['max_length']}). Batch = pairs per "
        f"`Scorer.score` call; {config['warmup']} warm-up and {config['repeats']} timed calls per row (p90 is "
        "shown from 10 calls, p99 from 100; spread: interquartile range over median).",
        "",
        table,
    ]
    text += [f"- skipped {s['provider']} / {s['precision']}: {s['reason']}" for s in report["skipped"]]
    text += [f"- **warning**: {warning}" for warning in report.get("warnings", [])]
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


def machine_title(machine: Mapping[str, Any], created: str) -> str:
    """What a plot was measured on: CPU (and GPUs), cores, onnxruntime version, date."""
    gpus = "".join(f", {gpu['name']}" for gpu in machine.get("gpus", []))
    return (f"{machine['cpu_model']}{gpus}, {machine['logical_cores']} cores, "
            f"onnxruntime {machine['onnxruntime']['version']}, {created[:10]}")


def plot_latency(rows: Sequence[Mapping[str, Any]], path: Path, title: str) -> Path:
    """Median latency against batch size: one panel per length profile, one line per provider/precision/threads."""
    return _plot_per_profile(rows, path, lambda row: row["latency_ms"]["p50"], "p50 latency (ms)", "log",
                             f"Latency per Scorer.score call\n{title}")


def plot_throughput(rows: Sequence[Mapping[str, Any]], path: Path, title: str) -> Path:
    """Pairs per second against batch size, as a batch user reads it: one panel per length profile."""
    return _plot_per_profile(rows, path, lambda row: row["pairs_per_second"], "pairs/s", "linear",
                             f"Throughput against batch size\n{title}")


def _plot_per_profile(rows: Sequence[Mapping[str, Any]], path: Path, value: Callable[[Mapping[str, Any]], float],
                      ylabel: str, yscale: str, title: str) -> Path:
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    profiles = list(dict.fromkeys(row["profile"] for row in rows))
    figure, axes = plt.subplots(1, len(profiles), figsize=(max(4.5 * len(profiles), 7), 4.6), squeeze=False,
                                sharey=yscale == "log", layout="constrained")
    for axis, profile in zip(axes[0], profiles):
        lines: dict[str, list[tuple[int, float]]] = {}
        for row in rows:
            if row["profile"] == profile:
                lines.setdefault(_variant_label(row), []).append((row["batch_size"], value(row)))
        for label, points in lines.items():
            axis.plot(*zip(*sorted(points)), marker="o", label=label)
        sizes = sorted({row["batch_size"] for row in rows if row["profile"] == profile})
        axis.set_xscale("log")
        axis.set_xticks(sizes, [f"{size:,}" for size in sizes])  # the measured sizes only: no colliding labels
        axis.xaxis.set_minor_locator(LogLocator(subs="all"))
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set(yscale=yscale, title=profile, xlabel="batch size (pairs per call)")
        axis.yaxis.set_major_formatter(FuncFormatter(lambda number, _: f"{number:,.6g}"))
        axis.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize="small")
    figure.suptitle(title, fontsize="medium")
    return _save(figure, path)


def _variant_label(row: Mapping[str, Any]) -> str:
    label = f"{row['provider'].removesuffix('ExecutionProvider')} {row['precision']}"
    return label + (f" {row['threads']}t" if row["threads"] else "")


def plot_bars(values: Mapping[str, float], path: Path, xlabel: str, title: str) -> Path:
    """A horizontal bar per label, its value written beside it in plain digits."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter

    figure, axis = plt.subplots(figsize=(9, 0.45 * len(values) + 1.8), layout="constrained")
    labels = list(values)
    bars = axis.barh(labels, [values[label] for label in labels])
    axis.bar_label(bars, labels=[f"{values[label]:,.0f}" for label in labels], padding=3)
    axis.invert_yaxis()
    axis.xaxis.set_major_formatter(FuncFormatter(lambda number, _: f"{number:,.0f}"))
    axis.set(xlabel=xlabel)
    figure.suptitle(title, fontsize="medium")
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
    figure.savefig(path, dpi=110)
    _pyplot().close(figure)
    return path


def write_runtime_report(report: Mapping[str, Any], out: Path, plots: bool = True) -> list[Path]:
    """Validate a bench report and write it as `runtime-DATE.json`, `.md`, `-latency.png` and `-throughput.png`
    under `out`; without matplotlib the plots are skipped with a warning, the results kept."""
    validate_bench_report(report)
    stem = f"runtime-{report['created'][:10]}"
    paths = [write_json(report, out / f"{stem}.json"), out / f"{stem}.md"]
    paths[1].write_text(f"# siamese-runtime bench\n\n{runtime_markdown(report)}", encoding="utf-8")
    if plots and plotting_available():
        title = machine_title(report["machine"], report["created"])
        paths.append(plot_latency(report["rows"], out / f"{stem}-latency.png", title))
        paths.append(plot_throughput(report["rows"], out / f"{stem}-throughput.png", title))
    return paths


def plotting_available() -> bool:
    """Whether matplotlib imports; where it does not, a warning naming the extra."""
    try:
        _pyplot()
    except ImportError as error:
        log.warning("%s; plots skipped, results written", error)
        return False
    return True
