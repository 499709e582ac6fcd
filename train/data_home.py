"""Where the public data sets are: one setting, `SIAMESE_DATA`, read by train/, benchmarks/ and the tests.

`SIAMESE_DATA` names a folder laid out as `python -m train.fetch` writes it (`atec/train.tsv`, `ccks/train.tsv`,
`bq/{dev,test}.tsv`, `lcqmc/{dev,test}.tsv`, `MANIFEST.json`). Unset, it is `../shared/data` beside the
repository root; a relative value is taken from the current directory. Nothing here imports the runtime or
any third-party package, so every tool can ask where the data is without paying for it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENV = "SIAMESE_DATA"
REPO = Path(__file__).resolve().parent.parent
DEFAULT = "../shared/data"  # relative to the repository root
MANIFEST_NAME = "MANIFEST.json"
# The manifest of the data folder (pairs, positives, sha256 per file), committed: what `train.fetch` verifies.
COMMITTED_MANIFEST = Path(__file__).resolve().parent / "data_manifest.json"

TRAIN_FILES = ("atec/train.tsv", "ccks/train.tsv", "bq/dev.tsv", "lcqmc/dev.tsv")
TEST_FILES = ("bq/test.tsv", "lcqmc/test.tsv")


def data_home() -> Path:
    """The data folder: $SIAMESE_DATA, else ../shared/data beside the repository (it may not exist)."""
    value = os.environ.get(ENV, "").strip()
    return Path(value).expanduser().resolve() if value else (REPO / DEFAULT).resolve()


def data_file(name: str) -> Path:
    """A file of the data folder by its name in the manifest, e.g. 'bq/test.tsv'."""
    return data_home() / name


def explicitly_set() -> bool:
    return bool(os.environ.get(ENV, "").strip())


def describe() -> str:
    """Where the data is looked for, and why there, for messages."""
    home = data_home()
    return f"{ENV}={home}" if explicitly_set() else f"{ENV} is unset, so {DEFAULT} beside the repository ({home})"


def missing(names: tuple[str, ...] | list[str] = (*TRAIN_FILES, *TEST_FILES)) -> list[str]:
    """The named files the data folder lacks."""
    home = data_home()
    return [name for name in names if not (home / name).is_file()]


def not_found_message(names: tuple[str, ...] | list[str]) -> str:
    """Why the data cannot be used, and the two ways to fix it."""
    return (f"the data files {', '.join(names)} are not in the data folder: {describe()}. Set {ENV} to the folder "
            f"that holds them, or fetch them with `python -m train.fetch DEST` (see docs/data.md)")


def committed_manifest() -> dict[str, Any]:
    """{name: {"pairs", "positive", "sha256"}} for every file of the data folder, as committed."""
    return json.loads(COMMITTED_MANIFEST.read_text(encoding="utf-8"))
