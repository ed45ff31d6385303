"""Training: corpus validation, the refusal of a worse model, what is written, threshold tuning."""

from __future__ import annotations

import hashlib
import io
import json
import random
from dataclasses import replace

import pytest
from rich.console import Console
from triage_corpus import examples, write_corpus

from triage_daemon.errors import ConfigError, ModelError
from triage_daemon.triage.classify import METADATA_FILE, MODEL_FILE, Classifier, Scores
from triage_daemon.triage.corpus import (
    BLOCK,
    CORRECTION_WEIGHT,
    Example,
    extra_examples,
    load_corpus,
    load_requests,
    with_corrections,
)
from triage_daemon.triage.evaluation import tune_not_technical
from triage_daemon.triage.heldout import load_heldout
from triage_daemon.triage.train import ModelSpec, fit_model, fold_numbers, predict_scores, train


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


def _writers(rows: list[dict], writers: int) -> list[dict]:
    """The rows shared out among ``writers`` named writers, round robin."""
    return [{**row, "writer": f"w{i % writers}"} for i, row in enumerate(rows)]


def test_folds_keep_each_writer_and_each_block_of_the_old_corpus_together(tmp_path):
    write_corpus(tmp_path, _writers(examples(per_label=4), writers=12), "new.jsonl")
    write_corpus(tmp_path, examples(per_label=2, seed=5), "old.jsonl")
    corpus, _ = load_corpus(tmp_path)
    fold_of = fold_numbers(corpus, folds=4)
    assert len(set(fold_of)) == 4
    by_group: dict[str, set[int]] = {}
    for example, fold in zip(corpus, fold_of, strict=True):
        by_group.setdefault(example.group, set()).add(fold)
    assert all(len(folds) == 1 for folds in by_group.values()), by_group
    old = [e for e in corpus if e.source.startswith("old.jsonl")]
    # No writer field: blocks of BLOCK consecutive lines of the file, and no writer.
    assert {e.group for e in old} == {f"old#{n}" for n in range((len(old) - 1) // BLOCK + 1)}
    assert not any(e.writer for e in old) and all(e.writer for e in corpus if e not in old)


def test_corrections_are_deduplicated_weighted_and_replace_the_same_corpus_text():
    row = examples(per_label=1)[0]
    first = {**row, "id": "ticket-1", "technical": False, "topic": None, "faq": None}
    again = {**row, "id": "ticket-2", "body": "  " + row["body"].upper() + " "}
    corrections = extra_examples([first, again])
    assert [(c.source, c.technical, c.weight) for c in corrections] == [
        ("extra[1]", True, CORRECTION_WEIGHT)
    ]
    assert corrections[0].writer == corrections[0].group == "correction:ticket-2"
    corpus = [Example(row["subject"], row["body"], False, None, None, "c.jsonl:1"), _example(True)]
    merged = with_corrections(corpus, corrections)
    assert [e.source for e in merged] == ["t", "extra[1]"]


def test_a_correction_s_weight_outweighs_lighter_examples_of_the_same_words():
    def labelled(technical: bool, weight: float, n: int) -> Example:
        topic, faq = ("webex", "none") if technical else (None, None)
        return Example("", f"κάμερα οθόνη {n % 2}", technical, topic, faq, f"x:{n}", weight=weight)

    # The same words, non-technical twice as often, but the technical ones weigh 3 each.
    rows = [labelled(False, 1.0, n) for n in range(8)] + [labelled(True, 3.0, n) for n in range(4)]
    rows += [labelled(True, 1.0, 10), labelled(False, 1.0, 11)]
    model = fit_model(rows, ModelSpec(technical=("lr", 1.0)))
    assert predict_scores(model, [rows[0]])[0].technical > 0.5
    light = [replace(r, weight=1.0) for r in rows]
    assert (
        predict_scores(fit_model(light, ModelSpec(technical=("lr", 1.0))), [rows[0]])[0].technical
        < 0.5
    )


def test_a_model_worse_on_a_heldout_set_is_refused_unless_forced(tmp_path):
    models = tmp_path / "models"
    heldout = {"blind set": extra_examples(examples(per_label=2, seed=9))}
    write_corpus(tmp_path / "good", _writers(examples(per_label=6), writers=9))
    first = train(
        tmp_path / "good", models, console=_quiet(), progress=False, folds=3, heldout=heldout
    )
    assert first.heldout["blind set"]["requests"] == len(heldout["blind set"])
    saved = json.loads((models / METADATA_FILE).read_text())["heldout"]["blind set"]
    assert saved["score"] == first.heldout["blind set"]["score"]
    model_bytes = (models / MODEL_FILE).read_bytes()

    write_corpus(tmp_path / "bad", _writers(_noisy(examples(per_label=6), share=0.6), writers=9))
    console = _quiet()
    with pytest.raises(ModelError, match=r"on the blind set the new model scores .*--force"):
        train(tmp_path / "bad", models, console=console, progress=False, folds=3, heldout=heldout)
    assert (models / MODEL_FILE).read_bytes() == model_bytes
    assert "blind set: " in console.file.getvalue() and "current" in console.file.getvalue()
    forced = train(
        tmp_path / "bad", models, force=True, console=_quiet(), progress=False, heldout=heldout
    )
    assert forced.heldout["blind set"]["score"] < first.heldout["blind set"]["score"]


def test_heldout_requests_are_read_as_mail(tmp_path):
    subject = "Σχολιασμός στον πίνακα από μαθητές της τάξης μου στην αίθουσα του Webex σήμερα"
    body = "Καλησπέρα σας,\nδεν ακούγομαι στο webex.\n\n> Quoted earlier answer\n"
    row = {"subject": subject, "body": body, "technical": True, "topic": "webex"}
    (tmp_path / "blind.jsonl").write_text(
        json.dumps({**row, "faq": "webex-audio-video", "lang": "el", "writer": "z"}) + "\n",
        encoding="utf-8",
    )
    [request] = load_heldout(tmp_path / "blind.jsonl", tmp_path / "no-examples")["blind set"]
    # The long subject survives RFC 2047 folding; the quote is set apart as the daemon does.
    assert request.subject == subject
    assert request.body == "Καλησπέρα σας,\nδεν ακούγομαι στο webex."
    (tmp_path / "blind.jsonl").write_text('{"subject": 1}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"blind\.jsonl:1: 'subject' must be a str"):
        load_requests(tmp_path / "blind.jsonl")


def test_request_figures_count_a_dropped_question_against_the_topic_too():
    from triage_daemon.context import Triage
    from triage_daemon.triage.evaluation import request_figures

    def labelled(technical: bool, topic=None, faq=None) -> Example:
        return Example("", "", technical, topic, faq, "t")

    truth = [
        labelled(True, "webex", "webex-lobby"),
        labelled(True, "webex", "none"),
        labelled(True, "eclass", "eclass-login"),
        labelled(False),
        labelled(False),
    ]
    said = [
        Triage(True, "webex", "webex-lobby"),
        Triage(True, "webex", "webex-share"),  # an FAQ answer given where none fits
        Triage(False, None, None),  # a real question dropped
        Triage(False, None, None),
        Triage(True, "other", "none", review=True),
    ]
    figures = request_figures(truth, said)
    assert figures["technical_accuracy"] == 0.6
    assert (figures["not_technical_precision"], figures["not_technical_recall"]) == (0.5, 0.5)
    assert figures["real_questions_dropped"] == 1
    # webex F1 1.0; eclass 0.0 (called not technical).
    assert figures["topic_f1"] == {"eclass": 0.0, "webex": 1.0}
    assert figures["topic_macro_f1"] == 0.5
    assert (figures["faq_given"], figures["faq_precision"], figures["faq_recall"]) == (2, 0.5, 0.5)
    assert figures["review"] == 0.2


def test_each_fold_is_decided_with_thresholds_tuned_on_the_other_folds():
    from triage_daemon.triage.evaluation import crossfit_triages

    def mail(technical: bool, p_not: float, fold: int) -> tuple[Example, Scores, int]:
        topic, faq = ("webex", "none") if technical else (None, None)
        example = Example("", "", technical, topic, faq, "t", writer=f"w{fold}")
        return example, Scores(1 - p_not, {"webex": 1.0}, {"none": 1.0}), fold

    # Fold 0 alone would call 0.6 non-technical (threshold 0.56); fold 1 teaches 0.61.
    # Fold 1 alone would be safe from 0.61; fold 0 teaches 0.56, below fold 1's technical 0.6.
    rows = [mail(False, 0.6, 0), mail(True, 0.55, 0), mail(False, 0.95, 1), mail(True, 0.6, 1)]
    examples, scores, folds = (list(column) for column in zip(*rows, strict=True))
    triages = crossfit_triages(examples, scores, folds)
    assert [t.technical for t in triages] == [True, True, False, False]
