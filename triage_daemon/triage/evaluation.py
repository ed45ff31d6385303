"""Measure the model out of fold: per-head metrics, decision-policy figures, tuned thresholds.

Everything here works on out-of-fold probabilities (train.cross_validate): the
non-technical threshold and the FAQ calibration are tuned on them, and the
report printed by ``triage-daemon train`` comes from them.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from ..catalogue import NO_FAQ
from .classify import HEADS, Scores, decide
from .corpus import Example

# Dropping a real question is the worst error: the threshold is tuned for more than the
# floor of 97% (thresholds tuned out of fold reach a little less on the next writers).
NOT_TECHNICAL_PRECISION = 0.98
# Writers whose text was written to cover vocabulary (data/corpus/tools.jsonl), not to
# stand for the helpdesk's mail: trained on, never measured or tuned on.
COVERAGE_WRITERS = "tools-"


def calibrate_faq(
    examples: list[Example], scores: list[Scores]
) -> tuple[list[float], list[float]] | None:
    """Isotonic map: the FAQ head's top probability (when a key) -> the share of right keys."""
    from sklearn.isotonic import IsotonicRegression

    pairs = [
        (max(s.faq.values()), max(s.faq, key=s.faq.get) == e.faq)
        for e, s in zip(examples, scores, strict=True)
        if e.technical and max(s.faq, key=s.faq.get) != NO_FAQ
    ]
    if len({ok for _, ok in pairs}) < 2:
        return None
    x, y = zip(*pairs, strict=True)
    # Capped below 1: a few hundred examples cannot show that a key is certainly right.
    iso = IsotonicRegression(y_min=0.0, y_max=0.99, out_of_bounds="clip").fit(
        x, np.array(y, dtype=float)
    )
    return [float(v) for v in iso.X_thresholds_], [round(float(v), 4) for v in iso.y_thresholds_]


def tune_not_technical(
    examples: list[Example], scores: list[Scores], precision: float = NOT_TECHNICAL_PRECISION
) -> float:
    """The lowest threshold on P(not technical) whose out-of-fold precision reaches ``precision``.

    Never below 0.5; 0.99 when no threshold reaches it.
    """
    p_not = np.array([1 - s.technical for s in scores])
    truth = np.array([not e.technical for e in examples])
    for threshold in np.arange(50, 100) / 100:
        called = p_not >= threshold
        if called.any() and truth[called].mean() >= precision:
            return round(float(threshold), 2)
    return 0.99


def honest_rows(examples: list[Example]) -> list[int]:
    """The examples whose writer is known, so unseen in its fold's training (all if none is).

    Coverage text (COVERAGE_WRITERS) is left out.
    """
    rows = [
        i for i, e in enumerate(examples) if e.writer and not e.writer.startswith(COVERAGE_WRITERS)
    ]
    return rows or list(range(len(examples)))


def tune(examples: list[Example], scores: list[Scores]) -> tuple[float, tuple | None]:
    """The non-technical threshold and the FAQ calibration, from out-of-fold probabilities.

    Tuned on the examples of named writers only (honest_rows): the old corpus's one
    author is never unseen, and its out-of-fold figures flatter the model.
    """
    rows = honest_rows(examples)
    chosen = [examples[i] for i in rows], [scores[i] for i in rows]
    return tune_not_technical(*chosen), calibrate_faq(*chosen)


def crossfit_triages(
    examples: list[Example],
    scores: list[Scores],
    fold_of: list[int],
    min_confidence: float = 0.6,
    faq_min_confidence: float = 0.75,
) -> list:
    """The decision policy's triage of each example, its thresholds tuned without its fold.

    Thresholds tuned on the same out-of-fold predictions they are measured on would
    flatter them; here each fold is decided with what the other folds taught.
    """
    out: list = [None] * len(examples)
    for number in sorted(set(fold_of)):
        others = [i for i, f in enumerate(fold_of) if f != number]
        threshold, calibration = tune([examples[i] for i in others], [scores[i] for i in others])
        for i in (i for i, f in enumerate(fold_of) if f == number):
            out[i] = decide(
                scores[i],
                not_technical=threshold,
                min_confidence=min_confidence,
                faq_min_confidence=faq_min_confidence,
                faq_calibration=calibration,
            )[0]
    return out


