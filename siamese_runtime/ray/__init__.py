"""Scale-out scoring on Ray Data (the `[ray]` extra): pair files in, an actor pool of Scorers, Parquet out.

Importing this package needs no Ray; its functions import Ray and name the extra when it is missing.
"""

from .cluster import connected, require_ray
from .files import LINE, PATH, PairFiles, find_pair_files, read_pairs, write_parquet
from .scoring import (  # ScorerOptions: an alias, 0.1's name
    PairColumns,
    RejectCollector,
    ScorerOptions,
    rejected_rows,
    score_dataset,
)

__all__ = [
    "LINE",
    "PATH",
    "PairColumns",
    "PairFiles",
    "RejectCollector",
    "ScorerOptions",
    "connected",
    "find_pair_files",
    "read_pairs",
    "rejected_rows",
    "require_ray",
    "score_dataset",
    "write_parquet",
]
