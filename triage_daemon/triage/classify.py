"""Triage a request with the trained model: technical or not, topic, FAQ key, confidence, reasons.

Decision policy (thresholds: ``min_confidence`` and ``faq_min_confidence`` from the
config, ``not_technical`` tuned at training time and stored with the model):

1. Not technical only when P(not technical) >= the tuned threshold (chosen in
   cross-validation grouped by writer so that at least 98% of the unseen writers'
   mails called non-technical are; dropping a real technical question costs more
   than answering a stray one). When unsure, it is technical.
2. Otherwise technical, with the most probable topic. If P(technical) <
   ``min_confidence`` or the topic's probability < ``min_confidence``: FAQ "none"
   and ``review`` set. Unsure is a flag, not a topic: "other" is a real topic, so
   sending unsure mail there would make every unsure Webex or e-class question a
   wrong "other"; routing sends review tickets where the rules say (review_to).
3. FAQ key only when its confidence >= ``faq_min_confidence`` and it belongs to
   the chosen topic; otherwise "none" (a specialist answers). The FAQ confidence is
   the FAQ head's top probability mapped through an isotonic calibration fitted on
   the out-of-fold predictions at training time (the head's normalised one-vs-rest
   sigmoids understate it: a raw 0.51 is right 3 times in 4, a raw 0.75 19 times in
   20), so the threshold reads as "at least this share of the given keys are right".

``confidence`` holds P(technical) (or P(not technical) for a non-technical mail),
the chosen topic's probability (0.0 when not technical), and for the FAQ the
calibrated confidence of a given key or the probability of "none".

``explain`` lists the five words (or word pairs) of the mail that pushed hardest
towards the final decision: the FAQ key if one was given, else the topic, else
"not technical" (linear weight x tf-idf value, char n-grams summed into their word).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..catalogue import FAQ_KEYS, FAQ_TOPIC, NO_FAQ, TOPICS
from ..context import Budget, ParsedMail, Triage
from ..errors import ModelError, QuarantineMessage
from .features import Featurizer
from .textprep import ECLASS, EME, NO_PRODUCT, ONLY, TOOL, WEBEX, prepare, prepare_words

MODEL_FILE = "triage.joblib"
METADATA_FILE = "triage.json"
HEADS = ("technical", "topic", "faq")
RETRAIN = "run `triage-daemon train` to retrain"


@dataclass
class LinearHead:
    """One head of the model as plain arrays: a linear score per class and its link to probability.

    ``link`` is "softmax" (multinomial logistic regression), "logistic" (binary
    logistic regression: one score for ``classes[1]``) or "platt" (one-vs-rest
    scores calibrated by a sigmoid each, ``platt[k] = (a, b)``, normalised to sum to 1;
    binary: one score for ``classes[1]``), as scikit-learn computes them.
    """

    classes: tuple
    coef: np.ndarray
    intercept: np.ndarray
    link: str = "softmax"
    platt: list[tuple[float, float]] | None = None

    def proba(self, scores: list[float]) -> list[float]:
        """Class probabilities from one row of linear scores (plain floats: faster than numpy)."""
        if self.link == "softmax":
            top = max(scores)
            exp = [math.exp(v - top) for v in scores]
            total = sum(exp)
            return [v / total for v in exp]
        if self.link == "logistic":
            p = _sigmoid(scores[0])
            return [1 - p, p]
        p = [_sigmoid(-(a * v + b)) for v, (a, b) in zip(scores, self.platt, strict=True)]
        if len(self.classes) == 2:
            return [1 - p[0], p[0]]
        total = sum(p)
        return [v / total for v in p] if total > 0 else [1 / len(p)] * len(p)

    def direction(self, k: int, idx: np.ndarray) -> np.ndarray:
        """Weights of features ``idx`` pushing towards class ``k`` (for explanations)."""
        if len(self.coef) == 1:
            return self.coef[0, idx] if k == 1 else -self.coef[0, idx]
        if self.link == "softmax":
            columns = self.coef[:, idx]
            return columns[k] - columns.mean(axis=0)
        return self.coef[k, idx]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


@dataclass
class TriageModel:
    """What ``triage-daemon train`` writes: the featurizer, three heads, how text is prepared."""

    featurizer: Featurizer
    heads: dict[str, LinearHead]
    not_technical_threshold: float
    subject_weight: int = 2
    transliterate: bool = True
    products: bool = True
    # Isotonic map (x, y): FAQ head's top probability -> out-of-fold share of right keys.
    faq_calibration: tuple[list[float], list[float]] | None = None
    # Platform tools and screens as TOOL_<PLATFORM> tokens (textprep.tool_tokens).
    tools: bool = False

    def prepare(self, subject: str, body: str) -> str:
        return prepare(
            subject,
            body,
            subject_weight=self.subject_weight,
            transliterate=self.transliterate,
            products=self.products,
            tools=self.tools,
        )

    def prepare_words(self, subject: str, body: str) -> tuple[str, list[tuple[str, str]]]:
        """prepare(), and the mail's (word, canonical form) pairs for explanations."""
        if not self.transliterate:
            return self.prepare(subject, body), []
        return prepare_words(
            subject,
            body,
            subject_weight=self.subject_weight,
            products=self.products,
            tools=self.tools,
        )