def head_metrics(truth: list, predicted: list) -> dict:
    """Macro-F1, per-class precision/recall/F1/support and the confusion matrix."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = sorted(set(truth) | set(predicted), key=str)
    p, r, f, n = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    present = [i for i, label in enumerate(labels) if label in set(truth)]
    return {
        "macro_f1": round(float(np.mean(f[present])), 4),
        "accuracy": round(
            float(np.mean(np.array(truth, dtype=object) == np.array(predicted, dtype=object))), 4
        ),
        "per_class": {
            str(labels[i]): {
                "precision": round(float(p[i]), 4),
                "recall": round(float(r[i]), 4),
                "f1": round(float(f[i]), 4),
                "support": int(n[i]),
            }
            for i in range(len(labels))
        },
        "confusion": {
            "labels": [str(x) for x in labels],
            "matrix": confusion_matrix(truth, predicted, labels=labels).tolist(),
        },
    }


def evaluate(
    examples: list[Example],
    scores: list[Scores],
    fold_of: list[int],
    min_confidence: float = 0.6,
    faq_min_confidence: float = 0.75,
) -> dict:
    """The CV metrics of each head (argmax), and of the decision policy (crossfit_triages).

    ``policy`` holds the issue's figures on every example, ``unseen_writers`` on the
    examples of named writers (honest_rows), and per language and per source file.
    """
    tech = [i for i, e in enumerate(examples) if e.technical]
    cv = {
        "technical": head_metrics(
            [e.technical for e in examples], [s.technical >= 0.5 for s in scores]
        ),
        "topic": head_metrics(
            [examples[i].topic for i in tech],
            [max(scores[i].topic, key=scores[i].topic.get) for i in tech],
        ),
        "faq": head_metrics(
            [examples[i].faq for i in tech],
            [max(scores[i].faq, key=scores[i].faq.get) for i in tech],
        ),
    }
    cv["score"] = round(float(np.mean([cv[h]["macro_f1"] for h in HEADS])), 4)
    triages = crossfit_triages(examples, scores, fold_of, min_confidence, faq_min_confidence)
    rows = honest_rows(examples)
    honest = [examples[i] for i in rows], [triages[i] for i in rows]
    cv["policy"] = {
        "min_confidence": min_confidence,
        "faq_min_confidence": faq_min_confidence,
        "all": request_figures(examples, triages),
        "unseen_writers": request_figures(*honest),
        "by_lang": figures_by(*honest, key=lambda e: e.lang),
        "by_file": figures_by(examples, triages, key=_source_file),
    }
    return cv


def _source_file(example: Example) -> str:
    """The corpus file an example comes from; all corrections ("extra[i]") as one."""
    return "corrections" if example.source.startswith("extra[") else example.source.split(":")[0]


def print_report(console: Console, cv: dict, thresholds: dict, folds: int) -> None:
    """Per-head tables (precision, recall, F1, support) and confusion matrices."""
    for head in HEADS:
        metrics = cv[head]
        table = Table(
            title=f"{head}: {folds}-fold CV macro-F1 {metrics['macro_f1']:.3f}, "
            f"accuracy {metrics['accuracy']:.3f}"
        )
        for column in ("label", "precision", "recall", "F1", "support"):
            table.add_column(column, justify="left" if column == "label" else "right")
        for label, m in metrics["per_class"].items():
            table.add_row(
                label,
                f"{m['precision']:.3f}",
                f"{m['recall']:.3f}",
                f"{m['f1']:.3f}",
                str(m["support"]),
            )
        console.print(table)
        labels, matrix = metrics["confusion"]["labels"], metrics["confusion"]["matrix"]
        confusion = Table(
            title=f"{head}: confusion (rows: true label, columns: predicted, by number)"
        )
        confusion.add_column("true label")
        for number in range(1, len(labels) + 1):
            confusion.add_column(str(number), justify="right")
        for number, (label, row) in enumerate(zip(labels, matrix, strict=True), 1):
            confusion.add_row(f"{number} {label}", *(str(n) for n in row))
        console.print(confusion)
    policy = cv["policy"]
    console.print(
        f"Decision policy out of fold (P(not technical) >= {thresholds['not_technical']}, "
        f"min confidence {policy['min_confidence']}, FAQ {policy['faq_min_confidence']}; "
        "thresholds tuned without the fold they decide):"
    )
    table = Table(title="the issue's figures, grouped cross-validation")
    for column in ("examples", "n", *FIGURES, "review"):
        table.add_column(
            HEADINGS.get(column, column), justify="left" if column == "examples" else "right"
        )
    rows = [("all", policy["all"]), ("unseen writers", policy["unseen_writers"])]
    rows += [(f"  {lang}", figures) for lang, figures in policy["by_lang"].items()]
    for name, figures in rows:
        table.add_row(
            name,
            str(figures["requests"]),
            *(f"{figures[column]:.3f}" for column in (*FIGURES, "review")),
        )
    console.print(table)
    console.print(
        f"Model score (mean CV macro-F1 of the three heads): [bold]{cv['score']:.4f}[/bold]"
    )


# The figures of the issue, for held-out requests (the blind set, the example mails).
FIGURES = (
    "technical_accuracy",
    "not_technical_precision",
    "topic_macro_f1",
    "faq_precision",
    "faq_recall",
)
# Column headings short enough for an 80-column terminal.
HEADINGS = {
    "technical_accuracy": "tech acc",
    "not_technical_precision": "not-tech P",
    "topic_macro_f1": "topic F1",
    "faq_precision": "FAQ P",
    "faq_recall": "FAQ R",
    "review": "review",
    "score": "score",
}


def request_figures(examples: list[Example], triages: list) -> dict:
    """What the classifier's triages achieve on labelled requests: the issue's figures.

    A technical request called non-technical counts as a wrong topic. Also: the
    non-technical recall, the real questions dropped, the number of FAQ answers
    given, the share sent to review, the per-topic F1 and ``score``, the mean of
    FIGURES (what ``train`` compares to refuse a worse model).
    """
    pairs = list(zip(examples, triages, strict=True))
    said_not = np.array([not t.technical for t in triages], dtype=bool)
    is_not = np.array([not e.technical for e in examples], dtype=bool)
    topic_f1 = _f1_per_class(
        [(e.topic, t.topic or "not-technical") for e, t in pairs if e.technical]
    )
    given = [(e, t) for e, t in pairs if t.technical and t.faq != NO_FAQ]
    wanted = [(e, t) for e, t in pairs if e.technical and e.faq != NO_FAQ]
    figures = {
        "requests": len(pairs),
        "technical_accuracy": _share(said_not == is_not),
        "not_technical_precision": _share(is_not[said_not]),
        "not_technical_recall": _share(said_not[is_not]),
        "real_questions_dropped": int((said_not & ~is_not).sum()),
        "topic_macro_f1": round(float(np.mean(list(topic_f1.values()))), 4) if topic_f1 else 1.0,
        "faq_precision": _share([e.faq == t.faq for e, t in given]),
        "faq_given": len(given),
        "faq_recall": round(sum(e.faq == t.faq for e, t in wanted) / max(len(wanted), 1), 4),
        "review": _share([t.review for t in triages]),
        "topic_f1": topic_f1,
    }
    figures["score"] = round(float(np.mean([figures[name] for name in FIGURES])), 4)
    return figures


def _f1_per_class(pairs: list[tuple[str, str]]) -> dict[str, float]:
    """F1 of each true label of (truth, predicted) pairs."""
    scores = {}
    for label in sorted({truth for truth, _ in pairs}):
        tp = sum(t == label and p == label for t, p in pairs)
        wrong = sum((t == label) != (p == label) for t, p in pairs)
        scores[label] = round(2 * tp / (2 * tp + wrong), 4) if tp else 0.0
    return scores


def _share(flags) -> float:
    """The share of true flags, 1.0 when there are none (nothing called, nothing wrong)."""
    flags = np.asarray(flags, dtype=bool)
    return round(float(flags.mean()), 4) if len(flags) else 1.0


def figures_by(examples: list[Example], triages: list, key) -> dict[str, dict]:
    """request_figures per value of ``key(example)`` (per language, per writer ...)."""
    groups: dict[str, list[int]] = {}
    for i, example in enumerate(examples):
        groups.setdefault(key(example), []).append(i)
    return {
        name: request_figures([examples[i] for i in rows], [triages[i] for i in rows])
        for name, rows in sorted(groups.items())
    }
