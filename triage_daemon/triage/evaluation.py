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

NOT_TECHNICAL_PRECISION = 0.97


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
    threshold: float,
    min_confidence: float = 0.6,
    faq_min_confidence: float = 0.75,
    faq_calibration: tuple | None = None,
) -> dict:
    """The CV metrics of each head (argmax), and of the decision policy with its thresholds."""
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
    cv["policy"] = policy_metrics(
        examples, scores, threshold, min_confidence, faq_min_confidence, faq_calibration
    )
    return cv


def policy_metrics(
    examples: list[Example],
    scores: list[Scores],
    threshold: float,
    min_confidence: float,
    faq_min_confidence: float,
    faq_calibration: tuple | None,
) -> dict:
    """What the Classifier's decisions (classify.decide) achieve out of fold."""
    triages = [
        decide(
            s,
            not_technical=threshold,
            min_confidence=min_confidence,
            faq_min_confidence=faq_min_confidence,
            faq_calibration=faq_calibration,
        )[0]
        for s in scores
    ]
    said_not = np.array([not t.technical for t in triages])
    is_not = np.array([not e.technical for e in examples])
    tech = [i for i, e in enumerate(examples) if e.technical and triages[i].technical]
    given = [i for i in tech if triages[i].faq != NO_FAQ]
    wanted = [i for i, e in enumerate(examples) if e.technical and e.faq != NO_FAQ]
    return {
        "min_confidence": min_confidence,
        "faq_min_confidence": faq_min_confidence,
        "technical_accuracy": round(float((said_not == is_not).mean()), 4),
        "not_technical_precision": round(
            float(is_not[said_not].mean()) if said_not.any() else 1.0, 4
        ),
        "not_technical_recall": round(float(said_not[is_not].mean()) if is_not.any() else 1.0, 4),
        "review_rate": round(float(np.mean([t.review for t in triages])), 4),
        "topic_macro_f1": head_metrics(
            [examples[i].topic for i in tech], [triages[i].topic for i in tech]
        )["macro_f1"],
        "faq_precision": round(
            float(np.mean([triages[i].faq == examples[i].faq for i in given])) if given else 1.0, 4
        ),
        "faq_recall": round(
            sum(triages[i].faq == examples[i].faq for i in wanted) / max(len(wanted), 1), 4
        ),
    }


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
        f"min confidence {policy['min_confidence']}, FAQ {policy['faq_min_confidence']}): "
        f"non-technical precision {policy['not_technical_precision']:.3f} "
        f"recall {policy['not_technical_recall']:.3f}, "
        f"topic macro-F1 {policy['topic_macro_f1']:.3f}, "
        f"FAQ precision {policy['faq_precision']:.3f} recall {policy['faq_recall']:.3f}, "
        f"sent to review {policy['review_rate']:.1%}"
    )
    console.print(
        f"Model score (mean CV macro-F1 of the three heads): [bold]{cv['score']:.4f}[/bold]"
    )
