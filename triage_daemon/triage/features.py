"""Features of prepared text: tf-idf of word n-grams and of char n-grams inside words.

The input is textprep's canonical text (space-separated tokens); the output is
what scikit-learn's TfidfVectorizer word and char_wb analyzers would give, joined
as in a FeatureUnion, computed fast enough for one mail at a time.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from itertools import islice
from operator import is_not

import numpy as np
from scipy import sparse

# Per-token cache bound (entries), as textprep's.
_CACHE_LIMIT = 200_000
_is_index = partial(is_not, None)


# A plain class, not a scikit-learn estimator: importing sklearn.base costs the daemon
# about 1 s and 70 MB at start-up, and inference here needs only numpy and scipy.
class Featurizer:
    """TF-IDF features of canonical text: word n-grams and char n-grams inside words.

    The same idea as scikit-learn's TfidfVectorizer(analyzer="word") joined with
    TfidfVectorizer(analyzer="char_wb") (sublinear tf, smooth idf, each block
    L2-normalised), written for speed on one mail at a time: the unigram and char
    n-gram features of a word are looked up once and cached. Upper-case entity
    tokens ("WEBEX", "URL") get word features only. ``char_weight`` scales the
    char block after normalisation.
    """

    def __init__(
        self,
        words: tuple[int, int] | None = (1, 2),
        chars: tuple[int, int] | None = (2, 5),
        min_df: int = 2,
        char_weight: float = 1.0,
    ):
        self.words = words
        self.chars = chars
        self.min_df = min_df
        self.char_weight = char_weight

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_token_cache", None)
        # Written by scikit-learn's BaseEstimator into models made before this change.
        state.pop("_sklearn_version", None)
        return state

    def _word_grams(self, tokens: list[str]) -> list[str]:
        low, high = self.words or (1, 0)
        grams = list(tokens) if low <= 1 <= high else []
        if low <= 2 <= high:
            grams += [a + " " + b for a, b in zip(tokens, tokens[1:], strict=False)]
        for n in range(max(low, 3), high + 1):
            grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        return grams

    def _char_grams(self, token: str) -> list[str]:
        if not self.chars or (token.isupper() and token.isascii()):
            return []
        padded, (low, high) = f" {token} ", self.chars
        grams = []
        for n in range(low, min(high, len(padded)) + 1):
            grams += [padded[i : i + n] for i in range(len(padded) - n + 1)]
        return grams

    def fit(self, docs: list[str], y: object = None) -> Featurizer:
        """Learn the vocabulary (features in at least ``min_df`` documents) and the idf."""
        word_df: Counter[str] = Counter()
        char_df: Counter[str] = Counter()
        for doc in docs:
            tokens = doc.split()
            word_df.update(set(self._word_grams(tokens)) if self.words else ())
            char_df.update({g for token in set(tokens) for g in self._char_grams(token)})
        words = sorted(f for f, n in word_df.items() if n >= self.min_df)
        chars = sorted(f for f, n in char_df.items() if n >= self.min_df)
        self.word_index_ = {f: i for i, f in enumerate(words)}
        self.char_index_ = {f: i + len(words) for i, f in enumerate(chars)}
        df = np.array([word_df[f] for f in words] + [char_df[f] for f in chars], dtype=np.float64)
        self.idf_ = np.log((1 + len(docs)) / (1 + df)) + 1
        self.feature_names_ = [f"w:{f}" for f in words] + [f"c:{f}" for f in chars]
        self._token_cache = {}
        return self

    @property
    def n_features(self) -> int:
        return len(self.idf_)

    def _token_indices(self, tokens: list[str]) -> list[np.ndarray]:
        """Per token, the indices (with repeats) of its word unigram and char n-gram features.

        Cached per token: mail vocabulary repeats, and this is most of the work.
        """
        cache = self.__dict__.setdefault("_token_cache", {})
        if len(cache) >= _CACHE_LIMIT:
            # A new dict rather than clear(): a thread still using the old one keeps its entries.
            cache = self._token_cache = {}
        missing = [token for token in tokens if token not in cache]
        if missing:
            unigrams = self.word_index_ if self.words and self.words[0] == 1 else {}
            chars = self.char_index_
            for token in missing:
                found = [unigrams[token]] if token in unigrams else []
                found += [chars[g] for g in self._char_grams(token) if g in chars]
                cache[token] = np.array(found, dtype=np.int64)
        return list(map(cache.get, tokens))

    def vector(self, doc: str) -> tuple[np.ndarray, np.ndarray]:
        """The sparse feature vector of one canonical document: (sorted indices, values)."""
        tokens = doc.split()
        parts = self._token_indices(tokens)
        low, high = self.words or (1, 0)
        if low <= 2 <= high:
            bigrams = map(" ".join, zip(tokens, islice(tokens, 1, None), strict=False))
            parts.append(
                np.array(
                    list(filter(_is_index, map(self.word_index_.get, bigrams))), dtype=np.int64
                )
            )
        if high >= 3:
            grams = self._word_grams(tokens)[
                len(tokens) * (low == 1) + (len(tokens) - 1) * (low <= 2) :
            ]
            parts.append(
                np.array(list(filter(_is_index, map(self.word_index_.get, grams))), dtype=np.int64)
            )
        hits = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        if not len(hits):
            return hits, np.zeros(0)
        # Distinct features and their counts (word and char indices do not overlap).
        hits.sort()
        first = np.empty(len(hits), dtype=bool)
        first[0] = True
        np.not_equal(hits[1:], hits[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        indices = hits[starts]
        counts = np.empty(len(starts))
        np.subtract(starts[1:], starts[:-1], out=counts[:-1])
        counts[-1] = len(hits) - starts[-1]
        values = (1 + np.log(counts)) * self.idf_[indices]
        # Each block (words, chars) is L2-normalised on its own, as in a FeatureUnion.
        split = int(np.searchsorted(indices, len(self.word_index_)))
        for block, weight in ((slice(0, split), 1.0), (slice(split, None), self.char_weight)):
            norm = np.sqrt(values[block] @ values[block])
            if norm:
                values[block] *= weight / norm
        return indices, values

    def transform(self, docs: list[str]) -> sparse.csr_matrix:
        """The feature matrix of canonical documents (one row per document)."""
        vectors = [self.vector(doc) for doc in docs]
        indptr = np.cumsum([0] + [len(idx) for idx, _ in vectors])
        indices = np.concatenate([idx for idx, _ in vectors] or [np.zeros(0, dtype=np.int64)])
        values = np.concatenate([val for _, val in vectors] or [np.zeros(0)])
        return sparse.csr_matrix((values, indices, indptr), shape=(len(docs), self.n_features))
