"""Training: corpus validation, the refusal of a worse model, what is written, threshold tuning."""

from __future__ import annotations

import hashlib
import io
import json
import random

import pytest
from rich.console import Console
from triage_corpus import examples, write_corpus

from triage_daemon.errors import ConfigError, ModelError
from triage_daemon.triage.classify import METADATA_FILE, MODEL_FILE, Classifier, Scores
from triage_daemon.triage.corpus import Example, load_corpus
from triage_daemon.triage.evaluation import tune_not_technical
from triage_daemon.triage.train import train


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def _noisy(rows: list[dict], share: float, seed: int = 1) -> list[dict]:
    """The same texts with a share of the labels swapped at random (a worse corpus)."""
    rng = random.Random(seed)
    labels = [(r["technical"], r["topic"], r["faq"]) for r in rows]
    out = []
    for row in rows:
        row = dict(row)
        if rng.random() < share:
            row["technical"], row["topic"], row["faq"] = rng.choice(labels)
        out.append(row)
    return out


def test_a_worse_model_is_refused_unless_forced(tmp_path):
    models = tmp_path / "models"
    write_corpus(tmp_path / "good", examples(per_label=6))
    first = train(tmp_path / "good", models, console=_quiet(), progress=False, folds=3)
    model_bytes = (models / MODEL_FILE).read_bytes()

    write_corpus(tmp_path / "bad", _noisy(examples(per_label=6), share=0.6))
    with pytest.raises(ModelError, match=r"--force") as refused:
        train(tmp_path / "bad", models, console=_quiet(), progress=False, folds=3)
    assert f"{first.score:.4f}" in str(refused.value)
    assert (models / MODEL_FILE).read_bytes() == model_bytes

    forced = train(tmp_path / "bad", models, force=True, console=_quiet(), progress=False, folds=3)
    assert forced.written and forced.score < first.score
    assert forced.previous_score == pytest.approx(first.score)
    assert json.loads((models / METADATA_FILE).read_text())["cv"]["score"] == forced.score


def test_bad_corpus_lines_are_named_with_file_and_line(tmp_path):
    rows = examples(per_label=2)
    lines = [json.dumps(r, ensure_ascii=False) for r in rows[:6]]
    lines[2] = json.dumps({**rows[0], "topic": "eclass"})  # webex FAQ key under topic eclass
    lines[4] = "{not json"
    lines.append(json.dumps({**rows[0], "technical": "yes"}))
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_corpus(tmp_path)
    problems = error.value.problems
    assert len(problems) == 3
    assert "bad.jsonl:3:" in problems[0] and "belongs to topic 'webex'" in problems[0]
    assert "bad.jsonl:5:" in problems[1] and "not valid JSON" in problems[1]
    assert "bad.jsonl:7:" in problems[2] and "'technical' must be a bool" in problems[2]


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    good = json.dumps(examples(per_label=1)[0], ensure_ascii=False).encode()
    greek_1253 = b'{"subject": "\xe5\xed", "body": "x", "technical": false}'
    (tmp_path / "latin.jsonl").write_bytes(good + b"\n" + greek_1253 + b"\n")
    with pytest.raises(ConfigError, match=r"latin\.jsonl:2: not UTF-8"):
        load_corpus(tmp_path)


def test_bad_correction_is_named(tmp_path):
    write_corpus(tmp_path / "corpus", examples(per_label=3))
    bad = {
        "id": "ticket-7",
        "subject": "x",
        "body": "y",
        "technical": True,
        "topic": "zoom",
        "faq": "none",
    }
    with pytest.raises(ConfigError, match=r"extra\[0\] \(ticket-7\): topic 'zoom'"):
        train(
            tmp_path / "corpus", tmp_path / "models", extra=[bad], console=_quiet(), progress=False
        )
    assert not (tmp_path / "models" / MODEL_FILE).exists()


def test_empty_corpus_folder_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no \\*.jsonl"):
        load_corpus(tmp_path)


def test_written_model_loads_and_metadata_tells_its_story(tmp_path):
    write_corpus(tmp_path / "corpus", examples(per_label=5))
    correction = {**examples(per_label=1, seed=3)[0], "id": "ticket-1"}
    console = _quiet()
    report = train(
        tmp_path / "corpus",
        tmp_path / "models",
        extra=[correction],
        console=console,
        progress=False,
        folds=3,
    )
    models = tmp_path / "models"
    assert sorted(p.name for p in models.iterdir()) == sorted(
        [MODEL_FILE, METADATA_FILE]
    )  # no temp files
    metadata = json.loads((models / METADATA_FILE).read_text())
    import sklearn

    assert metadata["versions"]["scikit-learn"] == sklearn.__version__
    assert (
        metadata["model_sha256"] == hashlib.sha256((models / MODEL_FILE).read_bytes()).hexdigest()
    )
    corpus_bytes = (tmp_path / "corpus" / "synthetic.jsonl").read_bytes()
    assert (
        metadata["corpus"]["files"]["synthetic.jsonl"]["sha256"]
        == hashlib.sha256(corpus_bytes).hexdigest()
    )
    assert metadata["corpus"]["extra_examples"] == 1
    assert metadata["examples"]["total"] == report.examples == len(examples(per_label=5)) + 1
    for head in ("technical", "topic", "faq"):
        assert 0 <= metadata["cv"][head]["macro_f1"] <= 1
        assert metadata["cv"][head]["confusion"]["matrix"]
    assert 0.5 <= metadata["thresholds"]["not_technical"] <= 0.99
    output = console.file.getvalue()
    assert "faq: confusion" in output and "webex-lobby" in output
    assert Classifier.load(models).classify_text("Webex", "μικρόφωνο κάμερα ήχος").topic == "webex"


def _example(technical: bool) -> Example:
    return Example(
        "", "", technical, "other" if technical else None, "none" if technical else None, "t"
    )


def test_not_technical_threshold_reaches_the_precision_target():
    # P(not technical) of 100 non-technical and 100 technical examples, overlapping below 0.8.
    truth = [False] * 100 + [True] * 100
    p_not = [0.95] * 80 + [0.6] * 20 + [0.05] * 90 + [0.62] * 8 + [0.85] * 2
    scores = [Scores(1 - p, {}, {}) for p in p_not]
    threshold = tune_not_technical([_example(t) for t in truth], scores, precision=0.97)
    # At 0.6 precision is 100/110; from 0.63 on, 80/82 = 0.976.
    assert threshold == pytest.approx(0.63)
    assert tune_not_technical([_example(True)] * 3, [Scores(0.0, {}, {})] * 3) == 0.99
