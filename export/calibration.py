"""Calibration at export: Platt scaling fitted on the validation split, its expected calibration error, and the
reliability diagram of the model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from siamese_runtime.heads import EPSILON, Calibration

BINS = 10
DIAGRAM_FILE = "reliability.png"


def class_balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Weights giving both classes the same total weight (mean 1): what a 50/50 prior sees.

    Training balances each file's classes the same way, so the scores carry no file's prior; the calibrated
    score is the probability of "same meaning" for a pair drawn with even odds, as in the official tests.
    """
    weights = np.zeros(len(labels))
    for label in (0, 1):
        members = labels == label
        if members.any():
            weights[members] = len(labels) / (2 * members.sum())
    return weights


def domain_balanced_weights(labels: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Weights giving every source file (domain) the same total weight, and within each both classes the same
    (mean 1): a fit under them serves a small domain (LCQMC-like questions among banking ones) as much as a
    large one, instead of calibrating the mix the split happened to draw."""
    weights = np.zeros(len(labels))
    present = np.unique(sources)
    for source in present:
        members = sources == source
        balanced = class_balanced_weights(labels[members])
        weights[members] = balanced * len(labels) / (len(present) * balanced.sum())
    return weights


def fit_platt(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> Calibration:
    """The slope and intercept minimizing the weighted log loss of sigmoid(slope * logit(score) + intercept)."""
    clipped = np.clip(scores.astype(np.float64), EPSILON, 1 - EPSILON)
    logits = np.log(clipped) - np.log1p(-clipped)
    targets = labels.astype(np.float64)

    def loss_and_gradient(parameters: np.ndarray) -> tuple[float, np.ndarray]:
        z = parameters[0] * logits + parameters[1]
        # log(1 + e^z) - t z, stable for large |z|
        loss = np.sum(weights * (np.logaddexp(0, z) - targets * z))
        residual = weights * (1 / (1 + np.exp(-z)) - targets)
        return float(loss), np.array([np.sum(residual * logits), np.sum(residual)])

    result = minimize(loss_and_gradient, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B",
                      bounds=[(1e-3, None), (None, None)])
    if not result.success:
        raise ValueError(f"Platt scaling did not converge: {result.message}")
    return Calibration(slope=float(result.x[0]), intercept=float(result.x[1]))


def reliability_curve(probabilities: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None,
                      bins: int = BINS) -> list[dict[str, float]]:
    """Per non-empty equal-width probability bin: mean probability, share positive and share of pairs."""
    weights = np.ones(len(labels)) if weights is None else weights
    which = np.minimum((probabilities * bins).astype(int), bins - 1)
    curve = []
    for b in range(bins):
        member = which == b
        if weights[member].sum() > 0:
            curve.append({
                "mean_probability": float(np.average(probabilities[member], weights=weights[member])),
                "share_positive": float(np.average(labels[member], weights=weights[member])),
                "share_of_pairs": float(weights[member].sum() / weights.sum()),
            })
    return curve


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None,
                               bins: int = BINS) -> float:
    """Sum over the reliability curve's bins of (share of pairs) x |mean probability - share positive|."""
    curve = reliability_curve(probabilities, labels, weights, bins)
    return float(sum(b["share_of_pairs"] * abs(b["mean_probability"] - b["share_positive"]) for b in curve))


def save_reliability_diagram(curves: dict[str, list[dict[str, float]]], errors: dict[str, float], path: Path) -> None:
    """One line per dataset, observed share positive against mean predicted probability, the diagonal for
    reference, the expected calibration error in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.5, 5.5), dpi=110)
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for name, curve in curves.items():
        axes.plot([p["mean_probability"] for p in curve], [p["share_positive"] for p in curve], marker="o",
                  label=f"{name} (ECE {errors[name]:.3f})")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability (mean per bin)",
             ylabel="share of pairs with the same meaning", title=f"Reliability, {BINS} equal-width bins")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
