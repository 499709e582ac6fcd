"""The `siamese-runtime` command line: parses arguments, prints messages, sets exit codes (exits.EXIT_*)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import NoReturn

from .. import __version__
from ..bad_rows import POLICIES
from ..cores import usable_cores
from ..errors import UsageError
from ..io.formats import FORMATS
from ..io.safe_output import signals_held
from ..job import JobOptions, JobSummary, run_job
from ..model_folder import ModelFolder
from ..precision import choose_precision
from ..ray.job import CHUNK_ROWS as RAY_CHUNK_ROWS
from ..scorer import Scorer
from ..session import installed_onnxruntime_distributions
from ..settings import AUTO, MAX_THREADS_PER_CORE, PRECISIONS, ScorerSettings, max_threads
from .arguments import add_header_flags, chunk_rows, non_negative_float, non_negative_int, positive_float, positive_int
from .bench_flags import add_arguments as add_bench_arguments
from .bench_flags import config_from_arguments
from .exits import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_HANGUP,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_SOFTWARE,
    EXIT_TERMINATED,
    EXIT_USAGE,
    PROGRAM,
    OneLineFormatter,
    one_line,
    run_command,
    say,
)
from .progress import progress_bar
from .signals import raise_on_stop_signals

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_ERROR", "EXIT_HANGUP", "EXIT_INTERRUPTED", "EXIT_LOCKED", "EXIT_SOFTWARE",
           "EXIT_TERMINATED", "EXIT_USAGE", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """The command's exit code; its errors end in one line on stderr (the console script runs it from entry)."""
    raise_on_stop_signals()
    parser = _parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(f"{PROGRAM}: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    warnings.showwarning = _show_warning
    return run_command(PROGRAM, lambda: args.run(args), verbose=args.verbose)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """A warning as one of the command's own lines, not Python's file:line: Category: text form."""
    logging.getLogger("siamese_runtime").warning("%s", message)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, as every other error (its subcommands' parsers are of this class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{PROGRAM}: error: {one_line(message)} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROGRAM,
                                     description="Score sentence pairs with a Siamese ONNX model.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log provider choices and other details")
    verbose = OneLineParser(add_help=False)  # -v after the command too: `score -v`, as before it
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="log provider choices and other details")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    score = commands.add_parser("score", parents=[verbose], help="score a file of pairs: its rows, then a score column")
    score.add_argument("input", help="TSV, CSV, JSONL or Parquet file of pairs; '-' reads stdin")
    score.add_argument("-o", "--output", default="-",
                       help="output file (same formats; its extension must name one, else give --output-format); "
                            "default '-': stdout, TSV unless told")
    score.add_argument("--model", help="model folder (default: the embedded default model)")
    score.add_argument("--provider", default="auto",
                       help="auto | cpu | cuda | cuda:N (GPU N) | openvino, or onnxruntime provider names "
                            "comma-separated, in order (CUDAExecutionProvider,CPUExecutionProvider) (default: auto)")
    score.add_argument("--precision", default="auto", choices=[AUTO, *PRECISIONS],
                       help="encoder precision; auto: fp16 on GPU providers when the model has it, else int8 "
                            "where the model records it costs nothing, else fp32")
    score.add_argument("--batch-size", type=positive_int,
                       help="most sentences per encoder batch (default: 64 on CPU, 1024 on CUDA, 256 on others)")
    score.add_argument("--threads", type=positive_int, help="cores encoding uses; on CPU that many batches run at "
                        "once (default: the physical cores this process may use; at most the cores it may use "
                        "unless --oversubscribe)")
    score.add_argument("--oversubscribe", action="store_true", help="allow --threads above the cores this process "
                       "may use")
    score.add_argument("--cache-size", type=non_negative_int, default=100_000,
                       help="encodings kept across chunks; 0: off")
    score.add_argument("--input-format", choices=FORMATS, help="default: from the extension, else tsv")
    score.add_argument("--output-format", choices=FORMATS, help="default: from the extension, else tsv")
    add_header_flags(score, "TSV/CSV")
    score.add_argument("--columns", help="LEFT,RIGHT: the two sentence columns, by name or number from 1")
    score.add_argument("--left", help="first sentence column, by name or number from 1 (default: 1)")
    score.add_argument("--right", help="second sentence column, by name or number from 1 (default: 2)")
    score.add_argument("--id-column", help="id column, kept in the reject file (default: a column named id)")
    score.add_argument("--predict", action="store_true", help="add a predicted 0/1 label before the score")
    score.add_argument("--on-bad-row", choices=POLICIES, default="stop",
                       help="stop (default): fail with file:line: reason; skip: no output row; "
                            "null: an output row with an empty score. skip and null write a reject file")
    score.add_argument("--reject-file", help="JSONL of bad rows with line and reason (default: OUTPUT.rejects.jsonl)")
    score.add_argument("--chunk-rows", type=chunk_rows,
                       help="rows read, scored and checkpointed at a time (default: 8192; ray: rows per actor call, "
                            f"default {RAY_CHUNK_ROWS})")
    score.add_argument("--resume", action="store_true", help="go on from the checkpoint of an interrupted job")
    score.add_argument("--stream", action="store_true",
                       help="write rows to stdout (or a pipe) as they are scored, for pipelines (| head); gives up "
                            "whole-or-nothing: rows already written stay when the job fails later")
    score.add_argument("--profile", action="store_true",
                       help="also print the seconds spent reading, tokenizing, encoding, in the head and writing")
    score.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local (default): this process; ray: an actor pool on a Ray cluster, Parquet out")
    score.add_argument("--actors", type=positive_int, help="ray: scoring actors, one model session each (default: 1)")
    score.add_argument("--cpus-per-actor", type=positive_float, help="ray: CPUs per actor (default: 1)")
    score.add_argument("--gpus-per-actor", type=non_negative_float,
                       help="ray: GPUs per actor (default: 1 with a GPU --provider, cuda or cuda:N, else 0)")
    score.add_argument("--ray-address", help="ray: the cluster to join (default: RAY_ADDRESS, else a local one)")
    score.set_defaults(run=_score)

    info = commands.add_parser("info", parents=[verbose],
                               help="the versions, providers and model in a few lines (--json: everything)")
    info.add_argument("--model", help="model folder (default: the embedded default model)")
    info.add_argument("--json", action="store_true", help="everything as JSON, the model's whole manifest included")
    info.set_defaults(run=_info)

    bench_command = commands.add_parser(
        "bench", parents=[verbose], help="latency and throughput per provider, precision, batch size, length")
    add_bench_arguments(bench_command)
    bench_command.set_defaults(run=_bench)
    return parser


