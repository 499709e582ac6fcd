"""The shipped default model against the training issue's bar, on the official test files, by the runtime.

The tests are scored here, never used to choose anything: the threshold comes from the model's manifest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siamese_runtime import Scorer
from siamese_runtime.io.pair_files import read_pair_rows

BAR = {"bq/test.tsv": 0.70, "lcqmc/test.tsv": 0.72}


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(providers="cpu")


@pytest.mark.parametrize("name", sorted(BAR))
def test_default_model_clears_the_accuracy_bar_at_its_stored_threshold(scorer: Scorer, data: Path, name: str) -> None:
    rows = list(read_pair_rows(str(data / name)))
    labels = np.array([row.columns[2] == "1" for row in rows])
    predicted = scorer.predict([row.columns[0] for row in rows], [row.columns[1] for row in rows])
    accuracy = float(np.mean(predicted == labels))
    assert accuracy >= BAR[name], f"{name}: accuracy {accuracy:.4f} at threshold {scorer.threshold:.4f}"
