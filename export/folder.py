"""Export a training run into a model folder, atomically: convert, derive variants, check, then move in place."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import onnx

from siamese_runtime.bench.pair_files import file_label
from siamese_runtime.errors import SiameseRuntimeError
from siamese_runtime.heads import LEARNED, Calibration
from siamese_runtime.model_folder import sha256_of
from siamese_runtime.scorer import Scorer
from siamese_runtime.tokenizer import Tokenizer
from train.data import Pairs, load_pairs, sample
from train.data_home import TEST_FILES, data_file
from train.evaluate import evaluate
from train.run_directory import MODEL_FILE, VOCAB_FILE, RunDirectory

from .calibration import (
    DIAGRAM_FILE,
    class_balanced_weights,
    domain_balanced_weights,
    expected_calibration_error,
    fit_platt,
    reliability_curve,
    save_reliability_diagram,
)
from .card import write_model_card
from .convert import clean_pair_model, convert_encoder, head_arrays
from .manifest import onnx_file_entry, write_manifest
from .pair_graph import build_pair_graph
from .parity import ParityReport, check_parity
from .variants import MAX_ACCURACY_DROP, convert_fp16, optimize_offline, quantize_int8

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.onnx"
RAW_ENCODER_FILE = "encoder.raw.onnx"  # tf2onnx's output, before the offline optimization; never kept
PAIR_FILE = "pair.onnx"
HEAD_FILE = "head.npz"
VARIANT_FILES = {"int8": "encoder.int8.onnx", "fp16": "encoder.fp16.onnx"}
PARITY_PAIRS = 2000
DEFAULT_REPORT_FILES = tuple(str(data_file(name)) for name in TEST_FILES)  # the official tests, in SIAMESE_DATA
SIZE_BUDGET_BYTES = 25_000_000
# A variant's accuracy bound is judged on datasets where one flipped pair moves accuracy by at most
# 0.05 points; on a few hundred pairs a single flip would exceed a 0.5-point bound by itself.
MIN_PAIRS_FOR_BOUND = 2000
BATCHING_PROBE = 7  # sentences per encoder run when export checks that scores do not depend on batching
STEPS = 5


class ExportError(SiameseRuntimeError):
    """The export cannot produce a trustworthy model folder."""


def export_run(
    run_dir: str | Path,
    out: str | Path,
    name: str | None = None,
    report_files: Sequence[str] = DEFAULT_REPORT_FILES,
    seed: int = 0,
) -> dict[str, Any]:
    """Convert the run in `run_dir` into the model folder `out`; returns the manifest written.

    Everything is written into one staging folder beside `out`, then swapped into place; on any failure the
    staging folder is removed and `out` (and the folder around it) is left as it was.
    `report_files` are only scored, for the manifest's metrics: nothing is tuned on them.
    """
    run, target = RunDirectory.load(run_dir), Path(out)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ExportError(f"{target}: exists and is not a folder; give a model folder to write or replace")
    tokenizer = run.tokenizer()
    pair_model = keras.models.load_model(run.model_path, safe_mode=True, compile=False)
    validation = with_sources(load_pairs([str(run.validation_path)]), run.config().get("train_files", []))
    held_out = sample(validation, PARITY_PAIRS, seed)

    created = [folder for folder in (target.parent, *target.parent.parents) if not folder.exists()]
    staging: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.export-", dir=target.parent))
        folder = _Folder(staging, name or target.name, run, tokenizer, _encoding_dim(pair_model))
        manifest = _build(folder, run, pair_model, validation, held_out, report_files)
        _step(5, f"moving into place: {target}")
        _move_into_place(staging, target)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        for made in created:  # the parents this export made, deepest first, if still empty
            with contextlib.suppress(OSError):
                made.rmdir()
        raise
    return manifest


def _build(
    folder: _Folder, run: RunDirectory, pair_model: keras.Model, validation: Pairs, held_out: Pairs,
    report_files: Sequence[str],
) -> dict[str, Any]:
    """Steps 1-4: every file of the model folder, written into its staging folder; returns the manifest."""
    staging = folder.path
    shutil.copyfile(run.vocab_path, staging / VOCAB_FILE)

    _step(1, "converting the encoder with tf2onnx (native LSTM + sequence_lens)")
    raw = staging / RAW_ENCODER_FILE  # inside the staging folder: removed with it if anything fails
    onnx.save(convert_encoder(pair_model.get_layer("encoder")), str(raw))
    _step(2, "optimizing offline (onnxruntime basic level), fitting the calibration, building pair.onnx, "
             "checking parity with Keras")
    optimization = optimize_offline(raw, staging / ENCODER_FILE)
    parity = _stage_pair_and_check(folder, pair_model, held_out, validation)
    optimization["kept"] = parity.passed
    if not parity.passed:
        log.warning("optimized graph breaks parity (%s); keeping the unoptimized one", _describe(parity))
        shutil.copyfile(raw, staging / ENCODER_FILE)
        parity = _stage_pair_and_check(folder, pair_model, held_out, validation)
    raw.unlink()
    if not parity.passed:
        raise ExportError(f"ONNX differs from Keras beyond 1e-5: {_describe(parity)}")

    _step(3, "deriving the int8 and fp16 encoders")
    quantize_int8(staging / ENCODER_FILE, staging / VARIANT_FILES["int8"])
    convert_fp16(staging / ENCODER_FILE, staging / VARIANT_FILES["fp16"])
    for precision, file in VARIANT_FILES.items():
        folder.add(file, "encoder", precision)
    clean_pair_model(pair_model, run.head).save(staging / MODEL_FILE)
    folder.add(MODEL_FILE, "keras", "fp32")

    _step(4, "scoring the validation split and report files with every variant")
    datasets = {"validation": validation, **{file_label(f): load_pairs([f]) for f in report_files}}
    scores = _scores_by_variant(staging, datasets)
    accuracy = _accuracy_by_variant(scores, datasets, folder.stored_threshold)
    for precision, change in _score_change_by_batching(staging, validation, scores).items():
        accuracy["variant_bounds"].setdefault(precision, {})["max_score_change_by_batching"] = change
    calibration = _calibration_report(staging, scores["fp32"], datasets, folder.config.get("train_files", []))
    folder.metrics.update({"parity": parity.as_dict(), "optimization": optimization, **accuracy,
                           "calibration": calibration})
    manifest = folder.write()
    write_model_card(staging, manifest)
    size = sum(p.stat().st_size for p in staging.iterdir())
    if size > SIZE_BUDGET_BYTES:
        raise ExportError(f"model folder is {size / 1e6:.1f} MB, over the {SIZE_BUDGET_BYTES / 1e6:.0f} MB budget")
    return manifest


def _encoding_dim(pair_model: keras.Model) -> int:
    return int(pair_model.get_layer("encoder").output.shape[-1])


def _move_into_place(staging: Path, target: Path) -> None:
    """Swap the finished `staging` folder in as `target`: an existing target is renamed to a backup beside it,
    staging renamed into place, then the backup removed; if that second rename fails, the backup goes back."""
    staging.chmod(0o755)  # mkdtemp made it private
    if not target.exists():
        staging.rename(target)
        return
    backup = staging.with_name(f"{staging.name}.old")
    target.rename(backup)
    try:
        staging.rename(target)
    except BaseException:
        backup.rename(target)
        raise
    shutil.rmtree(backup, ignore_errors=True)
    if backup.exists():
        log.warning("the replaced model folder could not be removed entirely: %s", backup)


def with_sources(validation: Pairs, train_files: Sequence[str]) -> Pairs:
    """`validation` with each pair's source: the index of the training file it came from (validation.tsv does not
    say), found by its two sentences; where no file can be read (a run from another machine), every pair's
    source stays 0, which a calibration fit then reads as one domain, as it was before sources were known."""
    where: dict[tuple[str, str], int] = {}
    for index, recorded in enumerate(train_files):
        path = recorded if Path(recorded).is_file() else str(data_file(file_label(recorded)))
        if not Path(path).is_file():
            log.warning("%s: not found, so validation pairs are not told apart by training file", recorded)
            return validation
        pairs = load_pairs([path], on_bad_row="skip")
        for pair in zip(pairs.left, pairs.right):
            where.setdefault(pair, index)
    sources = np.array([where.get(pair, 0) for pair in zip(validation.left, validation.right)], np.int64)
    return Pairs(validation.left, validation.right, validation.labels, sources, validation.skipped)


def portable(config: dict[str, Any]) -> dict[str, Any]:
    """A run's config as a manifest records it, without the training machine's paths: data files by their place
    in the data folder ('bq/dev.tsv'), the run and its teachers by their folder's name."""
    named = {key: Path(config[key]).name for key in ("out",) if config.get(key)}
    files = {key: [file_label(file) for file in config[key]] for key in ("train_files",) if config.get(key)}
    teachers = {"teachers": [Path(teacher).name for teacher in config["teachers"]]} if config.get("teachers") else {}
    return {**config, **named, **files, **teachers}


