"""Compare model variants by grouped cross-validation on the training corpus (folds by writer).

Usage: python bench/compare_models.py [--seeds 0,1,2] [NAME ...]   (default: every variant)

Prints one row per variant: the CV macro-F1 of each head (argmax), the model score
(their mean), then the issue's figures of the decision policy on the examples of
named writers, each decided with thresholds tuned on the other folds
(evaluation.crossfit_triages): technical accuracy, non-technical precision and
recall, topic macro-F1, FAQ precision and recall, share sent to review; and the
time of the folds. With several seeds (fold splits) every figure is their mean.
The tables in models/README.md come from this script. It never reads the blind
set (data/blind) nor the example mails (../shared/examples).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from triage_daemon.triage.corpus import load_corpus  # noqa: E402
from triage_daemon.triage.evaluation import evaluate  # noqa: E402
from triage_daemon.triage.train import ModelSpec, cross_validate, fold_numbers  # noqa: E402

BASE = ModelSpec()


def _heads(kind: str, C: float) -> dict:
    return {"technical": (kind, C), "topic": (kind, C), "faq": (kind, C)}


VARIANTS: dict[str, ModelSpec] = {
    "chosen": BASE,
    "no-tool-tokens": replace(BASE, tools=False),
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

HEAD_COLUMNS = ("technical", "topic", "faq", "score")
POLICY_COLUMNS = (
    "technical_accuracy",
    "not_technical_precision",
    "not_technical_recall",
    "topic_macro_f1",
    "faq_precision",
    "faq_recall",
    "review",
)
SHORT = ("tech-acc*", "nt-P*", "nt-R*", "topic*", "faq-P*", "faq-R*", "review*")


def run(spec: ModelSpec, examples: list, splits: list[list[int]]) -> tuple[list[float], float]:
    """The mean over the fold splits of the head and policy figures, and the seconds per split."""
    rows, started = [], time.perf_counter()
    for fold_of in splits:
        cv = evaluate(examples, cross_validate(examples, spec, fold_of=fold_of), fold_of)
        honest = cv["policy"]["unseen_writers"]
        rows.append(
            [cv["technical"]["macro_f1"], cv["topic"]["macro_f1"], cv["faq"]["macro_f1"]]
            + [cv["score"]]
            + [honest[column] for column in POLICY_COLUMNS]
        )
    means = [sum(column) / len(column) for column in zip(*rows, strict=True)]
    return means, (time.perf_counter() - started) / len(splits)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0", help="fold splits to average, e.g. 0,1,2")
    parser.add_argument("names", nargs="*", help=f"variants (default: all): {', '.join(VARIANTS)}")
    args = parser.parse_args(argv)
    examples, digest = load_corpus(ROOT / "data" / "corpus")
    seeds = [int(seed) for seed in args.seeds.split(",")]
    splits = [fold_numbers(examples, 5, seed) for seed in seeds]
    writers = len({e.writer for e in examples if e.writer})
    print(
        f"corpus: {len(examples)} examples ({writers} named writers), "
        f"sha256 {digest['sha256'][:12]}; fold splits (seeds) {seeds}"
    )
    columns = ("variant", *HEAD_COLUMNS, *SHORT, "seconds")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for name in args.names or list(VARIANTS):
        means, seconds = run(VARIANTS[name], examples, splits)
        cells = [f"{v:.3f}" for v in means] + [f"{seconds:.0f}"]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
