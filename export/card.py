"""The model card: a human-readable page written into each model folder from its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CARD_FILE = "MODEL_CARD.md"


def summary_table(folder: Path, manifest: dict[str, Any]) -> str:
    """Markdown: each file with its role and size, parity, then accuracy per variant and dataset."""
    metrics = manifest["metrics"]
    parity = metrics["parity"]
    lines = ["| file | role | precision | MB |", "| --- | --- | --- | --- |"]
    for name, entry in manifest["files"].items():
        megabytes = (folder / name).stat().st_size / 1e6
        lines.append(f"| {name} | {entry['role']} | {entry['precision']} | {megabytes:.2f} |")
    datasets = list(metrics["accuracy"]["fp32"])
    lines += [
        "",
        f"Parity with Keras on {parity['pairs']} held-out pairs (max abs difference): encodings "
        f"{parity['max_abs_encoding_diff']:.1e}, scores {parity['max_abs_score_diff']:.1e}, "
        f"pair.onnx {parity['max_abs_pair_diff']:.1e}.",
        "",
        f"Accuracy at the stored threshold {manifest['threshold']:.4f}, computed by the runtime:",
        "",
        "| variant | " + " | ".join(datasets) + " | within its bound | largest score change with batching |",
        "|" + " --- |" * (len(datasets) + 3),
    ]
    for precision, results in metrics["accuracy"].items():
        bound = metrics["variant_bounds"].get(precision, {})
        verdict = (f"{bound['within_bound']} (drop {bound['max_drop_points']:.2f} pt)" if "within_bound" in bound
                   else "reference")
        change = bound.get("max_score_change_by_batching")
        cells = " | ".join(f"{results[d]['at_threshold']['accuracy']:.4f}" for d in datasets)
        lines.append(f"| {precision} | {cells} | {verdict} | {'not measured' if change is None else f'{change:.2g}'} |")
    return "\n".join(lines)


def calibration_section(manifest: dict[str, Any]) -> str:
    """Markdown: how scores become probabilities, and how well they are, with the reliability diagram."""
    calibration, report = manifest.get("calibration"), manifest["metrics"].get("calibration")
    if calibration is None or report is None:
        return "Scores are the head's raw similarity, not calibrated probabilities."
    errors = " | ".join(f"{value:.4f}" for value in report["expected_calibration_error"].values())
    return f"""## Calibration

The score is a probability that the two sentences mean the same, for pairs drawn with even odds: the head's
score s goes through Platt scaling sigmoid({calibration['slope']:.4f} logit(s) {calibration['intercept']:+.4f}),
fitted on the {calibration.get('fitted_on', 'validation split')}. For a population where a share p of pairs
match, add log(p / (1 - p)) to the logit of the score. Expected calibration error (10 equal-width bins; the
validation split weighted to balanced classes, as calibrated, and as drawn):

| {' | '.join(report['expected_calibration_error'])} |
|{' --- |' * len(report['expected_calibration_error'])}
| {errors} |

![reliability diagram]({report['diagram']})"""


POOLINGS = {"last": "its last BiLSTM's final states", "max-mean": "max and mean over its last BiLSTM's states",
            "max-mean-attention": "max, mean and an attention-weighted mean (within the sentence) over its last "
                                  "BiLSTM's states"}


def write_model_card(folder: Path, manifest: dict[str, Any]) -> None:
    tokenizer = manifest["tokenizer"]
    pooling = POOLINGS[manifest.get("training_config", {}).get("pooling", "last")]
    text = f"""# Model card: {manifest['name']}

A Siamese sentence-pair scorer for Chinese questions: characters -> char vectors -> shared BiLSTM encoder
({pooling}) -> `{manifest['head']['formula']}` ({manifest['head']['name']} head). Exported {manifest['created']} from
the training run `{manifest.get('source_run', '?')}`.

- Tokenizer: characters, normalization `{tokenizer['normalization']}`, {tokenizer['vocab_size']} tokens
  (0 pads, 1 is out-of-vocabulary), at most {tokenizer['max_length']} characters per sentence.
- Threshold {manifest['threshold']:.4f}: chosen on the training files' validation split only; the official
  test files are scored for this table and never used to train, tune or choose anything.

{summary_table(folder, manifest)}

{calibration_section(manifest)}
"""
    (folder / CARD_FILE).write_text(text, encoding="utf-8")
