"""Classification metrics of similarity scores against 0/1 labels at a threshold."""

from __future__ import annotations

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