@dataclass
class Scores:
    """The three heads' probabilities for one mail, by class name."""

    technical: float
    topic: dict[str, float]
    faq: dict[str, float]


class Classifier:
    """The trained model with the decision thresholds; see the module docstring for the policy."""

    def __init__(
        self,
        model: TriageModel,
        metadata: dict | None = None,
        *,
        min_confidence: float = 0.6,
        faq_min_confidence: float = 0.75,
    ):
        self.model = model
        self.metadata = metadata or {}
        self.min_confidence = min_confidence
        self.faq_min_confidence = faq_min_confidence
        heads = [model.heads[name] for name in HEADS]
        # One matrix for all heads (features x scores): one product per mail instead of three.
        self._coef_t = np.ascontiguousarray(np.vstack([h.coef for h in heads]).T, dtype=np.float64)
        self._intercept = np.concatenate([h.intercept for h in heads])
        cuts = np.cumsum([0] + [len(h.coef) for h in heads]).tolist()
        self._slices = [slice(a, b) for a, b in zip(cuts, cuts[1:], strict=False)]
        self._true_col = list(model.heads["technical"].classes).index(True)
        calibration = getattr(model, "faq_calibration", None)
        self._faq_calibration = (
            tuple(list(map(float, v)) for v in calibration) if calibration else None
        )

    @classmethod
    def load(
        cls, models_dir: Path, *, min_confidence: float = 0.6, faq_min_confidence: float = 0.75
    ) -> Classifier:
        """Load ``triage.joblib`` and ``triage.json`` from ``models_dir``.

        Raises ModelError when a file is missing or corrupt (the model file's sha256
        must be the one in the metadata), or when the model was made by another
        scikit-learn version than the one installed.
        """
        models_dir = Path(models_dir)
        metadata = read_metadata(models_dir)
        check_versions(metadata)
        model = _read_model(models_dir / MODEL_FILE, metadata)
        return cls(
            model, metadata, min_confidence=min_confidence, faq_min_confidence=faq_min_confidence
        )

    def classify(self, mail: ParsedMail) -> Triage:
        """Triage a parsed mail from its subject and what the sender wrote this time.

        The time is counted on the mail's read budget (see message.Budget): raises
        QuarantineMessage when the mail is over it ("too complex/slow to read").
        """
        mail.budget.start()
        try:
            return self.classify_text(mail.subject, mail.new_text.strip() or mail.text, mail.budget)
        finally:
            mail.budget.stop()

    def classify_text(self, subject: str, body: str, budget: Budget | None = None) -> Triage:
        """Triage one request given as a subject and a body (textprep reads only the
        start of a long one); with a ``budget``, it is checked between the steps."""
        doc, pairs = self.model.prepare_words(subject, body)
        _check(budget, "text preparation")
        idx, val = self.model.featurizer.vector(doc)
        _check(budget, "features")
        scores = self._scores((val @ self._coef_t.take(idx, axis=0) + self._intercept).tolist())
        return self._triage(scores, pairs, idx, val)

    def classify_many(self, mails: Iterable[tuple[str, str]]) -> list[Triage]:
        """Triage many (subject, body) pairs at once (one matrix product for all)."""
        prepared = [self.model.prepare_words(subject, body) for subject, body in mails]
        if not prepared:
            return []
        X = self.model.featurizer.transform([doc for doc, _ in prepared])
        rows = (np.asarray(X @ self._coef_t) + self._intercept).tolist()
        return [
            self._triage(
                self._scores(row),
                pairs,
                X.indices[X.indptr[i] : X.indptr[i + 1]],
                X.data[X.indptr[i] : X.indptr[i + 1]],
            )
            for i, (row, (_, pairs)) in enumerate(zip(rows, prepared, strict=True))
        ]

    def head_scores(self, X) -> list[Scores]:
        """The heads' probabilities for each row of a feature matrix."""
        return [
            self._scores(row) for row in (np.asarray(X @ self._coef_t) + self._intercept).tolist()
        ]

    def _scores(self, row: list[float]) -> Scores:
        heads = self.model.heads
        tech, topic, faq = (
            heads[name].proba(row[part]) for name, part in zip(HEADS, self._slices, strict=True)
        )
        return Scores(
            tech[self._true_col],
            dict(zip(heads["topic"].classes, topic, strict=True)),
            dict(zip(heads["faq"].classes, faq, strict=True)),
        )

    def _triage(
        self, s: Scores, pairs: list[tuple[str, str]], idx: np.ndarray, val: np.ndarray
    ) -> Triage:
        triage, head, label = self.decide(s)
        triage.explain = self.explain(head, label, pairs, idx, val)
        return triage

    def decide(self, s: Scores) -> tuple[Triage, str, object]:
        """Apply the policy to the heads' probabilities; also say which head to explain."""
        return decide(
            s,
            not_technical=self.model.not_technical_threshold,
            min_confidence=self.min_confidence,
            faq_min_confidence=self.faq_min_confidence,
            faq_calibration=self._faq_calibration,
        )

    def explain(
        self,
        head_name: str,
        label: object,
        pairs: list[tuple[str, str]],
        idx: np.ndarray,
        val: np.ndarray,
        top: int = 5,
    ) -> list[str]:
        """The ``top`` words of the mail that weighed most towards ``label`` of head ``head_name``.

        ``pairs`` are the mail's (word, canonical form) pairs, to show the mail's own words.
        """
        head = self.model.heads[head_name]
        weights = head.direction(list(head.classes).index(label), idx) * val
        wanted = min(top * 3, len(weights))
        if not wanted:
            return []
        chosen = np.argpartition(weights, len(weights) - wanted)[len(weights) - wanted :]
        words = _MailWords(pairs)
        names = self.model.featurizer.feature_names_
        totals: dict[str, float] = {}
        for weight, j in sorted(
            zip(weights[chosen].tolist(), idx[chosen].tolist(), strict=True), reverse=True
        ):
            if weight <= 0:
                break
            text = words.label(names[j])
            totals[text] = totals.get(text, 0.0) + weight
        best = sorted(totals.items(), key=lambda item: -item[1])[:top]
        return [f"{text} ({weight:+.2f})" for text, weight in best]