class _Folder:
    """The files and metrics of a model folder being built; each write re-validates the manifest."""

    def __init__(self, path: Path, name: str, run: RunDirectory, tokenizer: Tokenizer, encoding_dim: int) -> None:
        self.path, self.name, self.source_run, self.tokenizer = path, name, run.path.name, tokenizer
        self.config, self.head, self.threshold = portable(run.config()), run.head, run.threshold
        self.encoding_dim = encoding_dim
        self.files: dict[str, dict[str, Any]] = {}
        self.calibration: Calibration | None = None
        self.metrics: dict[str, Any] = {
            "training_validation": run.validation_metrics,
            "training_validation_per_file": {file_label(file): metrics
                                             for file, metrics in run.validation_metrics_per_file.items()},
        }

    def add(self, file: str, role: str, precision: str) -> None:
        path = self.path / file
        self.files[file] = onnx_file_entry(path, role, precision) if file.endswith(".onnx") else {
            "sha256": sha256_of(path), "role": role, "precision": precision}
        self.write()

    def write(self) -> dict[str, Any]:
        calibration = None if self.calibration is None else {
            "method": "platt", "slope": self.calibration.slope, "intercept": self.calibration.intercept,
            "fitted_on": "validation split, every training file and within it both classes weighted the same"}
        return write_manifest(self.path, self.name, self.source_run, self.tokenizer, VOCAB_FILE, self.head,
                              self.stored_threshold, self.encoding_dim, self.files, self.metrics, self.config,
                              HEAD_FILE if self.head == LEARNED else None, calibration)

    @property
    def stored_threshold(self) -> float:
        """The run's threshold, mapped through the calibration when there is one."""
        return self.threshold if self.calibration is None else float(self.calibration(np.float32(self.threshold)))

    def calibrate(self, validation: Pairs) -> None:
        """Fit the Platt scaling on the runtime's uncalibrated validation scores and record it."""
        self.calibration = None
        self.write()
        scores = Scorer(self.path, providers="cpu").score(validation.left, validation.right)
        self.calibration = fit_platt(scores, validation.labels,
                                     domain_balanced_weights(validation.labels, validation.sources))
        self.write()


