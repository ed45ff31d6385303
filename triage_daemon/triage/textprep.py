"""Text preparation for the classifier: Greek, Greeklish and English folded to one canonical form.

The canonical form is a lower-case Latin "phonetic skeleton" of each word, so that
"κωδικός", "ΚΩΔΙΚΟΣ", "Κωδικος", "kwdikos" and "kodikos" all become ``kodikos``:

1. NFKC and case folding (which also folds the final sigma ς to σ); product names
   written as several words ("e class", "π. σ. δ.") are joined into one word.
2. Per word: URLs and e-mail addresses become tokens that keep their host; product
   names (Webex, e-class/η-τάξη, e-me, ΠΣΔ, sch.gr, myschool) become one upper-case
   token each; upper-case tokens are out of reach of the next step, so they stay
   recognisable.
3. Per word: accents stripped (NFD), Greeklish mapped to Greek letters ("th"/"8" -> θ,
   "ch"/"x" -> χ, "w" -> ω, "h" -> η ...), then Greek mapped to the skeleton: vowels
   that sound alike collapse (ι/η/υ/ει/οι -> i, ο/ω -> o, αι -> e, ου -> u), as do
   β/μπ -> b, δ/ντ -> d, γ/γκ/γγ -> g, θ -> th; doubled letters are written once.

Steps 2-3 are cached per word (mail vocabulary repeats a lot): preparing a typical
mail takes some 50 µs. features.Featurizer turns prepared text into tf-idf vectors.
"""

from __future__ import annotations

import re
import unicodedata

# Product names and hosts become these upper-case tokens.
WEBEX, ECLASS, EME, PSD, SCHGR, MYSCHOOL = "WEBEX", "ECLASS", "EME", "PSD", "SCHGR", "MYSCHOOL"
URL, EMAIL, NUMBER, MEETLINK = "URL", "EMAIL", "NUM", "MEETLINK"
NO_PRODUCT, ONLY = "PRODUCT_NONE", "PRODUCT_ONLY_"

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_COMBINING = {c: None for c in range(0x300, 0x370)}

# Product names written as several words: joined on the whole text before it is split.
_PHRASE_HINTS = ("web ex", "e class", "σ. δ", "σ δ", "s. d", "s d", "πανελλ", "my school")
_PHRASE_RE = re.compile(
    r"\bweb ex\b|\be class\b|\bπ\.? σ\.? δ\b|\bp\.? s\.? d\b"
    r"|\bπανελλ[ηή]νιο σχολικ[οό] δ[ιί]κτυο|\bmy school\b"
)
_EMAIL_RE = re.compile(r"[\w.+'-]+@((?:[a-z0-9-]+\.)+[a-z]{2,})")
_URL_HINT = re.compile(r"[a-z0-9]\.[a-z]")
_URL_RE = re.compile(
    r"(?:https?://|www\.)([a-z0-9.-]+)(\S*)"
    r"|\b((?:[a-z0-9-]+\.)+(?:gr|com|org|net|eu|edu|io))\b(/\S*)?"
)

# (substrings that must occur, pattern, token); patterns see case-folded text with accents.
_PRODUCTS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = tuple(
    (hints, re.compile(pattern), token)
    for hints, pattern, token in (
        (("web", "πεξ", "πέξ"), r"\bweb-?ex\w*|\b(?:γου|ου|β)[εέ]μπ[εέ]ξ\w*", WEBEX),
        (
            ("class", "ταξ", "τάξ", "tax", "taks", "κλα", "κλά", "klas"),
            r"\be-?class\w*|\bε-?κλ[αά]σσ?\w*|\bη-?τ[αά]ξη\w*|\b[ih]-ta(?:x|ks)[ih]\b|\beklass?\b",
            ECLASS,
        ),
        (("eme", "e-me"), r"\be-?me\b", EME),
        (
            ("σδ", "σ.δ", "psd", "s.d", "πανελλ"),
            r"\bπ\.?σ\.?δ\b\.?|\bp\.?s\.?d\b\.?|\bπανελλ[ηή]νιοσχολικ[οό]δ[ιί]κτυο\w*",
            PSD,
        ),
        (("school",), r"\bmy-?school\w*", MYSCHOOL),
    )
)