def _check(budget: Budget | None, step: str) -> None:
    reason = budget.overrun(f"classification: {step}") if budget else None
    if reason:
        raise QuarantineMessage(reason, stage="classify")


def decide(
    s: Scores,
    *,
    not_technical: float,
    min_confidence: float,
    faq_min_confidence: float,
    faq_calibration: tuple[list[float], list[float]] | None = None,
) -> tuple[Triage, str, object]:
    """The decision policy of the module docstring, on one mail's probabilities.

    ``faq_calibration`` maps the FAQ head's top probability to the chance that the key
    is right (see TriageModel). Returns the triage (without ``explain``), and the head
    and class that decided it.
    """
    if 1 - s.technical >= not_technical:
        conf = {"technical": 1 - s.technical, "topic": 0.0, "faq": 0.0}
        return Triage(False, None, None, _rounded(conf)), "technical", False
    topic = max(s.topic, key=s.topic.get)
    faq = max(s.faq, key=s.faq.get)
    faq_conf = _interpolate(s.faq[faq], *faq_calibration) if faq_calibration else s.faq[faq]
    conf = {"technical": s.technical, "topic": s.topic[topic], "faq": faq_conf}
    if s.technical < min_confidence or s.topic[topic] < min_confidence:
        conf["faq"] = s.faq.get(NO_FAQ, 0.0)
        return Triage(True, topic, NO_FAQ, _rounded(conf), review=True), "topic", topic
    if faq == NO_FAQ or faq_conf < faq_min_confidence or FAQ_TOPIC[faq] != topic:
        conf["faq"] = s.faq.get(NO_FAQ, 0.0)
        return Triage(True, topic, NO_FAQ, _rounded(conf)), "topic", topic
    return Triage(True, topic, faq, _rounded(conf)), "faq", faq


def _interpolate(x: float, xs: list[float], ys: list[float]) -> float:
    """Piecewise-linear interpolation as numpy.interp (clipped at both ends), on plain floats."""
    i = bisect_right(xs, x)
    if i == 0 or i == len(xs):
        return ys[0] if i == 0 else ys[-1]
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 > x0 else y1


def _rounded(conf: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 4) for key, value in conf.items()}


# Tokens that stand for no word of the mail, as the coordinator reads them.
_TOKEN_LABELS = {
    NO_PRODUCT: "[δεν αναφέρει εφαρμογή]",
    ONLY + WEBEX: "[αναφέρει μόνο Webex]",
    ONLY + ECLASS: "[αναφέρει μόνο e-class]",
    ONLY + EME: "[αναφέρει μόνο e-me]",
    TOOL + "ECLASS": "[εργαλείο του e-class]",
    TOOL + "EME": "[εργαλείο του e-me]",
    TOOL + "WEBEX": "[εργαλείο του Webex]",
    TOOL + "PSD": "[υπηρεσία του ΠΣΔ]",
}


