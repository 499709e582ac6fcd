"""Checks that .ci/run makes on what the README's install produced (stdlib only)."""

from __future__ import annotations

import sys
import zipfile


def scores(path: str, expected_rows: str) -> None:
    """The scored file has one score per input row, all in [0, 1], and they vary."""
    with open(path, encoding="utf-8") as lines:
        values = [float(line.rsplit("\t", 1)[1]) for line in lines]
    assert len(values) == int(expected_rows), f"expected {expected_rows} scores, got {len(values)}"
    assert all(0.0 <= v <= 1.0 for v in values), "a score outside [0, 1]"
    assert len(set(values)) > len(values) // 10, f"scores barely vary: {len(set(values))} distinct values"
    print(f"ci: {len(values)} scores in [0, 1], {len(set(values))} distinct")


def gpu_wheel(path: str) -> None:
    """The GPU wheel ships the package and the default model and depends on onnxruntime-gpu only."""
    wheel = zipfile.ZipFile(path)
    names = set(wheel.namelist())
    for required in ("siamese_runtime/scorer.py", "siamese_runtime/models/default/manifest.json"):
        assert required in names, f"{required} missing from {path}"
    metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = [line.split()[1] for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any(r.startswith("onnxruntime-gpu") for r in requires), requires
    assert not any(r.startswith("onnxruntime") and not r.startswith("onnxruntime-gpu") for r in requires), requires
    print(f"ci: {path.rsplit('/', 1)[-1]} ships the package and model, requires {', '.join(requires)}")


def same_scores(path: str, other: str, tolerance: str) -> None:
    """Two scored files of the same pairs (e.g. by two providers) agree within `tolerance`."""
    def read(name: str) -> list[float]:
        with open(name, encoding="utf-8") as lines:
            return [float(line.rsplit("\t", 1)[1]) for line in lines]

    first, second = read(path), read(other)
    assert len(first) == len(second), f"{len(first)} scores against {len(second)}"
    worst = max(abs(a - b) for a, b in zip(first, second))
    assert worst <= float(tolerance), f"scores differ by up to {worst:.2e} (more than {tolerance})"
    print(f"ci: {len(first)} scores agree within {worst:.1e}")


if __name__ == "__main__":
    {"scores": scores, "gpu-wheel": gpu_wheel, "same-scores": same_scores}[sys.argv[1]](*sys.argv[2:])
