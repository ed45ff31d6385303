"""Tests for desk/similar.py: signatures from the shipped model's featurizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from triage_daemon.desk.similar import SIZE, decode, encode, signature, similarity
from triage_daemon.triage.classify import Classifier

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="module")
def sign():
    model = Classifier.load(MODELS).model
    words = len(model.featurizer.word_index_)

    def sign(subject: str, body: str) -> dict[int, float]:
        idx, val = model.featurizer.vector(model.prepare(subject, body))
        return signature(idx, val, words)

    return sign


def test_the_same_outage_in_other_words_is_alike(sign):
    a = sign("Webex", "Δεν μπορώ να συνδεθώ στο webex σήμερα, βγάζει σφάλμα σύνδεσης")
    b = sign("webex", "den mporw na syndethw sto webex shmera, bgazei sfalma")
    c = sign("e-class", "Πώς ανεβάζω έγγραφα σε ένα μάθημα της η-τάξης;")
    assert similarity(a, b) > 0.5
    assert similarity(a, c) < 0.2
    assert similarity(a, a) == pytest.approx(1.0)


def test_signature_keeps_the_heaviest_word_features_only():
    indices = np.arange(100)
    values = np.linspace(0.01, 1.0, 100)
    sig = signature(indices, values, word_features=60)
    assert len(sig) == SIZE
    assert set(sig) == set(range(60 - SIZE, 60))  # the char block (>= 60) is left out
    assert sum(w * w for w in sig.values()) == pytest.approx(1.0)
    assert signature(indices[60:], values[60:], word_features=60) == {}


def test_encode_and_decode_round_trip(sign):
    sig = sign("Κάμερα", "Η κάμερα δεν ανοίγει στο Webex από το λάπτοπ")
    back = decode(encode(sig))
    assert back.keys() == sig.keys()
    assert similarity(back, sig) == pytest.approx(1.0, abs=1e-3)
    assert decode("") == {} and decode(None) == {}
