"""Packaging: the CPU, GPU and OpenVINO distributions ship the same package with one onnxruntime build each."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

from .conftest import REPO


def project(path: str) -> dict:
    return tomllib.loads((REPO / path).read_text())["project"]


# The other distributions built from the same source: their folder and the onnxruntime build they depend on.
DISTRIBUTIONS = {"gpu": "onnxruntime-gpu", "openvino": "onnxruntime-openvino"}


@pytest.mark.parametrize("folder", DISTRIBUTIONS)
def test_other_distributions_swap_only_the_onnxruntime_build(folder: str) -> None:
    cpu, other = project("pyproject.toml"), project(f"{folder}/pyproject.toml")
    assert [d.replace("onnxruntime", DISTRIBUTIONS[folder], 1) if d.startswith("onnxruntime") else d
            for d in cpu["dependencies"]] == other["dependencies"]
    assert cpu["scripts"] == other["scripts"]
    assert other["name"] == f"siamese-runtime-{folder}"


def test_runtime_dependencies_exclude_training_libraries() -> None:
    heavy = ("tensorflow", "keras", "tf2onnx", "gensim", "pandas", "onnx>", "onnx=")
    assert not [d for d in project("pyproject.toml")["dependencies"] if d.startswith(heavy)]


@pytest.mark.parametrize("folder", DISTRIBUTIONS)
def test_other_distributions_offer_the_runtime_extras(folder: str) -> None:
    cpu, other = project("pyproject.toml"), project(f"{folder}/pyproject.toml")
    own = {"cuda"} if folder == "gpu" else set()  # the GPU build's CUDA and cuDNN libraries from the index
    assert set(other["optional-dependencies"]) == {"parquet", "ray", *own}
    for extra in ("parquet", "ray"):
        assert cpu["optional-dependencies"][extra] == other["optional-dependencies"][extra], extra


def test_the_openvino_wheel_ships_the_cpu_wheels_model_files() -> None:
    """OpenVINO runs on the CPU at fp32: the same force-included model files as the CPU wheel, at the same places."""
    def shipped(path: str, prefix: str = "") -> dict[str, str]:
        files = tomllib.loads((REPO / path).read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
        return {source.removeprefix(prefix): target for source, target in files.items() if "models/" in source}

    assert shipped("openvino/pyproject.toml", "../") == shipped("pyproject.toml")
    source = tomllib.loads((REPO / "openvino/pyproject.toml").read_text())["tool"]["hatch"]
    assert source["build"]["targets"]["wheel"]["force-include"]["../siamese_runtime"] == "siamese_runtime"
    assert source["version"]["path"] == "../siamese_runtime/__init__.py"


RUNTIME_MODEL_FILES = {"manifest.json", "vocab.json", "encoder.onnx", "encoder.int8.onnx", "head.npz", "MODEL_CARD.md",
                       "reliability.png"}


@pytest.fixture(scope="module")
def cpu_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(REPO), "-w", str(out)],
                   check=True, capture_output=True, timeout=600)
    return next(out.glob("siamese_runtime-*.whl"))


def test_the_wheel_carries_what_the_runtime_loads_in_at_most_8_mb(cpu_wheel: Path) -> None:
    assert "siamese_runtime/py.typed" in zipfile.ZipFile(cpu_wheel).namelist()  # its type hints are for users too
    models = {name.rsplit("/", 1)[1] for name in zipfile.ZipFile(cpu_wheel).namelist() if "/models/default/" in name}
    assert models == RUNTIME_MODEL_FILES
    assert cpu_wheel.stat().st_size <= 8 * 1024 * 1024, f"{cpu_wheel.stat().st_size / 2**20:.1f} MiB"


def test_the_unpacked_wheel_scores_and_names_what_it_does_not_ship(cpu_wheel: Path, tmp_path: Path) -> None:
    zipfile.ZipFile(cpu_wheel).extractall(tmp_path)
    script = (
        "from siamese_runtime import ModelLoadError, Scorer\n"
        "print(Scorer(providers='cpu').score([('花呗怎么还款', '花呗如何还钱')])[0])\n"
        "try:\n    Scorer(providers='cpu', precision='fp16')\nexcept ModelLoadError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    score, message = result.stdout.splitlines()
    assert 0 <= float(score) <= 1 and str(tmp_path) in message
    assert "encoder.fp16.onnx: not shipped with the installed package" in message


def test_the_test_extra_alone_collects_every_test(tmp_path: Path) -> None:
    """With only `[test]` installed (the training, export and Ray libraries made unimportable here), every test
    module still imports: the ones that need an extra skip, saying which, instead of breaking collection."""
    env = without_modules(tmp_path, ["tensorflow", "keras", "tf2onnx", "onnx", "onnxconverter_common", "gensim",
                                     "pandas", "scipy", "ray"])
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                             str(REPO / "tests")], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0 and "ERROR" not in result.stdout, result.stdout[-3000:]


def without_modules(folder: Path, blocked: list[str]) -> dict[str, str]:
    """An environment in which the top-level modules `blocked` cannot be imported, as where their extra is not
    installed (a sitecustomize in `folder`), and the repository is importable."""
    (folder / "sitecustomize.py").write_text(
        "import sys\n"
        "class Blocked:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {blocked!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (blocked: its extra is not installed)')\n"
        "sys.meta_path.insert(0, Blocked())\n", encoding="utf-8")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}


def test_a_missing_extra_is_one_line_naming_it_and_work_that_needs_none_goes_on(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"s1": ["花呗"], "s2": ["借呗"]}), tmp_path / "in.parquet")
    (tmp_path / "in.tsv").write_text("花呗\t借呗\n", encoding="utf-8")
    env = without_modules(tmp_path, ["pyarrow", "matplotlib"])

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "siamese_runtime", *args], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=300)

    for args in (["in.parquet"], ["in.tsv", "-o", "out.parquet"]):
        result = command("score", *args)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        [line] = result.stderr.splitlines()
        assert "pip install 'siamese-runtime[parquet]'" in line
    result = command("bench", "--quick", "--batch-sizes", "1", "--precisions", "fp32", "--out", "bench")
    assert result.returncode == 0, result.stderr
    assert "pip install 'siamese-runtime[bench]'; plots skipped, results written" in result.stderr
    assert sorted(path.suffix for path in (tmp_path / "bench").iterdir()) == [".json", ".md"]
    assert not (tmp_path / "out.parquet").exists()