def _stage_pair_and_check(
    folder: _Folder, pair_model: keras.Model, held_out: Pairs, validation: Pairs
) -> ParityReport:
    """List the staged encoder, fit the calibration on `validation`, build pair.onnx from them, and check both
    (through the runtime) against Keras followed by the same calibration."""
    folder.add(ENCODER_FILE, "encoder", "fp32")
    weights = head_arrays(pair_model) if folder.head == LEARNED else None
    if weights is not None:
        save_arrays: Callable[..., None] = np.savez  # numpy's stub types every ** key as allow_pickle's bool
        save_arrays(folder.path / HEAD_FILE, **weights)
        folder.add(HEAD_FILE, "head", "fp32")
    folder.calibrate(validation)
    encoder = onnx.load(str(folder.path / ENCODER_FILE))
    onnx.save(build_pair_graph(encoder, folder.head, weights, folder.calibration), str(folder.path / PAIR_FILE))
    folder.add(PAIR_FILE, "pair", "fp32")
    scorer = Scorer(folder.path, providers="cpu")
    return check_parity(pair_model, scorer, held_out.left, held_out.right, pair_path=folder.path / PAIR_FILE)


def _scores_by_variant(folder: Path, datasets: dict[str, Pairs]) -> dict[str, dict[str, np.ndarray]]:
    """The runtime's scores of every dataset with every precision's encoder, computed once for every report."""
    scores = {}
    for precision in ("fp32", *VARIANT_FILES):
        scorer = Scorer(folder, providers="cpu", precision=precision)
        scores[precision] = {label: scorer.score(pairs.left, pairs.right) for label, pairs in datasets.items()}
    return scores


