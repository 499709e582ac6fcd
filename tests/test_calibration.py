"""export/calibration.py: Platt scaling recovers a known miscalibration; the calibration error measures it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy", reason="calibration at export needs the [train] extra")

from export.calibration import (  # noqa: E402
    class_balanced_weights,
    expected_calibration_error,
    fit_platt,
    reliability_curve,
)
from siamese_runtime.heads import Calibration  # noqa: E402

RNG = np.random.default_rng(11)


def overconfident_scores(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn with true probability p; scores that report p pushed away from 0.5 (logit doubled, shifted)."""
    true_logits = RNG.normal(scale=1.5, size=count)
    labels = (RNG.random(count) < 1 / (1 + np.exp(-true_logits))).astype(np.float32)
    scores = 1 / (1 + np.exp(-(2 * true_logits + 0.6)))
    return scores.astype(np.float32), labels


def test_platt_scaling_recovers_the_known_distortion_and_removes_the_error() -> None:
    scores, labels = overconfident_scores(40_000)
    calibration = fit_platt(scores, labels, np.ones(len(labels)))
    assert calibration.slope == pytest.approx(0.5, abs=0.03)
    assert calibration.intercept == pytest.approx(-0.3, abs=0.05)
    before = expected_calibration_error(scores.astype(np.float64), labels)
    after = expected_calibration_error(calibration(scores).astype(np.float64), labels)
    assert before > 0.05 and after < 0.015


def test_class_balanced_weights_give_both_classes_equal_mass() -> None:
    labels = np.array([1, 0, 0, 0, 0, 0, 0, 1, 0, 0], np.float32)
    weights = class_balanced_weights(labels)
    assert weights[labels == 1].sum() == pytest.approx(weights[labels == 0].sum())
    assert weights.mean() == pytest.approx(1.0)


def test_calibration_error_of_a_perfect_and_of_a_constant_forecast() -> None:
    labels = np.array([0, 1] * 500, np.float32)
    assert expected_calibration_error(np.full(1000, 0.5), labels) == pytest.approx(0.0)
    assert expected_calibration_error(np.full(1000, 0.9), labels) == pytest.approx(0.4)
    curve = reliability_curve(np.full(1000, 0.9), labels)
    assert curve == [{"mean_probability": pytest.approx(0.9), "share_positive": 0.5, "share_of_pairs": 1.0}]


def test_identity_calibration_leaves_scores_unchanged() -> None:
    scores = np.linspace(0.01, 0.99, 99).astype(np.float32)
    np.testing.assert_allclose(Calibration()(scores), scores, atol=1e-6)
