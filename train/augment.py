"""Training pairs implied by the labels through a shared sentence (one hop of transitivity)."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

import numpy as np

from siamese_runtime.tokenizer import normalize

from .data import Pairs


def implied_pairs(pairs: Pairs) -> Pairs:
    """Pairs the labels imply through a shared sentence b: a ~ b and b ~ c give a ~ c (label 1); a ~ b and
    b !~ c give a !~ c (label 0).

    One hop only: longer chains of paraphrases drift. Sentences are matched after normalization; a pair
    already labeled (in either order), or implied both ways, is left out. Each new pair keeps the source
    file of its a ~ b pair, so per-file class balancing still applies.
    """
    similar: dict[str, dict[str, int]] = defaultdict(dict)
    dissimilar: dict[str, set[str]] = defaultdict(set)
    text: dict[str, str] = {}
    labeled: set[frozenset[str]] = set()
    for left, right, label, source in zip(pairs.left, pairs.right, pairs.labels, pairs.sources):
        a, b = normalize(left), normalize(right)
        text.setdefault(a, left)
        text.setdefault(b, right)
        labeled.add(frozenset((a, b)))
        if label == 1:
            similar[a].setdefault(b, int(source))
            similar[b].setdefault(a, int(source))
        else:
            dissimilar[a].add(b)
            dissimilar[b].add(a)
    implied: dict[frozenset[str], tuple[str, str, int, int]] = {}
    conflicting: set[frozenset[str]] = set()

    def imply(a: str, c: str, label: int, source: int) -> None:
        key = frozenset((a, c))
        if a == c or key in labeled or key in conflicting:
            return
        if key in implied and implied[key][2] != label:
            del implied[key]
            conflicting.add(key)
        else:
            implied.setdefault(key, (a, c, label, source))

    for hub in sorted(similar):
        neighbours = similar[hub]
        ordered = sorted(neighbours)
        unlike = sorted(dissimilar.get(hub, ()))
        for a, c in combinations(ordered, 2):
            imply(a, c, 1, neighbours[a])
        for a in ordered:
            for c in unlike:
                imply(a, c, 0, neighbours[a])
    rows = list(implied.values())
    return Pairs(
        [text[a] for a, _, _, _ in rows],
        [text[c] for _, c, _, _ in rows],
        np.array([label for _, _, label, _ in rows], dtype=np.float32),
        np.array([source for _, _, _, source in rows], dtype=np.int64),
    )

