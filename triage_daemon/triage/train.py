"""Train the triage model from the labelled corpus: validate, cross-validate, report, fit, write.

The model is three linear heads over one shared set of tf-idf features (see
features.Featurizer): ``technical`` (all examples), ``topic`` and ``faq`` (technical
examples only), trained with each example's weight (corrections count more).
Cross-validation keeps each writer's mails in one fold (corpus.Example.group), so
its figures are about writers the model has not seen; the threshold on
P(not technical) (for a non-technical precision of at least 98%) and the FAQ
calibration are tuned on those out-of-fold predictions. A new model that is worse
than the current one on a held-out set (the blind set, the example mails), or
without held-out sets scores a lower CV macro-F1, is not written unless forced.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from .. import __version__
from ..errors import ConfigError
from .classify import METADATA_FILE, MODEL_FILE, LinearHead, Scores, TriageModel
from .corpus import CORRECTION_WEIGHT, Example, extra_examples, load_corpus, with_corrections
from .evaluation import NOT_TECHNICAL_PRECISION, evaluate, print_report, tune
from .features import Featurizer
from .heldout import check_better, previous_score
from .textprep import prepare


@dataclass(frozen=True)
class ModelSpec:
    """How to build the model; the defaults are the choice measured in models/README.md."""

    subject_weight: int = 2
    transliterate: bool = True
    products: bool = True
    tools: bool = True
    words: tuple[int, int] | None = (1, 2)
    chars: tuple[int, int] | None = (2, 5)
    min_df: int = 2
    char_weight: float = 1.0
    # Heads trained with class weights inversely proportional to the class sizes.
    balanced: tuple[str, ...] = ()
    # Per head: ("lr", C) logistic regression, or ("svm", C) LinearSVC with sigmoid calibration.
    technical: tuple[str, float] = ("svm", 3.0)
    topic: tuple[str, float] = ("svm", 3.0)
    faq: tuple[str, float] = ("svm", 3.0)


@dataclass
class TrainReport:
    """What a training run measured and did."""

    examples: int
    score: float
    cv: dict
    thresholds: dict
    seconds: float
    written: bool
    previous_score: float | None = None
    model_path: Path | None = None
    counts: dict = field(default_factory=dict)
    # The new model's figures on each held-out set (evaluation.request_figures).
    heldout: dict = field(default_factory=dict)


def _estimator(kind: str, C: float, y: np.ndarray, balanced: bool = False):
    """A fresh classifier for one head: ("lr", C) or ("svm", C)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    smallest = min(Counter(y.tolist()).values())
    if kind == "svm" and smallest >= 2:
        # Sigmoid calibration on inner folds; as many as the rarest class allows (at most 3).
        svm = LinearSVC(C=C, class_weight="balanced" if balanced else None)
        return CalibratedClassifierCV(svm, method="sigmoid", cv=min(3, smallest), ensemble=False)
    if kind not in ("lr", "svm"):
        raise ValueError(f"unknown head kind {kind!r}: use 'lr' or 'svm'")
    return LogisticRegression(C=C, max_iter=5000, class_weight="balanced" if balanced else None)


def _linear_head(estimator) -> LinearHead:
    """The fitted estimator as plain arrays (see classify.LinearHead)."""
    classes = tuple(c.item() if hasattr(c, "item") else c for c in estimator.classes_)
    if hasattr(estimator, "calibrated_classifiers_"):
        calibrated = estimator.calibrated_classifiers_[0]
        base = calibrated.estimator
        platt = [(float(c.a_), float(c.b_)) for c in calibrated.calibrators]
        return LinearHead(
            classes, base.coef_.astype(np.float32), base.intercept_.copy(), "platt", platt
        )
    link = "logistic" if len(classes) == 2 else "softmax"
    return LinearHead(
        classes, estimator.coef_.astype(np.float32), estimator.intercept_.copy(), link
    )


def _fit_head(
    kind: str, C: float, X, y: np.ndarray, balanced: bool = False, weights=None
) -> LinearHead:
    labels = sorted(set(y.tolist()), key=str)
    if len(labels) == 1:
        # A training set with a single label (tiny corpora, CV folds): always that label.
        return LinearHead((labels[0],), np.zeros((1, X.shape[1]), np.float32), np.zeros(1))
    with warnings.catch_warnings():
        # lbfgs may stop a little short of its tolerance on tiny sets; the model is still usable.
        warnings.filterwarnings("ignore", message=".*did not converge.*|.*failed to converge.*")
        estimator = _estimator(kind, C, y, balanced)
        return _linear_head(estimator.fit(X, y, sample_weight=weights))


