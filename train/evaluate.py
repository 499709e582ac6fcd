"""Classification metrics of similarity scores against 0/1 labels; `python -m train.evaluate` runs them."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import numpy as np


def classification_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of `scores >= threshold`."""
    predicted = scores >= threshold
    actual = labels.astype(bool)
    true_positive = float(np.sum(predicted & actual))
    precision = true_positive / max(float(predicted.sum()), 1.0)
    recall = true_positive / max(float(actual.sum()), 1.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": float(threshold),
        "accuracy": float(np.mean(predicted == actual)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the chance a positive outscores a negative (ties count half)."""
    actual = labels.astype(bool)
    positives, negatives = int(actual.sum()), int((~actual).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2  # 1-based mean rank of each distinct score
    rank_sum = average_rank[inverse][actual].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def evaluate(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """Metrics at 0.5 and at the stored threshold, plus ROC-AUC."""
    return {
        "pairs": int(len(labels)),
        "roc_auc": roc_auc(scores, labels),
        "at_0.5": classification_metrics(scores, labels, 0.5),
        "at_threshold": classification_metrics(scores, labels, threshold),
    }


def main(argv: Sequence[str] | None = None) -> None:
    from siamese_runtime import Scorer

    from .data import load_pairs

    parser = argparse.ArgumentParser(
        prog="python -m train.evaluate",
        description="Evaluate an exported model folder on labeled pair files, with the runtime.",
    )
    parser.add_argument("files", nargs="+", help="headerless TSV sentence1<TAB>sentence2<TAB>label")
    parser.add_argument("--model", help="model folder (default: the embedded default model)")
    args = parser.parse_args(argv)
    scorer = Scorer(args.model, providers="cpu")
    report = {}
    for path in args.files:
        pairs = load_pairs([path])
        report[path] = evaluate(scorer.score(pairs.left, pairs.right), pairs.labels, scorer.threshold)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
