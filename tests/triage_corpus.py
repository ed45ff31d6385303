"""A small synthetic training corpus (every label of the catalogue) for the model's unit tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

# label (topic, faq) or None for not technical -> words that mark it.
MARKERS: dict[tuple[str, str] | None, str] = {
    ("webex", "webex-account"): "ενεργοποίηση λογαριασμού webex.sch.gr εγγραφή πρώτη φορά",
    ("webex", "webex-room-link"): "σύνδεσμος προσωπικής αίθουσας link στείλω στους μαθητές",
    ("webex", "webex-lobby"): "μαθητές περιμένουν lobby κλειδωμένη αίθουσα αναμονή",
    ("webex", "webex-audio-video"): "μικρόφωνο κάμερα ήχος ηχεία ακούγεται",
    ("webex", "webex-share"): "κοινή χρήση οθόνης παρουσίαση πίνακας",
    ("webex", "webex-mobile"): "κινητό tablet εφαρμογή android iphone",
    ("webex", "webex-phone"): "σταθερό τηλέφωνο αριθμός κλήσης dial-in",
    ("webex", "none"): "ηχογράφηση καταγραφή webex breakout",
    ("eclass", "eclass-login"): "σύνδεση eclass λάθος στοιχεία χρήστη login",
    ("eclass", "eclass-course"): "δημιουργία μαθήματος eclass εγγραφή μαθητών ανοιχτό κλειστό",
    ("eclass", "eclass-assignment"): "εργασία eclass ανέβασμα αρχείου υποβολή μέγεθος",
    ("eclass", "none"): "eclass βαθμολόγιο ασκήσεις εξαγωγή ημερολόγιο",
    ("eme", "eme-login"): "e-me σύνδεση λογαριασμός δεν μπαίνω στο e-me",
    ("eme", "eme-hive"): "κυψέλη e-me τοίχος πρόσκληση μελών",
    ("eme", "none"): "e-me ειδοποιήσεις εφαρμογές φωτογραφία προφίλ",
    ("other", "psd-account"): "κωδικός ΠΣΔ επαναφορά register.sch.gr νέος λογαριασμός",
    ("other", "none"): "εκτυπωτής laptop wifi ρούτερ windows ενημέρωση",
    None: "άδεια μισθοδοσία απουσίες ωρολόγιο πρόγραμμα μετάθεση σεμινάριο αναπλήρωση ύλη",
}
FILLER = (
    "καλησπέρα σας παρακαλώ ευχαριστώ πολύ σχολείο δημοτικό γυμνάσιο σήμερα χθες βοήθεια".split()
)


def example(label: tuple[str, str] | None, rng: random.Random, n: int) -> dict:
    words = MARKERS[label].split()
    body = rng.sample(words, k=max(3, len(words) - 1)) + rng.sample(FILLER, k=4)
    rng.shuffle(body)
    subject = " ".join(rng.sample(words, k=2)) if n % 3 else ""
    topic, faq = label if label else (None, None)
    return {
        "id": f"synthetic-{n}",
        "subject": subject,
        "body": " ".join(body),
        "technical": label is not None,
        "topic": topic,
        "faq": faq,
        "lang": "el",
    }


def examples(per_label: int = 5, seed: int = 0) -> list[dict]:
    """``per_label`` examples of each label (three times as many non-technical)."""
    rng = random.Random(seed)
    out = []
    for label in MARKERS:
        for _ in range(per_label * (3 if label is None else 1)):
            out.append(example(label, rng, len(out)))
    return out


def write_corpus(folder: Path, rows: list[dict], name: str = "synthetic.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path
