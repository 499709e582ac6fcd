"""Export a training run into a model folder, atomically: convert, write, check parity, then move in place."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

import keras
import onnx

from siamese_runtime.scorer import Scorer
from siamese_runtime.tokenizer import Tokenizer
from train.data import load_pairs, sample
from train.run import CONFIG_FILE, METRICS_FILE, MODEL_FILE, VALIDATION_FILE, VOCAB_FILE

from .convert import convert_encoder
from .manifest import onnx_file_entry, write_manifest
from .parity import ParityReport, check_parity

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.onnx"
PARITY_PAIRS = 2000


class ExportError(Exception):
    """The export cannot produce a trustworthy model folder."""


def export_run(run_dir: str | Path, out: str | Path, name: str | None = None, seed: int = 0) -> dict:
    """Convert the run in `run_dir` into the model folder `out`; returns the manifest written."""
    run = Path(run_dir)
    target = Path(out)
    config = json.loads((run / CONFIG_FILE).read_text())
    metrics = json.loads((run / METRICS_FILE).read_text())
    pair_model = keras.models.load_model(run / MODEL_FILE, safe_mode=True)
    encoder = pair_model.get_layer("encoder")
    tokenizer = Tokenizer.load(run / VOCAB_FILE)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        onnx.save(convert_encoder(encoder), str(staging / ENCODER_FILE))
        shutil.copyfile(run / VOCAB_FILE, staging / VOCAB_FILE)
        files = {ENCODER_FILE: onnx_file_entry(staging / ENCODER_FILE, "encoder", "fp32")}

        def manifest(extra_metrics: dict) -> dict:
            return write_manifest(
                staging, name or target.name, str(run), tokenizer, VOCAB_FILE, config["head"],
                metrics["threshold"], int(encoder.output.shape[-1]), files,
                {"validation": metrics["validation"], **extra_metrics},
            )

        manifest({})
        held_out = sample(load_pairs([str(run / VALIDATION_FILE)]), PARITY_PAIRS, seed)
        report = check_parity(pair_model, Scorer(staging, providers="cpu"), held_out.left, held_out.right)
        log.info("parity on %d held-out pairs: encodings %.2e, scores %.2e", report.pairs,
                 report.max_abs_encoding_diff, report.max_abs_score_diff)
        if not report.passed:
            raise ExportError(_parity_failure(report))
        written = manifest({"parity": report.__dict__})
        if target.exists():
            shutil.rmtree(target)
        staging.chmod(0o755)
        staging.rename(target)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _parity_failure(report: ParityReport) -> str:
    return (
        f"ONNX differs from Keras beyond 1e-5 on {report.pairs} held-out pairs: encodings by "
        f"{report.max_abs_encoding_diff:.3e}, scores by {report.max_abs_score_diff:.3e}"
    )
