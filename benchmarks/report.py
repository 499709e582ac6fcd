"""A benchmark run as files: DATE.json (schema-checked), DATE.md and PNG plots in the results folder."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fastjsonschema

from siamese_runtime.bench.report import (
    machine_title,
    markdown_table,
    op_profile_markdown,
    plot_bars,
    plot_latency,
    runtime_markdown,
    write_json,
)

SCHEMA = Path(__file__).with_name("results.schema.json")
STAGES = ("read", "tokenize", "encode", "wait", "head", "write", "other")
RATIOS = {"c_over_a": "(c)/(a)", "c_over_b": "(c)/(b)", "d_over_a": "(d)/(a)", "e_over_a": "(e)/(a)"}


def validate(results: Mapping[str, Any]) -> None:
    fastjsonschema.validate(json.loads(SCHEMA.read_text(encoding="utf-8")), results)


def write(results: Mapping[str, Any], out: Path, plots: bool = True) -> list[Path]:
    validate(results)
    stem = results["created"][:10] + ("-quick" if results["quick"] else "")
    paths = [write_json(results, out / f"{stem}.json"), out / f"{stem}.md"]
    paths[1].write_text(markdown(results), encoding="utf-8")
    if plots:
        title = machine_title(results["machine"], results["created"])
        paths.append(plot_latency(results["runtime"]["rows"], out / f"{stem}-latency.png", title))
        paths.append(plot_end_to_end(results, out / f"{stem}-end-to-end.png", title))
        paths.append(plot_bars(_matrix_throughputs(results), out / f"{stem}-throughput.png", "pairs/s",
                               f"siamese-runtime bench: best batch size on the real-length profile\n{title}"))
    return paths


def plot_end_to_end(results: Mapping[str, Any], path: Path, title: str) -> Path:
    """Bars grouped by file, one colour per way, pairs/s on a plain axis, each bar's speed-up over (a) on it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    ways, rows = results["ways"], results["files"]
    width = 0.8 / len(ways)
    figure, axis = plt.subplots(figsize=(2.2 + 3.2 * len(rows), 6), layout="constrained")
    for index, (key, label) in enumerate(ways.items()):
        positions = [group + (index - (len(ways) - 1) / 2) * width for group in range(len(rows))]
        speeds = [row["pairs_per_second"][key] for row in rows]
        bars = axis.bar(positions, speeds, width, label=label)
        ratios = [row["best_seconds"]["keras"] / row["best_seconds"][key] for row in rows]
        axis.bar_label(bars, labels=[f"{ratio:.1f}x" for ratio in ratios], padding=2, fontsize=8)
    axis.set_xticks(range(len(rows)), [f"{row['file']}\n{row['pairs']:,} pairs" for row in rows])
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axis.set(ylabel="pairs/s, file in -> scores out (best of repeats)",
             title=f"End to end (labels: speed-up over (a))\n{title}")
    axis.margins(y=0.12)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=8, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _matrix_throughputs(results: Mapping[str, Any]) -> dict[str, float]:
    """Each runtime variant's best batch size on the real-length profile of `siamese-runtime bench`."""
    speeds: dict[str, float] = {}
    for row in results["runtime"]["rows"]:
        if row["profile"].startswith("real:"):
            provider = row["provider"].removesuffix("ExecutionProvider")
            label = f"bench {provider} {row['precision']} {row['threads'] or ''}t"
            label += f" · {row['profile'][5:]} (best batch)"
            speeds[label] = max(speeds.get(label, 0.0), row["pairs_per_second"])
    return speeds


def _single_pair_lines(single: Mapping[str, Any] | None) -> list[str]:
    if not single:
        return []
    return [
        "## One pair at a time",
        "",
        f"`Scorer.score([pair])` (cache off: tokenize, encode, head) p50 {single['api_p50_us']:.0f} us against a bare "
        f"`session.run` on the same pre-tokenized pair p50 {single['bare_onnxruntime_p50_us']:.0f} us: "
        f"**{single['ratio']:.2f}x** (target at most {single['target_ratio']}x), {single['calls_each']} calls each, "
        f"{single['pairs']} real pairs, interleaved.",
        "",
    ]


