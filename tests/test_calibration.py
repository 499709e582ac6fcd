"""export/calibration.py: Platt scaling recovers a known miscalibration; the calibration error measures it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy", reason="calibration at export needs the [train] extra")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from export.calibration import (  # noqa: E402
    class_balanced_weights,
    domain_balanced_weights,
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


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1)), min_size=1, max_size=60))
def test_domain_balanced_weights_give_every_domain_and_each_class_within_it_equal_mass(
    rows: list[tuple[int, int]]
) -> None:
    sources = np.array([source for source, _ in rows])
    labels = np.array([label for _, label in rows], np.float32)
    weights = domain_balanced_weights(labels, sources)
    assert weights.mean() == pytest.approx(1.0) and (weights > 0).all()
    totals = [weights[sources == source].sum() for source in np.unique(sources)]
    assert np.allclose(totals, totals[0])
    for source in np.unique(sources):
        part = sources == source
        if len(np.unique(labels[part])) == 2:
            assert weights[part & (labels == 1)].sum() == pytest.approx(weights[part & (labels == 0)].sum())


def test_a_domain_balanced_fit_calibrates_a_small_domain_better_than_a_pooled_one() -> None:
    """A large domain whose scores are over-confident beside a small one whose scores are already calibrated:
    the pooled fit corrects for the large one and spoils the small one; the balanced fit serves both."""
    large_scores, large_labels = overconfident_scores(20_000)
    true_logits = RNG.normal(scale=1.5, size=1_000)
    small_labels = (RNG.random(1_000) < 1 / (1 + np.exp(-true_logits))).astype(np.float32)
    small_scores = (1 / (1 + np.exp(-true_logits))).astype(np.float32)
    scores, labels = np.concatenate([large_scores, small_scores]), np.concatenate([large_labels, small_labels])
    sources = np.repeat([0, 1], [20_000, 1_000])
    pooled = fit_platt(scores, labels, class_balanced_weights(labels))
    balanced = fit_platt(scores, labels, domain_balanced_weights(labels, sources))

    def small_error(calibration: Calibration) -> float:
        return expected_calibration_error(calibration(small_scores).astype(np.float64), small_labels)

    assert small_error(balanced) < small_error(pooled) - 0.02


def test_calibration_error_of_a_perfect_and_of_a_constant_forecast() -> None:
    labels = np.array([0, 1] * 500, np.float32)
    assert expected_calibration_error(np.full(1000, 0.5), labels) == pytest.approx(0.0)
    assert expected_calibration_error(np.full(1000, 0.9), labels) == pytest.approx(0.4)
    curve = reliability_curve(np.full(1000, 0.9), labels)
    assert curve == [{"mean_probability": pytest.approx(0.9), "share_positive": 0.5, "share_of_pairs": 1.0}]


def test_identity_calibration_leaves_scores_unchanged() -> None:
    scores = np.linspace(0.01, 0.99, 99).astype(np.float32)
    np.testing.assert_allclose(Calibration()(scores), scores, atol=1e-6)
