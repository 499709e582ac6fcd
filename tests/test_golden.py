"""Golden scores of the shipped default model: a silent change in tokenization or export fails here.

After a deliberate change of models/default, regenerate with `python -m tests.test_golden`.
"""

from __future__ import annotations

import numpy as np

from siamese_runtime import ModelFolder, Scorer

from .conftest import REPO

GOLDEN = REPO / "tests" / "golden" / "default_scores.tsv"
SOURCES = ("examples/pairs.tsv",)


def read_golden() -> tuple[list[str], list[str], np.ndarray, str]:
    lines = GOLDEN.read_text(encoding="utf-8").splitlines()
    encoder_sha = lines[0].removeprefix("# encoder sha256 ")
    rows = [line.split("\t") for line in lines[1:]]
    return [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows]), encoder_sha


def test_default_model_reproduces_its_golden_scores() -> None:
    left, right, expected, encoder_sha = read_golden()
    model = ModelFolder.load()
    assert model.manifest["files"]["encoder.onnx"]["sha256"] == encoder_sha, (
        "models/default changed: regenerate the golden file with python -m tests.test_golden"
    )
    np.testing.assert_allclose(Scorer(model, providers="cpu", precision="fp32").score(left, right), expected, atol=1e-5)


def regenerate() -> None:
    pairs = [
        line.split("\t")[:2] for path in SOURCES for line in (REPO / path).read_text(encoding="utf-8").splitlines()
    ]
    pairs += [["ＡＰＰ怎么用花呗", "app怎么用花呗"], ["😀", "花呗"], ["借" * 100, "借" * 80]]
    model = ModelFolder.load()
    scores = Scorer(model, providers="cpu", precision="fp32").score([p[0] for p in pairs], [p[1] for p in pairs])
    lines = [f"# encoder sha256 {model.manifest['files']['encoder.onnx']['sha256']}"]
    lines += [f"{a}\t{b}\t{score:.9g}" for (a, b), score in zip(pairs, scores)]
    GOLDEN.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    regenerate()