def fit_model(
    examples: list[Example],
    spec: ModelSpec,
    not_technical: float = 0.5,
    faq_calibration: tuple | None = None,
) -> TriageModel:
    """Fit the featurizer and the three heads on ``examples``."""
    docs = [
        prepare(
            e.subject,
            e.body,
            subject_weight=spec.subject_weight,
            transliterate=spec.transliterate,
            products=spec.products,
            tools=spec.tools,
        )
        for e in examples
    ]
    featurizer = Featurizer(
        words=spec.words, chars=spec.chars, min_df=spec.min_df, char_weight=spec.char_weight
    ).fit(docs)
    X = featurizer.transform(docs)
    technical = np.array([e.technical for e in examples])
    if len(set(technical.tolist())) < 2:
        raise ConfigError(["the training examples need both technical and non-technical requests"])
    rows = np.flatnonzero(technical)
    weights = np.array([e.weight for e in examples], dtype=np.float64)
    heads = {
        "technical": _fit_head(*spec.technical, X, technical, "technical" in spec.balanced, weights)
    }
    topics, faqs = (
        np.array([getattr(examples[i], name) for i in rows]) for name in ("topic", "faq")
    )
    for name, y in (("topic", topics), ("faq", faqs)):
        heads[name] = _fit_head(
            *getattr(spec, name), X[rows], y, name in spec.balanced, weights[rows]
        )
    return TriageModel(
        featurizer,
        heads,
        not_technical,
        spec.subject_weight,
        spec.transliterate,
        spec.products,
        faq_calibration,
        spec.tools,
    )


def predict_scores(model: TriageModel, examples: list[Example]) -> list[Scores]:
    """The three heads' probabilities for each example."""
    from .classify import Classifier

    docs = [model.prepare(e.subject, e.body) for e in examples]
    return Classifier(model).head_scores(model.featurizer.transform(docs))


def _strata(examples: list[Example], folds: int) -> tuple[list[str], int]:
    """Labels to stratify the folds on (topic, or not technical) and the number of folds.

    Fewer folds than asked when a label has fewer examples, or there are fewer
    groups (writers), than folds.
    """
    strata = [e.topic if e.technical else "not-technical" for e in examples]
    smallest = min(Counter(strata).values())
    if smallest < 2:
        raise ConfigError(
            [f"too few examples to cross-validate: a label has only {smallest} example"]
        )
    groups = len({e.group for e in examples})
    if groups < 2:
        raise ConfigError(["too few writers to cross-validate: every example has the same one"])
    return strata, min(folds, smallest, groups)


def fold_numbers(examples: list[Example], folds: int = 5, seed: int = 0) -> list[int]:
    """The fold of each example: all of a group's (writer's) examples in one fold.

    Stratified on the topic (or not technical) as far as the groups allow, so that
    every fold's figures are about writers the model did not see in training.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    strata, folds = _strata(examples, folds)
    groups = [e.group for e in examples]
    out = [0] * len(examples)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for number, (_, test_rows) in enumerate(splitter.split(np.zeros(len(strata)), strata, groups)):
        for i in test_rows:
            out[i] = number
    return out


def cross_validate(
    examples: list[Example],
    spec: ModelSpec,
    folds: int = 5,
    on_fold=None,
    seed: int = 0,
    fold_of: list[int] | None = None,
) -> list[Scores]:
    """Out-of-fold probabilities of every example, the folds grouped by writer (fold_numbers)."""
    fold_of = fold_of if fold_of is not None else fold_numbers(examples, folds, seed)
    out: list[Scores | None] = [None] * len(examples)
    for number in sorted(set(fold_of)):
        train_rows = [i for i, f in enumerate(fold_of) if f != number]
        test_rows = [i for i, f in enumerate(fold_of) if f == number]
        model = fit_model([examples[i] for i in train_rows], spec)
        for i, scores in zip(
            test_rows, predict_scores(model, [examples[i] for i in test_rows]), strict=True
        ):
            out[i] = scores
        if on_fold:
            on_fold()
    return out


def _write_atomically(path: Path, write) -> None:
    """Write through ``write(file)`` to a temporary file beside ``path``, then rename it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp makes the file private; the model is not a secret and the daemon must read it.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _counts(examples: list[Example]) -> dict:
    tech = [e for e in examples if e.technical]
    return {
        "total": len(examples),
        "technical": len(tech),
        "not_technical": len(examples) - len(tech),
        "topic": dict(sorted(Counter(e.topic for e in tech).items())),
        "faq": dict(sorted(Counter(e.faq for e in tech).items())),
    }


