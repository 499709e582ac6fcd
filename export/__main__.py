"""`python -m export RUN_DIR --out models/NAME`: convert a training run into a runtime model folder."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .folder import DEFAULT_REPORT_FILES, ExportError, export_run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("run_dir", help="a run directory written by python -m train")
    parser.add_argument("--out", required=True, help="model folder to write, e.g. models/default")
    parser.add_argument("--name", help="model name in the manifest (default: the folder's name)")
    parser.add_argument("--report", nargs="*", default=list(DEFAULT_REPORT_FILES),
                        help="labeled files scored for the manifest's metrics only (default: the official tests)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="export: %(message)s")
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    try:
        manifest = export_run(args.run_dir, args.out, args.name, args.report)
    except ExportError as error:
        print(f"export: error: {error}", file=sys.stderr)
        return 1
    print(summary_table(Path(args.out), manifest))
    return 0


def summary_table(folder: Path, manifest: dict) -> str:
    """Markdown: each file with its size and role, then accuracy per variant and dataset."""
    metrics = manifest["metrics"]
    parity = metrics["parity"]
    lines = ["| file | role | precision | MB |", "| --- | --- | --- | --- |"]
    for name, entry in manifest["files"].items():
        lines.append(f"| {name} | {entry['role']} | {entry['precision']} | {(folder / name).stat().st_size / 1e6:.2f} |")
    datasets = list(metrics["accuracy"]["fp32"])
    lines += ["", f"parity with Keras on {parity['pairs']} held-out pairs: encodings {parity['max_abs_encoding_diff']:.1e}, "
              f"scores {parity['max_abs_score_diff']:.1e}, pair.onnx {parity['max_abs_pair_diff']:.1e}", "",
              "| variant | " + " | ".join(datasets) + " | within bound |", "|" + " --- |" * (len(datasets) + 2)]
    for precision, results in metrics["accuracy"].items():
        bound = metrics["variant_bounds"].get(precision, {}).get("within_bound", "reference")
        cells = " | ".join(f"{results[d]['at_threshold']['accuracy']:.4f}" for d in datasets)
        lines.append(f"| {precision} | {cells} | {bound} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
