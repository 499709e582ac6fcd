"""`python -m export RUN_DIR --out models/NAME`: convert a training run into a runtime model folder."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

# TensorFlow's C++ INFO and WARNING lines off unless the user chose a level; set before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Light imports only until the arguments are parsed: `--help` and usage errors never load TensorFlow.
from siamese_runtime.cli.exits import run_command  # noqa: E402
from train.data_home import TEST_FILES  # noqa: E402

from .card import summary_table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("run_dir", help="a run directory written by python -m train")
    parser.add_argument("--out", required=True, help="model folder to write, e.g. models/default")
    parser.add_argument("--name", help="model name in the manifest (default: the folder's name)")
    parser.add_argument("--report", nargs="*",
                        help="labeled files scored for the manifest's metrics only (default: the official tests, "
                             f"{' and '.join(TEST_FILES)} in the data folder, $SIAMESE_DATA)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="export: %(message)s")
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    from .folder import DEFAULT_REPORT_FILES, export_run  # Keras, TensorFlow, tf2onnx: only now

    reports = DEFAULT_REPORT_FILES if args.report is None else args.report

    def export() -> int:
        manifest = export_run(args.run_dir, args.out, args.name, reports)
        print(summary_table(Path(args.out), manifest))
        return 0

    return run_command("export", export, verbose=True)  # a defect shows its traceback


if __name__ == "__main__":
    raise SystemExit(main())