def markdown(results: Mapping[str, Any]) -> str:
    machine = results["machine"]
    ways = results["ways"]
    settings = results["settings"]
    limit = results["limit"]
    blas = limit["numpy_sgemm"]["blas"]
    kernel = ", ".join(f"{b['internal_api']} {b['version']} {b['architecture']} x{b['num_threads']}" for b in blas)
    speed_rows = (
        [row["file"], row["pairs"], row["distinct_sentences"], f"{row['padded_tokens'] / row['needed_tokens']:.1f}x",
         *(row["best_seconds"][key] for key in ways),
         *(f"{row['speedup'][name]:.1f}x" for name in RATIOS),
         f"{row['agreement_max_abs_diff']['runtime_vs_keras']:.1e}",
         f"{row['agreement_max_abs_diff']['cli_vs_keras']:.1e}",
         row["limit"]["achieved_gflops"], f"{row['limit']['share_of_numpy_sgemm']:.1%}",
         f"{row['limit']['share_of_onnxruntime_matmul']:.1%}"]
        for row in results["files"]
    )
    headers = ["file", "pairs", "distinct sentences", "padded/needed tokens", *(f"{ways[k]} s" for k in ways),
               *RATIOS.values(), "max abs score diff (c) vs (a)", "(d) vs (a)", "achieved GFLOP/s",
               "share of numpy sgemm peak",
               "share of onnxruntime MatMul peak"]
    lines = [
        f"# Benchmarks {results['created'][:10]}{' (quick)' if results['quick'] else ''}",
        "",
        f"Machine: {machine['cpu_model']}, {machine['logical_cores']} cores, {machine['memory_gib']} GiB, "
        f"onnxruntime {machine['onnxruntime']['version']}. Run `{results['run']}`, model folder `{results['model']}`.",
        "",
        "## End to end: file in, scores out",
        "",
        f"(a) Keras `predict` (batch {settings['keras_predict_batch']}) "
        "on pairs padded to the file's longest sentence; "
        f"(b) plain tf2onnx export of the masked pair model ({settings['plain_onnx_ops'].get('Loop', 0)} Loop ops) "
        f"on onnxruntime, batches of {settings['plain_onnx_batch']} padded the same way; "
        "(c) `siamese-runtime score`'s job in this process; (d) the `siamese-runtime score` command as a whole "
        "process, start-up included (default precision), and (e) the same with `--precision int8`. "
        f"Best of {settings['repeats']} interleaved runs each, after a warm-up; ratios are speed-ups. "
        "The last row is both files concatenated into one input file.",
        "",
        markdown_table(headers, speed_rows),
        "",
        "Where (d)'s time goes (its `--profile`, seconds; 'encode' is the encoder's own time, on its thread, which "
        "the job thread's stages overlap; the job thread's stages add up to the job: 'wait' for the encoder, "
        "'other' the rest (checks, deduplication, the head's bookkeeping); start-up is (d) minus them):",
        "",
        markdown_table(["file", *STAGES, "start-up and exit"],
                       ([row["file"], *(row["cli_stage_seconds"].get(stage, 0.0) for stage in STAGES),
                         row["best_seconds"]["cli"] - sum(seconds for stage, seconds in row["cli_stage_seconds"].items()
                                                          if stage != "encode")]
                        for row in results["files"])),
        *_single_pair_lines(results.get("single_pair")),
        "## The limit",
        "",
        f"Encoder FLOPs per token: {limit['flops_per_token']:,} ({limit['formula']})",
        "",
        f"Peak: numpy sgemm {limit['numpy_sgemm']['gflops']:.0f} GFLOP/s (n={limit['numpy_sgemm']['n']}, "
        f"{kernel}, with {' and '.join(limit['numpy_sgemm']['unset'])} unset); onnxruntime MatMul "
        f"{limit['onnxruntime_matmul']['gflops']:.0f} GFLOP/s (n={limit['onnxruntime_matmul']['n']}, "
        f"{limit['onnxruntime_matmul']['threads']} threads). Achieved = needed FLOPs / (c)'s end-to-end seconds.",
        "",
    ]
    runtime = results["runtime"]
    if runtime.get("op_profile"):
        lines += ["## Where the time goes", "", op_profile_markdown(runtime["op_profile"])]
    lines += ["## Runtime matrix (`siamese-runtime bench`)", "", runtime_markdown({**runtime, "op_profile": None})]
    return "\n".join(lines)
