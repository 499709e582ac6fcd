"""File formats: which one a path means, and the optional pyarrow import for Parquet."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from ..errors import MissingExtraError, UsageError

FORMATS = ("tsv", "csv", "jsonl", "parquet")
_EXTENSIONS = {
    ".tsv": "tsv", ".txt": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
}


def format_of(path: str, explicit: str | None = None) -> str:
    """The explicit format, else the one the extension names; stdin/stdout and unknown extensions are TSV."""
    if explicit is not None:
        if explicit not in FORMATS:
            raise UsageError(f"unknown format {explicit!r}; use one of {', '.join(FORMATS)}")
        return explicit
    return _EXTENSIONS.get(Path(path).suffix.lower(), "tsv") if path != "-" else "tsv"


def pyarrow_parquet() -> ModuleType:
    """pyarrow.parquet, or an error naming the extra that installs it."""
    try:
        import pyarrow.parquet
    except ImportError:
        raise MissingExtraError(
            "Parquet needs pyarrow, which is not installed: pip install 'siamese-runtime[parquet]'"
        ) from None
    return pyarrow.parquet
