"""Measure the classifier: mails per second on one core, model file size, training time.

Usage: python bench/bench_classify.py [--no-train] [--models DIR]

Throughput is measured on the training corpus's texts (data/corpus/*.jsonl) with
the shipped model (models/): classify_text one mail at a time, with the per-word
caches emptied first ("cold") and again once they are filled ("warm"), and
classify_many in one batch. BLAS and OpenMP are held to one thread. Training time
is one full `train()` (5-fold CV + final fit) into a temporary folder.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import io  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from triage_daemon.triage import textprep  # noqa: E402
from triage_daemon.triage.classify import MODEL_FILE, Classifier  # noqa: E402
from triage_daemon.triage.train import train  # noqa: E402


def corpus_mails() -> list[tuple[str, str]]:
    rows = []
    for path in sorted((ROOT / "data" / "corpus").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows.append((row["subject"], row["body"]))
    return rows


def empty_caches(classifier: Classifier) -> None:
    textprep._forms.clear()
    textprep._tool_cache.clear()
    classifier.model.featurizer.__dict__.get("_token_cache", {}).clear()


def rate(mails: list[tuple[str, str]], classify) -> tuple[float, float]:
    """Mails per second of wall-clock time and of this process's CPU time.

    On a machine other processes share, the CPU-time rate is the fairer figure.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    for subject, body in mails:
        classify(subject, body)
    return len(mails) / (time.perf_counter() - wall), len(mails) / (time.process_time() - cpu)


def show(what: str, rates: tuple[float, float]) -> None:
    print(f"{what:28s} {rates[0]:7,.0f} mails/s (wall clock), {rates[1]:7,.0f} mails/s (CPU time)")


def main(with_training: bool, models: Path) -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    classifier = Classifier.load(models)
    mails = corpus_mails()
    chars = sum(len(s) + len(b) for s, b in mails) / len(mails)
    print(f"{len(mails)} corpus mails, {chars:.0f} characters on average")
    empty_caches(classifier)
    show("classify_text, cold caches:", rate(mails, classifier.classify_text))
    runs = [rate(mails, classifier.classify_text) for _ in range(5)]
    show("classify_text, warm caches:", (max(r[0] for r in runs), max(r[1] for r in runs)))
    wall, cpu = time.perf_counter(), time.process_time()
    classifier.classify_many(mails)
    batch = (len(mails) / (time.perf_counter() - wall), len(mails) / (time.process_time() - cpu))
    show("classify_many (one batch):", batch)
    size = (models / MODEL_FILE).stat().st_size
    print(f"model file: {size / 1e6:.2f} MB ({classifier.model.featurizer.n_features:,} features)")
    if with_training:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        with tempfile.TemporaryDirectory() as models:
            report = train(
                ROOT / "data" / "corpus",
                Path(models),
                console=Console(file=io.StringIO()),
                progress=False,
            )
        print(
            f"training (5-fold CV + final fit, {report.examples} examples): {report.seconds:.1f} s"
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        "--no-train" not in args,
        Path(args[args.index("--models") + 1]) if "--models" in args else ROOT / "models",
    )