RAY_FLAGS = ("--actors", "--cpus-per-actor", "--gpus-per-actor", "--ray-address")


def _score(args: argparse.Namespace) -> int:
    options = _job_options(args)
    _check_threads(args.threads, args.oversubscribe)
    if args.engine == "ray":
        return _score_on_ray(args, options)
    given = [flag for flag in RAY_FLAGS if getattr(args, flag.removeprefix("--").replace("-", "_")) is not None]
    if given:
        raise UsageError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for --engine ray")
    scorer = Scorer.from_settings(_scorer_settings(args))
    logging.getLogger(__name__).info("precision %s (%s); provider options %s", scorer.precision,
                                     scorer.encoder.precision_reason, scorer.provider_options)
    if sys.stderr.isatty():
        with progress_bar(options) as on_progress:
            summary = run_job(scorer, options, on_progress=on_progress)
    else:
        summary = run_job(scorer, options)
    with signals_held():  # the job is done: a stop signal while it says so must not fail it
        _say_summary(summary, profile=args.profile)
    return 0


def _say_summary(summary: JobSummary, *, profile: bool) -> None:
    """One short line (the precision's reason and provider options are logged under -v); stage times with
    --profile."""
    bad = f", {summary.bad_rows} bad rows in {summary.rejects}" if summary.rejects else ""
    resumed = f", {summary.resumed_rows} done before resuming" if summary.resumed_rows else ""
    truncated = f", {summary.truncated} truncated" if summary.truncated else ""
    provider = summary.provider.removesuffix("ExecutionProvider")
    say(f"scored {summary.rows} rows{bad}{resumed} in {summary.seconds:.2f} s, {summary.pairs_per_second:.0f} "
        f"pairs/s on {provider} {summary.precision}; {summary.sentences_encoded} sentences encoded{truncated}")
    if profile:
        say("seconds by stage: " + ", ".join(f"{k} {v:.3f}" for k, v in _profile_stages(summary).items()))


