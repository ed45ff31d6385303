"""Turn MIME charset labels into Python codecs and bytes into text, with fallbacks.

Real Greek mail often declares no charset or the wrong one, so decoding never
fails: the declared charset when it fits, else UTF-8, then windows-1253, then
latin-1 (see decode_bytes).
"""

from __future__ import annotations

import codecs
import re
from functools import lru_cache

# MIME names Python's codec registry does not know (it knows greek, greek8,
# iso-8859-7, iso_8859-7, elot_928, ecma-118, windows-1253 and cp1253).
_CHARSET_ALIASES = {
    "x-cp1253": "cp1253",
    "win-1253": "cp1253",
    "win1253": "cp1253",
    "windows1253": "cp1253",
    "cp-1253": "cp1253",
    "ms-greek": "cp1253",
    "iso-ir-126": "iso8859-7",
    "csisolatingreek": "iso8859-7",
    "iso-8859-7-i": "iso8859-7",
    "x-gbk": "gbk",
    "uft-8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-mac-cyrillic": "mac-cyrillic",
    "iso-8859-8-i": "iso8859-8",
    "ks_c_5601-1987": "cp949",
}
# Single-byte charsets: bytes that are valid UTF-8 under such a label are UTF-8.
_SINGLE_BYTE = re.compile(r"^(iso8859|cp12|cp4|cp8|latin|koi8|mac-|ascii|tis)")
_NOT_ASCII_COMPATIBLE = ("utf-16", "utf-32", "utf-7", "iso2022", "hz")
_MAX_LABEL = 128


def codec_name(charset: str | None) -> str | None:
    """The Python codec name for a MIME charset label, or None if unknown or not text."""
    # Real labels are short (the longest registered is 45 characters); a longer one
    # would only fill the cache (256 entries of up to a whole header each).
    if charset and len(charset) > _MAX_LABEL:
        return None
    return _codec_name(charset)


@lru_cache(maxsize=256)
def _codec_name(charset: str | None) -> str | None:
    label = re.match(r"[\w.:+-]+", (charset or "").strip().strip("\"'"))
    if not label:
        return None
    name = _CHARSET_ALIASES.get(label.group(0).lower(), label.group(0).lower())
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    return info.name if getattr(info, "_is_text_encoding", True) else None


def decode_bytes(
    data: bytes, charset: str | None, first_guess: str | None = None
) -> tuple[str, str]:
    """(text, codec used): the declared charset when it decodes, else UTF-8, then
    windows-1253, then latin-1 (which always decodes). Bytes that are valid
    UTF-8 under a single-byte label are UTF-8 (a very common mislabel)."""
    codec = codec_name(charset)
    if data.isascii() and not (codec or "").startswith(_NOT_ASCII_COMPATIBLE):
        return data.decode("ascii"), codec or "ascii"
    if codec and _SINGLE_BYTE.match(codec):
        candidates = ("utf-8", codec, "cp1253")
    else:
        candidates = (codec or "utf-8", "utf-8", codec_name(first_guess) or "utf-8", "cp1253")
    for name in candidates:
        try:
            return data.decode(name), name
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1"), "iso8859-1"