def _score_change_by_batching(
    folder: Path, pairs: Pairs, scores: dict[str, dict[str, np.ndarray]]
) -> dict[str, float]:
    """Per precision, the largest change of a validation score when the runtime encodes in batches of
    BATCHING_PROBE sentences instead of its default: 0.0 where scores do not depend on batching."""
    changes = {}
    for precision, by_label in scores.items():
        scorer = Scorer(folder, providers="cpu", precision=precision, batch_size=BATCHING_PROBE, cache_size=0)
        changes[precision] = float(np.abs(scorer.score(pairs.left, pairs.right) - by_label["validation"]).max())
    if changes["fp32"] > 0:
        log.warning("fp32 scores change with batching (by up to %.2g): resumed jobs will differ", changes["fp32"])
    return changes


def _accuracy_by_variant(
    scores: dict[str, dict[str, np.ndarray]], datasets: dict[str, Pairs], threshold: float
) -> dict[str, Any]:
    """Metrics per precision and dataset at the stored threshold, and whether each variant stays within its bound."""
    results = {
        precision: {label: evaluate(values, datasets[label].labels, threshold) for label, values in by_label.items()}
        for precision, by_label in scores.items()
    }
    judged = [d for d in datasets if results["fp32"][d]["pairs"] >= MIN_PAIRS_FOR_BOUND] or list(datasets)
    bounds = {}
    for precision, limit in MAX_ACCURACY_DROP.items():
        drops = {
            d: round(
                100
                * (results["fp32"][d]["at_threshold"]["accuracy"] - results[precision][d]["at_threshold"]["accuracy"]),
                3,
            )
            for d in datasets
        }
        drop = max(drops[d] for d in judged)
        bounds[precision] = {"max_drop_points": drop, "bound_points": limit, "within_bound": drop <= limit,
                             "drop_points_by_dataset": drops, "judged_on": judged}
        if drop > limit:
            log.warning(
                "%s loses %.2f accuracy points, over its %.1f bound: marked in the manifest", precision, drop, limit
            )
    return {"accuracy": results, "variant_bounds": bounds}


def _calibration_report(folder: Path, scores: dict[str, np.ndarray], datasets: dict[str, Pairs],
                        train_files: list[str]) -> dict[str, Any]:
    """Expected calibration error and reliability curve of the fp32 `scores` on each dataset, and the diagram
    (written into `folder`).

    Validation is judged as it was fitted (every domain, and within it both classes, weighted the same), and
    each training file's part of it on its own, classes balanced; the test files (50/50 already) as they are.
    """
    errors, curves = {}, {}
    for label, pairs in datasets.items():
        probabilities = scores[label].astype(np.float64)
        weights = domain_balanced_weights(pairs.labels, pairs.sources) if label == "validation" else None
        errors[label] = expected_calibration_error(probabilities, pairs.labels, weights)
        curves[label] = reliability_curve(probabilities, pairs.labels, weights)
        if label != "validation":
            continue
        errors["validation (as drawn, unbalanced)"] = expected_calibration_error(probabilities, pairs.labels)
        for source, name in enumerate(train_files):
            part = pairs.sources == source
            if part.any():
                errors[f"validation: {name}"] = expected_calibration_error(
                    probabilities[part], pairs.labels[part], class_balanced_weights(pairs.labels[part]))
    save_reliability_diagram(curves, errors, folder / DIAGRAM_FILE)
    return {"expected_calibration_error": errors, "reliability": curves, "diagram": DIAGRAM_FILE}


def _describe(report: ParityReport) -> str:
    return (f"{report.pairs} held-out pairs: encodings {report.max_abs_encoding_diff:.2e}, "
            f"scores {report.max_abs_score_diff:.2e}, pair.onnx {report.max_abs_pair_diff:.2e}")


def _step(number: int, message: str) -> None:
    log.info("[%d/%d] %s", number, STEPS, message)
