"""Compare model variants by stratified 5-fold cross-validation on the training corpus.

Usage: python bench/compare_models.py [NAME ...]   (default: every variant below)

Prints one row per variant: the CV macro-F1 of each head (argmax), the model score
(their mean), and what the decision policy achieves out of fold with its tuned
P(not technical) threshold (non-technical precision/recall, topic macro-F1, FAQ
precision/recall, share sent to review), and the time of the 5 folds. The table in
models/README.md comes from this script. It never reads /work/shared/examples.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from triage_daemon.triage.corpus import load_corpus  # noqa: E402
from triage_daemon.triage.evaluation import calibrate_faq, evaluate, tune_not_technical  # noqa: E402
from triage_daemon.triage.train import ModelSpec, cross_validate  # noqa: E402

BASE = ModelSpec()


def _heads(kind: str, C: float) -> dict:
    return {"technical": (kind, C), "topic": (kind, C), "faq": (kind, C)}


VARIANTS: dict[str, ModelSpec] = {
    "chosen": BASE,
    "no-product-tokens": replace(BASE, products=False),
    "no-transliteration": replace(BASE, transliterate=False),
    "words-only": replace(BASE, chars=None),
    "chars-only": replace(BASE, words=None),
    "chars-3-5": replace(BASE, chars=(3, 5)),
    "words-1-1": replace(BASE, words=(1, 1)),
    "subject-x1": replace(BASE, subject_weight=1),
    "subject-x3": replace(BASE, subject_weight=3),
    "min-df-1": replace(BASE, min_df=1),
    "min-df-3": replace(BASE, min_df=3),
    "svm-C0.3": replace(BASE, **_heads("svm", 0.3)),
    "svm-C1": replace(BASE, **_heads("svm", 1.0)),
    "svm-C10": replace(BASE, **_heads("svm", 10.0)),
    "logreg-C20": replace(BASE, **_heads("lr", 20.0)),
}

COLUMNS = (
    "variant",
    "technical",
    "topic",
    "faq",
    "score",
    "thr",
    "nt-P",
    "nt-R",
    "topic*",
    "faq-P*",
    "faq-R*",
    "review*",
    "seconds",
)


def run(name: str, spec: ModelSpec, examples: list) -> list[str]:
    started = time.perf_counter()
    scores = cross_validate(examples, spec, 5)
    seconds = time.perf_counter() - started
    threshold = tune_not_technical(examples, scores)
    cv = evaluate(examples, scores, threshold, faq_calibration=calibrate_faq(examples, scores))
    p = cv["policy"]
    values = [
        cv["technical"]["macro_f1"],
        cv["topic"]["macro_f1"],
        cv["faq"]["macro_f1"],
        cv["score"],
        threshold,
        p["not_technical_precision"],
        p["not_technical_recall"],
        p["topic_macro_f1"],
        p["faq_precision"],
        p["faq_recall"],
        p["review_rate"],
    ]
    return [name] + [f"{v:.3f}" for v in values] + [f"{seconds:.0f}"]


def main(names: list[str]) -> None:
    examples, digest = load_corpus(ROOT / "data" / "corpus")
    print(f"corpus: {len(examples)} examples, sha256 {digest['sha256'][:12]}")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for name in names or list(VARIANTS):
        print("| " + " | ".join(run(name, VARIANTS[name], examples)) + " |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
