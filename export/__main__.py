"""`python -m export RUN_DIR --out models/NAME`: convert a training run into a runtime model folder."""

from __future__ import annotations

import argparse
import logging
import sys

from .folder import ExportError, export_run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("run_dir", help="a run directory written by python -m train")
    parser.add_argument("--out", required=True, help="model folder to write, e.g. models/default")
    parser.add_argument("--name", help="model name in the manifest (default: the folder's name)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="export: %(message)s")
    try:
        manifest = export_run(args.run_dir, args.out, args.name)
    except ExportError as error:
        print(f"export: error: {error}", file=sys.stderr)
        return 1
    parity = manifest["metrics"]["parity"]
    print(f"export: wrote {args.out}: parity {parity['max_abs_score_diff']:.2e} on {parity['pairs']} pairs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