def write_model(models_dir: Path, model: TriageModel, metadata: dict) -> Path:
    """Write the model and its metadata (with the model file's sha256), each atomically."""
    import joblib
    import scipy
    import sklearn

    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / MODEL_FILE
    _write_atomically(path, lambda file: joblib.dump(model, file, compress=("zlib", 6)))
    data = path.read_bytes()
    metadata = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_file": MODEL_FILE,
        "model_sha256": hashlib.sha256(data).hexdigest(),
        "model_bytes": len(data),
        "features": model.featurizer.n_features,
        "versions": {
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "python": platform.python_version(),
            "triage-daemon": __version__,
        },
        **metadata,
    }
    text = json.dumps(metadata, ensure_ascii=False, indent=2) + "\n"
    _write_atomically(models_dir / METADATA_FILE, lambda file: file.write(text.encode("utf-8")))
    return path


def train(
    corpus_dir: Path,
    models_dir: Path,
    *,
    extra: list[dict] | None = None,
    force: bool = False,
    console: Console | None = None,
    progress: bool = True,
    folds: int = 5,
    spec: ModelSpec | None = None,
    heldout: dict[str, list[Example]] | None = None,
) -> TrainReport:
    """Cross-validate, report, fit on everything and write the model to ``models_dir``.

    ``heldout`` names sets of requests never trained or tuned on (the blind set, the
    example mails; see heldout.load_heldout): the new model is only measured on
    them, and refused when it is worse than the current one on any of them. Without
    held-out sets the current model's CV score is the bar.

    Raises ConfigError for a bad corpus line (naming file:line) and ModelError when
    the current model is better and ``force`` is false.
    """
    started = time.perf_counter()
    console = console or Console()
    spec = spec or ModelSpec()
    models_dir = Path(models_dir)
    corpus, digest = load_corpus(Path(corpus_dir))
    corrections = extra_examples(extra or [])
    examples = with_corrections(corpus, corrections)
    counts = _counts(examples)
    console.print(
        f"Training on {counts['total']} examples ({counts['technical']} technical, "
        f"{counts['not_technical']} not technical; {len(corrections)} corrections of "
        f"{len(extra or [])}, each counting {CORRECTION_WEIGHT:g} times)"
    )
    fold_of = fold_numbers(examples, folds)
    folds = len(set(fold_of))
    with Progress(console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task("cross-validating", total=folds + 1)
        scores = cross_validate(examples, spec, fold_of=fold_of, on_fold=lambda: bar.advance(task))
        threshold, calibration = tune(examples, scores)
        cv = evaluate(examples, scores, fold_of)
        thresholds = {
            "not_technical": threshold,
            "not_technical_target_precision": NOT_TECHNICAL_PRECISION,
        }
        print_report(console, cv, thresholds, folds)
        bar.update(task, description="fitting the final model")
        model = fit_model(examples, spec, threshold, calibration)
        bar.advance(task)
    previous = previous_score(models_dir)
    measured = check_better(model, models_dir, heldout or {}, cv["score"], force, console)
    seconds = round(time.perf_counter() - started, 1)
    metadata = {
        "corpus": {**digest, "extra_examples": len(corrections)},
        "examples": counts,
        "spec": asdict(spec),
        "thresholds": thresholds,
        "faq_calibration": calibration,
        "cv": {"folds": folds, "grouped_by": "writer (old corpus: file and block of lines)", **cv},
        "heldout": measured,
        "train_seconds": seconds,
    }
    path = write_model(models_dir, model, metadata)
    console.print(
        f"Model written to {path} ({path.stat().st_size / 1e6:.1f} MB) in {seconds:.1f} s"
    )
    return TrainReport(
        counts["total"],
        cv["score"],
        cv,
        thresholds,
        seconds,
        True,
        previous,
        path,
        counts,
        measured,
    )
