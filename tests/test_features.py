"""The featurizer: the same tf-idf matrices as scikit-learn's vectorizers, pickling, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from triage_daemon.triage.features import Featurizer
from triage_daemon.triage.textprep import prepare

DOCS = [
    prepare(s, b)
    for s, b in [
        ("Webex", "δεν μπορώ να μπω στο webex"),
        ("κωδικός", "ξέχασα τον κωδικό του ΠΣΔ"),
        ("e-class", "den mporw na mpw sto eclass"),
        ("άδεια", "θέλω να ρωτήσω για την άδεια μου"),
        ("webex", "oi mathites den mpainoun sto webex"),
        ("", "ευχαριστώ για τη βοήθεια"),
    ]
]


@pytest.mark.parametrize("ngrams", [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3)], ids=str)
def test_featurizer_word_block_matches_scikit_learn(ngrams):
    ours = Featurizer(words=ngrams, chars=None, min_df=1).fit(DOCS)
    theirs = TfidfVectorizer(
        token_pattern=r"\S+", lowercase=False, ngram_range=ngrams, sublinear_tf=True
    ).fit(DOCS)
    order = [ours.word_index_[name] for name in theirs.get_feature_names_out()]
    assert len(order) == ours.n_features
    np.testing.assert_allclose(
        ours.transform(DOCS).toarray()[:, order], theirs.transform(DOCS).toarray()
    )


def test_featurizer_char_block_matches_scikit_learn_on_lowercase_words():
    docs = [" ".join(t for t in d.split() if not t.isupper()) for d in DOCS]
    ours = Featurizer(words=None, chars=(2, 5), min_df=1).fit(docs)
    theirs = TfidfVectorizer(
        analyzer="char_wb", lowercase=False, ngram_range=(2, 5), sublinear_tf=True
    ).fit(docs)
    order = [ours.char_index_[name] for name in theirs.get_feature_names_out()]
    np.testing.assert_allclose(
        ours.transform(docs).toarray()[:, order], theirs.transform(docs).toarray()
    )


def test_featurizer_blocks_are_normalised_and_unknown_text_is_empty():
    featurizer = Featurizer(min_df=1).fit(DOCS)
    X = featurizer.transform(DOCS)
    assert np.allclose((X.multiply(X)).sum(axis=1), 2.0)  # two L2-normalised blocks
    idx, val = featurizer.vector("ζζζζ QQQ")
    assert len(idx) == len(val) == 0
    assert featurizer.transform(["ζζζζ"]).nnz == 0


def test_featurizer_min_df_and_pickling_drops_the_cache():
    import pickle

    featurizer = Featurizer(min_df=2).fit(DOCS)
    assert "w:WEBEX" in featurizer.feature_names_
    assert "w:simera" not in featurizer.feature_names_
    featurizer.vector(DOCS[0])
    copy = pickle.loads(pickle.dumps(featurizer))
    assert "_token_cache" not in copy.__dict__
    np.testing.assert_allclose(copy.transform(DOCS).toarray(), featurizer.transform(DOCS).toarray())


def test_a_full_cache_starts_afresh_without_changing_results(monkeypatch):
    from triage_daemon.triage import features

    featurizer = Featurizer(min_df=1).fit(DOCS)
    expected = featurizer.transform(DOCS).toarray()
    monkeypatch.setattr(features, "_CACHE_LIMIT", 3)
    for _ in range(2):
        np.testing.assert_allclose(featurizer.transform(DOCS).toarray(), expected)
    assert len(featurizer._token_cache) < sum(len(d.split()) for d in DOCS)