class _MailWords:
    """The mail's own word behind a feature ("w:kodiko mu", "c:odik" -> "κωδικό μου", "κωδικό")."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.word = {}
        for word, form in reversed(pairs):
            if " " in form:
                self.word.update((token, word) for token in form.split())
            else:
                self.word[form] = word
        self.text = ""

    def label(self, name: str) -> str:
        kind, text = name.split(":", 1)
        if kind == "w":
            return " ".join(
                _TOKEN_LABELS.get(t) or _clean(self.word.get(t, t)) for t in text.split()
            )
        if not self.text:
            # All tokens in one string (" tok1 tok2 "): a char n-gram is found with one str.find,
            # and a leading or trailing space in it matches a word boundary as in char_wb.
            self.tokens = list(self.word)
            self.starts = list(accumulate((len(t) + 1 for t in self.tokens), initial=1))
            self.text = " " + " ".join(self.tokens) + " "
        at = self.text.find(text)
        if at < 0:
            return text.strip()
        token = self.tokens[bisect_right(self.starts, at + (text[0] == " ")) - 1]
        return _clean(self.word[token])


def _clean(word: str) -> str:
    return word.strip(".,;:!?()[]{}«»\"'*<>")[:40] or word[:40]


def read_metadata(models_dir: Path) -> dict:
    """The model's metadata (triage.json); ModelError when it is missing or unreadable."""
    path = models_dir / METADATA_FILE
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(
            f"no trained model in {models_dir} ({path.name} is missing): "
            f"run `triage-daemon train` to train one"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is unreadable or corrupt ({exc}): {RETRAIN}") from None
    if not isinstance(metadata, dict):
        raise ModelError(f"{path} is not a JSON object: {RETRAIN}")
    return metadata


def check_versions(metadata: dict) -> None:
    """ModelError unless the model was made with the scikit-learn (and numpy major) installed."""
    # The installed version from its metadata: importing scikit-learn itself is slow.
    installed = importlib.metadata.version("scikit-learn")
    made_with = metadata.get("versions", {})
    if made_with.get("scikit-learn") != installed:
        raise ModelError(
            f"the model was trained with scikit-learn {made_with.get('scikit-learn')}, "
            f"but {installed} is installed: {RETRAIN}"
        )
    numpy_major = str(made_with.get("numpy", "")).split(".")[0]
    if numpy_major != np.__version__.split(".")[0]:
        raise ModelError(
            f"the model was trained with numpy {made_with.get('numpy')}, "
            f"but {np.__version__} is installed: {RETRAIN}"
        )


def _read_model(path: Path, metadata: dict) -> TriageModel:
    import joblib

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(
            f"cannot read the model {path} ({exc.strerror or exc}): {RETRAIN}"
        ) from None
    if hashlib.sha256(data).hexdigest() != metadata.get("model_sha256"):
        raise ModelError(f"{path} does not match {METADATA_FILE} (corrupt or replaced): {RETRAIN}")
    try:
        # The model file is our own (checked against triage.json above); joblib unpickles it.
        model = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise ModelError(f"cannot load the model {path} ({exc}): {RETRAIN}") from None
    _check_model(model, path)
    return model


def _check_model(model: object, path: Path) -> None:
    if not isinstance(model, TriageModel) or set(model.heads) != set(HEADS):
        raise ModelError(f"{path} does not hold a triage model: {RETRAIN}")
    # A head may lack a label the corpus had no example of, but must not have unknown ones.
    expected = {"technical": {False, True}, "topic": set(TOPICS), "faq": {*FAQ_KEYS, NO_FAQ}}
    for name, labels in expected.items():
        classes = set(model.heads[name].classes)
        if not classes <= labels:
            raise ModelError(
                f"{path}: the {name} head's labels {sorted(map(str, classes - labels))} "
                f"are not in the catalogue: {RETRAIN}"
            )
    if set(model.heads["technical"].classes) != expected["technical"]:
        raise ModelError(f"{path}: the technical head does not know both answers: {RETRAIN}")


def classify_paths(paths: list[str], classifier: Classifier, stdin: BinaryIO) -> Iterator[dict]:
    """Classify message files ("-" reads one from ``stdin``): one dict per path.

    A file that cannot be read or parsed gives ``{"path": ..., "error": ...}``.
    """
    from ..parse.message import parse_message

    for path in paths:
        try:
            raw = stdin.read() if path == "-" else Path(path).read_bytes()
        except OSError as exc:
            yield {"path": path, "error": f"cannot read the file: {exc.strerror or exc}"}
            continue
        try:
            mail = parse_message(raw)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            yield {"path": path, "error": f"cannot parse the message: {exc}"}
            continue
        try:
            yield {"path": path, **classifier.classify(mail).as_dict()}
        except QuarantineMessage as signal:
            yield {"path": path, "error": f"cannot classify the message: {signal.reason}"}