def _profile_stages(summary: JobSummary) -> dict[str, float]:
    """The job's seconds by stage, `other` added: the job thread's time outside its stages. `encode` is the
    encoder's own time, on a thread of its own, which the job thread's head, write and reading overlap; every
    other stage, `wait` for the encoder included, is the job thread's, and they add up to the job's seconds."""
    own = sum(seconds for stage, seconds in summary.stage_seconds.items() if stage != "encode")
    return {**summary.stage_seconds, "other": summary.seconds - own}


def _scorer_settings(args: argparse.Namespace) -> ScorerSettings:
    """The flags as a Scorer's settings; what the settings refuse is a usage error, as the flags' own checks are."""
    try:
        return ScorerSettings(model=args.model, providers=args.provider, precision=args.precision,
                              intra_op_num_threads=args.threads, batch_size=args.batch_size,
                              cache_size=args.cache_size)
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None


def _job_options(args: argparse.Namespace) -> JobOptions:
    left, right = args.left, args.right
    if args.columns is not None:
        if left is not None or right is not None or args.columns.count(",") != 1:
            raise UsageError("--columns takes LEFT,RIGHT and replaces --left and --right")
        left, right = args.columns.split(",")
    return JobOptions(
        args.input, args.output, input_format=args.input_format, output_format=args.output_format,
        header=args.header, left=left, right=right, id_column=args.id_column, predict=args.predict,
        on_bad_row=args.on_bad_row, reject_file=args.reject_file, resume=args.resume, stream=args.stream,
        chunk_rows=args.chunk_rows or (RAY_CHUNK_ROWS if args.engine == "ray" else JobOptions.chunk_rows),
    )


def _check_threads(threads: int | None, oversubscribe: bool) -> None:
    cores = usable_cores()
    if threads is not None and threads > cores and not oversubscribe:
        raise UsageError(f"--threads {threads} is more than the {cores} cores this process may use (its CPU affinity "
                         "and cgroup quota); add --oversubscribe if you mean it")
    if threads is not None and threads > max_threads():
        raise UsageError(f"--threads {threads} is more than {MAX_THREADS_PER_CORE} per core, even with "
                         "--oversubscribe: each thread reserves memory (100,000 exhausted 16 GB)")


def _score_on_ray(args: argparse.Namespace, options: JobOptions) -> int:
    from ..ray.cluster import quiet_ray_data
    from ..ray.job import ClusterOptions, run_ray_job

    scorer = _scorer_settings(args)
    actors = args.actors or 1
    cluster = ClusterOptions.for_scorer(scorer, num_gpus=args.gpus_per_actor, address=args.ray_address,
                                        actors=actors, num_cpus=args.cpus_per_actor or 1)
    if not args.verbose:
        quiet_ray_data()
    summary = run_ray_job(scorer, options, cluster)
    bad = f", {summary.bad_rows} bad rows in {summary.rejects}" if summary.rejects else ""
    say(f"scored {summary.rows} rows{bad} on Ray with {actors} actors; {summary.seconds:.2f} s, "
        f"{summary.pairs_per_second:.0f} pairs/s")
    return 0


def _info(args: argparse.Namespace) -> int:
    import onnxruntime

    model = ModelFolder.load(args.model)
    available = onnxruntime.get_available_providers()
    report = {
        "siamese_runtime": __version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_distributions": installed_onnxruntime_distributions(),
        "available_providers": available,
        "auto_precision": {provider: asdict(choose_precision(AUTO, provider, model)) for provider in available},
        "model_path": str(model.path),
        "manifest": model.manifest,
    }
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    lines = [f"siamese-runtime {__version__} on onnxruntime {onnxruntime.__version__} "
             f"({', '.join(report['onnxruntime_distributions']) or 'no distribution found'})",
             f"model: {model.name} ({model.path}), precisions {', '.join(model.precisions())}, "
             f"threshold {model.threshold:g}",
             "providers, and the precision auto runs on each:",
             *(f"  {provider}: {choice['precision']} ({choice['reason']})"
               for provider, choice in report["auto_precision"].items()),
             "everything, the whole manifest included: siamese-runtime info --json"]
    print("\n".join(lines))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from ..bench.matrix import run_bench
    from ..bench.report import runtime_markdown, write_runtime_report

    report = run_bench(config_from_arguments(args))
    print(runtime_markdown(report))
    for warning in report["warnings"]:
        logging.getLogger(__name__).warning("%s", warning)
    for path in write_runtime_report(report, Path(args.out), plots=not args.no_plots):
        say(f"wrote {path}")
    return 0