# Hosts: which product tokens a host (of a URL or an e-mail address) implies.
_HOST_PRODUCTS: tuple[tuple[str, str], ...] = (
    ("webex", WEBEX),
    ("eclass", ECLASS),
    ("e-me", EME),
    ("sch.gr", SCHGR),
    ("myschool", MYSCHOOL),
)

_GREEKLISH_DIGRAPHS: tuple[tuple[str, str], ...] = (
    ("th", "θ"),
    ("ch", "χ"),
    ("kh", "χ"),
    ("ph", "φ"),
)
# "8elw" (θέλω), "3erw" (ξέρω): a digit inside a word stands for the letter it looks like.
_GREEKLISH_DIGITS = re.compile(r"(?<=[a-zα-ω])[83]|[83](?=[a-zα-ω])")
_DIGIT_LETTER = {"8": "θ", "3": "ξ"}
_GREEKLISH_LETTERS = str.maketrans(
    {
        "a": "α",
        "b": "β",
        "c": "κ",
        "d": "δ",
        "e": "ε",
        "f": "φ",
        "g": "γ",
        "h": "η",
        "i": "ι",
        "j": "τζ",
        "k": "κ",
        "l": "λ",
        "m": "μ",
        "n": "ν",
        "o": "ο",
        "p": "π",
        "q": "κ",
        "r": "ρ",
        "s": "σ",
        "t": "τ",
        "u": "υ",
        "v": "β",
        "w": "ω",
        "x": "χ",
        "y": "υ",
        "z": "ζ",
    }
)

# Greek letter pairs that sound as one sound, replaced before single letters.
_GREEK_DIGRAPHS: tuple[tuple[str, str], ...] = (
    ("ου", "u"),
    ("ει", "i"),
    ("οι", "i"),
    ("υι", "i"),
    ("αι", "e"),
    ("αυ", "av"),
    ("ευ", "ev"),
    ("μπ", "b"),
    ("ντ", "d"),
    ("γκ", "g"),
    ("γγ", "g"),
    ("ξ", "ks"),
    ("ψ", "ps"),
    ("θ", "th"),
)
_GREEK_LETTERS = str.maketrans(
    {
        "α": "a",
        "β": "b",
        "γ": "g",
        "δ": "d",
        "ε": "e",
        "ζ": "z",
        "η": "i",
        "ι": "i",
        "κ": "k",
        "λ": "l",
        "μ": "m",
        "ν": "n",
        "ο": "o",
        "π": "p",
        "ρ": "r",
        "σ": "s",
        "ς": "s",
        "τ": "t",
        "υ": "i",
        "φ": "f",
        "χ": "x",
        "ω": "o",
    }
)

_LONG_NUMBER = re.compile(r"\d{5,}")
_DOUBLED = re.compile(r"([a-z])\1+")
_NOT_TOKEN = re.compile(r"[^0-9a-zA-Z_]+")
_NOT_WORD = re.compile(r"\W+")

_CACHE_LIMIT = 200_000
_forms: dict[str, str] = {}

# Input caps (issue 9). The entity patterns above are quadratic in the length of one
# word ("aaaa...@" took 59 s at 100 KB), and the whole text costs about 20 µs a word:
# longer words are cut (the corpus's longest is 54 characters; a URL keeps its host),
# and only the start of a long subject or body is read (the corpus's longest body is
# 680 characters; a question is at the top of a mail).
MAX_WORD = 200
MAX_SUBJECT = 1_000
MAX_BODY = 20_000


