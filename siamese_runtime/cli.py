"""The `siamese-runtime` command line: parses arguments, prints messages, sets exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__, bench
from .errors import SiameseRuntimeError
from .job import score_file
from .model_folder import ModelFolder
from .scorer import Scorer
from .session import installed_onnxruntime_distributions

EXIT_ERROR = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="siamese-runtime: %(message)s")
    try:
        return args.run(args)
    except SiameseRuntimeError as error:
        print(f"siamese-runtime: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as error:
        print(f"siamese-runtime: error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siamese-runtime", description="Score sentence pairs with a Siamese ONNX model.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log provider choices and other details")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    score = commands.add_parser("score", help="score a TSV file of pairs: input columns plus a score column")
    score.add_argument("input", help="headerless TSV: sentence1<TAB>sentence2[<TAB>label]; '-' reads stdin")
    score.add_argument("-o", "--output", required=True, help="output TSV path; '-' writes stdout")
    score.add_argument("--model", help="model folder (default: the embedded default model)")
    score.add_argument("--provider", default="auto", help="auto | cpu | cuda (default: auto)")
    score.add_argument("--precision", default="fp32", help="encoder precision in the model folder (default: fp32)")
    score.add_argument("--batch-size", type=int, default=256, help="most sentences per encoder batch (default: 256)")
    score.add_argument("--threads", type=int, help="intra-op threads (default: physical cores)")
    score.set_defaults(run=_score)

    info = commands.add_parser("info", help="providers available and the model's manifest, as JSON")
    info.add_argument("--model", help="model folder (default: the embedded default model)")
    info.set_defaults(run=_info)

    bench_command = commands.add_parser("bench", help="latency and throughput per provider, precision, batch size, length")
    bench.add_arguments(bench_command)
    bench_command.set_defaults(run=_bench)
    return parser


def _score(args: argparse.Namespace) -> int:
    scorer = Scorer(args.model, providers=args.provider, precision=args.precision,
                    intra_op_num_threads=args.threads, batch_size=args.batch_size)
    from tqdm import tqdm

    with tqdm(unit=" pairs", disable=not sys.stderr.isatty(), file=sys.stderr) as progress:
        summary = score_file(scorer, args.input, args.output, on_progress=progress.update)
    print(
        f"siamese-runtime: scored {summary.rows} rows in {summary.seconds:.2f} s "
        f"({summary.pairs_per_second:.0f} pairs/s) on {summary.provider}",
        file=sys.stderr,
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    import onnxruntime

    model = ModelFolder.load(args.model)
    report = {
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_distributions": installed_onnxruntime_distributions(),
        "available_providers": onnxruntime.get_available_providers(),
        "model_path": str(model.path),
        "manifest": model.manifest,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench_report import runtime_markdown, write_runtime_report

    report = bench.run_bench(bench.config_from_arguments(args))
    print(runtime_markdown(report))
    for path in write_runtime_report(report, Path(args.out), plots=not args.no_plots):
        print(f"siamese-runtime: wrote {path}", file=sys.stderr)
    return 0
