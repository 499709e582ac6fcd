"""The `bench` subcommand's flags, and the BenchConfig they make."""

from __future__ import annotations

import argparse
from typing import Any

from ..bench.matrix import BenchConfig
from .arguments import non_negative_int, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `bench` subcommand's options."""
    defaults = BenchConfig()
    parser.add_argument("--model", help="model folder (default: the embedded default model)")
    parser.add_argument("--pairs", dest="pairs_file", help="TSV pair file whose real lengths make a profile")
    parser.add_argument("--providers", nargs="+", default=[],
                        help="onnxruntime provider names (default: all available)")
    parser.add_argument("--precisions", nargs="+", default=list(defaults.precisions))
    parser.add_argument("--batch-sizes", nargs="+", type=positive_int,
                        help=f"pairs per call (default: {defaults.batch_sizes})")
    parser.add_argument("--lengths", nargs="+", type=positive_int, dest="fixed_lengths",
                        help=f"fixed sentence lengths in characters (default: {defaults.fixed_lengths})")
    parser.add_argument("--threads", nargs="+", type=positive_int, default=[],
                        help="CPU intra-op thread counts to compare")
    parser.add_argument("--warmup", type=non_negative_int, help=f"untimed calls per row (default: {defaults.warmup})")
    parser.add_argument("--repeats", type=positive_int, help=f"timed calls per row (default: {defaults.repeats})")
    parser.add_argument("--profile", action="store_true", dest="op_profile",
                        help="also run onnxruntime's profiler on the first configuration over the --pairs file")
    parser.add_argument("--quick", action="store_true", help="a few seconds: batch sizes 1 and 8, one fixed length")
    parser.add_argument("--out", default="bench-results", help="folder for the JSON, Markdown and PNG files")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (they need matplotlib)")


def config_from_arguments(args: argparse.Namespace) -> BenchConfig:
    given: dict[str, Any] = {
        name: tuple(value) if isinstance(value, list) else value
        for name in ("model", "pairs_file", "providers", "precisions", "batch_sizes", "fixed_lengths", "threads",
                     "warmup", "repeats", "op_profile")
        if (value := getattr(args, name)) is not None
    }
    return BenchConfig.quick_config(**given) if args.quick else BenchConfig(**given)