def fold(text: str) -> str:
    """NFKC, case folding (ς -> σ) and one kind of dash; accents stay (see strip_accents)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    for dash in _DASHES:
        if dash in text:
            text = text.replace(dash, "-")
    return text


def strip_accents(text: str) -> str:
    """Remove combining marks (τόνοι, διαλυτικά) after canonical decomposition."""
    return unicodedata.normalize("NFD", text).translate(_COMBINING)


def _host_tokens(host: str, kind: str) -> str:
    """The tokens standing for a URL or e-mail host: the kind, the host, its products."""
    host = host.strip(".-").removeprefix("www.")
    tokens = [kind, "H_" + re.sub(r"[^a-z0-9]+", "_", host).upper()]
    tokens += [token for name, token in _HOST_PRODUCTS if name in host]
    return " " + " ".join(tokens) + " "


def _url_tokens(match: re.Match[str]) -> str:
    host = match.group(1) or match.group(3) or ""
    path = match.group(2) or match.group(4) or ""
    # A personal Webex room link (.../meet/<user>) is a strong sign of its own.
    return _host_tokens(host, URL) + (MEETLINK + " " if "/meet/" in path else "")


def mark_entities(text: str) -> str:
    """Replace e-mail addresses, URLs, product names and long numbers in folded text by tokens."""
    if "@" in text:
        text = _EMAIL_RE.sub(lambda m: _host_tokens(m.group(1), EMAIL), text)
    if _URL_HINT.search(text):
        text = _URL_RE.sub(_url_tokens, text)
    for hints, pattern, token in _PRODUCTS:
        if any(hint in text for hint in hints):
            text = pattern.sub(f" {token} ", text)
    return _LONG_NUMBER.sub(f" {NUMBER} ", text)


def greeklish_to_greek(text: str) -> str:
    """Map lower-case Latin letters (Greeklish) to Greek letters; upper case is left alone."""
    for latin, greek in _GREEKLISH_DIGRAPHS:
        text = text.replace(latin, greek)
    text = _GREEKLISH_DIGITS.sub(lambda m: _DIGIT_LETTER[m.group()], text)
    return text.translate(_GREEKLISH_LETTERS)


def greek_to_skeleton(text: str) -> str:
    """Map Greek letters (no accents) to the phonetic Latin skeleton of the module docstring."""
    for greek, latin in _GREEK_DIGRAPHS:
        text = text.replace(greek, latin)
    return _DOUBLED.sub(r"\1", text.translate(_GREEK_LETTERS))


def _form(word: str) -> str:
    if word.isupper() and word.isascii():
        return word
    skeleton = greek_to_skeleton(greeklish_to_greek(strip_accents(mark_entities(word))))
    return _NOT_TOKEN.sub(" ", skeleton).strip()


def word_form(word: str) -> str:
    """The canonical form of one folded word: '' for punctuation, tokens kept as they are.

    A word may give several tokens ("κωδικό/password" -> "kodiko pasord",
    "https://eclass.sch.gr/" -> "URL H_ECLASS_SCH_GR ECLASS SCHGR").
    """
    form = _forms.get(word)
    if form is None:
        if len(_forms) >= _CACHE_LIMIT:
            _forms.clear()
        form = _forms[word] = _form(word)
    return form


def join_phrases(text: str) -> str:
    """Write product names spelled as several words ("e class", "π. σ. δ.") as one word."""
    if any(hint in text for hint in _PHRASE_HINTS):
        text = _PHRASE_RE.sub(lambda m: m.group().replace(" ", ""), text)
    return text


def folded_words(text: str) -> list[str]:
    """The whitespace-separated words of ``text`` after folding and joining product phrases,
    each cut to MAX_WORD characters."""
    return [word[:MAX_WORD] for word in join_phrases(fold(text)).split()]


def word_pairs(text: str) -> list[tuple[str, str]]:
    """(folded word, canonical form) for each word of ``text``; used to explain decisions."""
    words = folded_words(text)
    return list(zip(words, _forms_of(words), strict=True))


def _forms_of(words: list[str]) -> list[str]:
    forms = list(map(_forms.get, words))
    return [word_form(word) for word in words] if None in forms else forms


def canonical(text: str, *, transliterate: bool = True) -> str:
    """The canonical token string of ``text``: space-separated skeleton words and entity tokens.

    With ``transliterate=False`` words are only folded, stripped of accents and their
    entities marked (used to measure what transliteration brings).
    """
    words = folded_words(text)
    if not transliterate:
        return _NOT_WORD.sub(" ", strip_accents(mark_entities(" ".join(words)))).strip()
    return " ".join(filter(None, _forms_of(words)))


TOOL = "TOOL_"
# Built on first use from platforms.TOOLS: canonical first word -> [(the other words, is the
# last a prefix, platform)], and for one-word prefixes: length -> {prefix: platform}.
_tool_words: dict[str, list[tuple[tuple[str, ...], bool, str]]] = {}
_tool_prefixes: dict[int, dict[str, str]] = {}
_tool_cache: dict[str, list[tuple[tuple[str, ...], bool, str]]] = {}


def _tool_index() -> None:
    from .platforms import TOOLS

    for platform, terms in TOOLS.items():
        for term in terms:
            words = canonical(term.rstrip("*")).split()
            prefix = term.endswith("*")
            if len(words) == 1 and prefix:
                _tool_prefixes.setdefault(len(words[0]), {})[words[0]] = platform
            elif words:
                _tool_words.setdefault(words[0], []).append((tuple(words[1:]), prefix, platform))


def _tool_entries(token: str) -> list[tuple[tuple[str, ...], bool, str]]:
    """The tool terms that may start at ``token`` (cached per token)."""
    entries = _tool_cache.get(token)
    if entries is None:
        entries = list(_tool_words.get(token, ()))
        for length, prefixes in _tool_prefixes.items():
            if token[:length] in prefixes:
                entries.append(((), False, prefixes[token[:length]]))
        if len(_tool_cache) >= _CACHE_LIMIT:
            _tool_cache.clear()
        _tool_cache[token] = entries
    return entries


def _term_at(tokens: list[str], i: int, rest: tuple[str, ...], prefix: bool) -> bool:
    following = tokens[i + 1 : i + 1 + len(rest)]
    if len(following) < len(rest) or following[:-1] != list(rest[:-1]):
        return False
    return not rest or (following[-1].startswith(rest[-1]) if prefix else following[-1] == rest[-1])


def tool_tokens(text: str) -> list[str]:
    """``TOOL_<PLATFORM>`` for each platform tool or screen named in canonical ``text``.

    See platforms.py: "κυψέλη" gives TOOL_EME, "κοινή χρήση" TOOL_WEBEX, "Εργασίες"
    TOOL_ECLASS, whether or not the mail names the platform itself.
    """
    if not _tool_words:
        _tool_index()
    tokens = text.split()
    found = []
    for i, token in enumerate(tokens):
        for rest, prefix, platform in _tool_entries(token):
            if _term_at(tokens, i, rest, prefix):
                found.append(TOOL + platform)
                break
    return found


def product_tokens(text: str) -> list[str]:
    """Tokens about which products a canonical text names: none, or exactly one.

    A device or connection problem that names no product is usually topic "other";
    a linear model cannot learn "no product named" from the product tokens alone.
    """
    named = {token for token in (WEBEX, ECLASS, EME) if token in text}
    if not named:
        return [NO_PRODUCT]
    return [ONLY + named.pop()] if len(named) == 1 else []


def prepare(
    subject: str,
    body: str,
    *,
    subject_weight: int = 2,
    transliterate: bool = True,
    products: bool = True,
    tools: bool = False,
) -> str:
    """The classifier's input for one mail: the subject ``subject_weight`` times, then the body.

    With ``products``, the tokens of product_tokens() are added at the end; with
    ``tools``, those of tool_tokens(). Only the first MAX_SUBJECT and MAX_BODY
    characters are read.
    """
    subject = canonical(subject[:MAX_SUBJECT], transliterate=transliterate)
    body = canonical(body[:MAX_BODY], transliterate=transliterate)
    text = " ".join([subject] * subject_weight + [body]) if subject else body
    return _with_tokens(text, products, tools)


def _with_tokens(text: str, products: bool, tools: bool) -> str:
    extra = (product_tokens(text) if products else []) + (tool_tokens(text) if tools else [])
    return " ".join([text, *extra]) if extra else text


def prepare_words(
    subject: str, body: str, *, subject_weight: int = 2, products: bool = True, tools: bool = False
) -> tuple[str, list[tuple[str, str]]]:
    """prepare() (with transliteration) and the (folded word, form) pairs of subject and body."""
    pairs = word_pairs(subject[:MAX_SUBJECT])
    subject = " ".join(filter(None, (form for _, form in pairs)))
    body_pairs = word_pairs(body[:MAX_BODY])
    body = " ".join(filter(None, (form for _, form in body_pairs)))
    text = " ".join([subject] * subject_weight + [body]) if subject else body
    return _with_tokens(text, products, tools), pairs + body_pairs
