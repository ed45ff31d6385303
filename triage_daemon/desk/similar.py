"""How alike two requests are: cosine of their strongest word features.

A ticket keeps a small signature: the ``SIZE`` heaviest word (and word-pair) tf-idf
features of its triage text, from the model's own featurizer, so Greek, Greeklish and
unaccented spellings of one problem meet. Comparing two signatures costs a few dozen
multiplications, which lets a new ticket be compared with every open group and the
recent answered tickets without recomputing any text.
"""

from __future__ import annotations

import math

import numpy as np

SIZE = 24


def signature(indices: np.ndarray, values: np.ndarray, word_features: int) -> dict[int, float]:
    """The top word features of a featurizer vector, L2-normalised: {feature: weight}.

    ``word_features`` is the size of the word block (char n-grams come after it and are
    left out: they make every two Greek texts look alike).
    """
    words = indices < word_features
    idx, val = indices[words], values[words]
    if len(idx) > SIZE:
        top = np.argpartition(-val, SIZE)[:SIZE]
        idx, val = idx[top], val[top]
    norm = math.sqrt(float(val @ val)) if len(val) else 0.0
    if not norm:
        return {}
    return {int(i): float(v) / norm for i, v in zip(idx, val, strict=True)}


def similarity(a: dict[int, float], b: dict[int, float]) -> float:
    """Cosine similarity of two signatures, from 0 (nothing shared) to 1."""
    if len(b) < len(a):
        a, b = b, a
    return sum(weight * b[key] for key, weight in a.items() if key in b)


def encode(sig: dict[int, float]) -> str:
    """A signature as compact text for the database: 'index:weight' pairs."""
    return " ".join(f"{key}:{weight:.4f}" for key, weight in sorted(sig.items()))


def decode(text: str | None) -> dict[int, float]:
    if not text:
        return {}
    pairs = (item.split(":", 1) for item in text.split())
    return {int(key): float(weight) for key, weight in pairs}
