"""`python -m export RUN_DIR --out models/NAME`: convert a training run into a runtime model folder."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .card import summary_table
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


if __name__ == "__main__":
    raise SystemExit(main())
