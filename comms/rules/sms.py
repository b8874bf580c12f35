"""SMS encoding and segment counting (GSM 03.38 / UCS-2), and transliteration to GSM-7.

A message is GSM-7 when every character is in the GSM basic set or its
extension table; otherwise the whole message is sent as UCS-2. Limits:

- GSM-7: 160 septets in one segment, 153 per segment when concatenated; an
  extension character (``^{}\\[~]|€`` and form feed) is an escape plus a
  septet, so it costs 2 and is never split across two segments.
- UCS-2: 70 UTF-16 units in one segment, 67 when concatenated; a character
  outside the BMP (most emoji) is a surrogate pair, costs 2 and is never split.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from comms.config import int_setting

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_CHARS = GSM7_BASIC | GSM7_EXTENSION
_EXT_RE = re.compile("[" + re.escape("".join(sorted(GSM7_EXTENSION))) + "]")
_NON_GSM_RE = re.compile("[^" + re.escape("".join(sorted(GSM7_CHARS))) + "]")

GSM7 = "GSM-7"
UCS2 = "UCS-2"
LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}

# Replacements tried before the Unicode decomposition fallback: letters that
# NFKD does not reduce to a GSM-7 character, and typographic punctuation.
_TRANSLIT = {
    "„": '"',
    "“": '"',
    "”": '"',
    "‟": '"',
    "«": '"',
    "»": '"',
    "″": '"',
    "‚": "'",
    "‘": "'",
    "’": "'",
    "‛": "'",
    "‹": "'",
    "›": "'",
    "′": "'",
    "`": "'",
    "´": "'",
    "–": "-",
    "—": "-",
    "‒": "-",
    "―": "-",
    "‐": "-",
    "‑": "-",
    "−": "-",
    "…": "...",
    "•": "*",
    "·": ".",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u200b": "",
    "\t": " ",
    "ç": "Ç",  # GSM-7 only has the capital
    "Ł": "L",
    "ł": "l",
    "Đ": "D",
    "đ": "d",
    "Ø": "Ø",
    "œ": "oe",
    "Œ": "OE",
    "ÿ": "y",
    "™": "TM",
    "©": "(c)",
    "®": "(R)",
    "°": "o",
    "×": "x",
    "÷": "/",
}


@dataclass(frozen=True)
class SmsInfo:
    """What a text costs as an SMS."""

    chars: int  # characters as a person counts them (code points)
    units: int  # septets (GSM-7) or UTF-16 units (UCS-2)
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int  # 0 for an empty text

    @property
    def per_segment(self) -> int:
        """Units that fit one segment at this length (for "N left" hints)."""
        single, multi = LIMITS[self.encoding]
        return single if self.segments <= 1 else multi

    def describe(self) -> str:
        """'123 characters · GSM-7 · 1 segment'."""
        seg = "segment" if self.segments == 1 else "segments"
        return f"{self.chars} characters · {self.encoding} · {self.segments} {seg}"


def is_gsm7(text: str) -> bool:
    """True when every character has a GSM-7 encoding (basic or extension)."""
    return GSM7_CHARS.issuperset(text)


def _costs(text: str, encoding: str) -> list[int]:
    if encoding == GSM7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def _segments(costs: list[int], single: int, multi: int) -> int:
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single:
        return 1
    # Greedy packing: a 2-unit character that does not fit opens a new segment.
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            segments += 1
            used = 0
        used += cost
    return segments


@lru_cache(maxsize=65_536)
def sms_info(text: str) -> SmsInfo:
    """Characters, units, encoding and segments of one SMS text."""
    text = text or ""
    if is_gsm7(text):
        encoding = GSM7
        wide = 0 if GSM7_EXTENSION.isdisjoint(text) else len(_EXT_RE.findall(text))
    else:
        encoding = UCS2
        wide = len(text.encode("utf-16-le")) // 2 - len(text)
    units = len(text) + wide
    single, multi = LIMITS[encoding]
    if units == 0:
        segments = 0
    elif units <= single:
        segments = 1
    elif not wide:
        segments = -(-units // multi)
    else:  # a 2-unit character is never split: pack character by character
        segments = _segments(_costs(text, encoding), single, multi)
    return SmsInfo(len(text), units, encoding, segments)


def split_segments(text: str) -> list[str]:
    """The parts an SMS travels in (a 2-unit character is never split across two parts)."""
    text = text or ""
    info = sms_info(text)
    if info.segments <= 1:
        return [text] if text else []
    _, multi = LIMITS[info.encoding]
    parts, start, used = [], 0, 0
    for i, cost in enumerate(_costs(text, info.encoding)):  # the packing of _segments
        if used + cost > multi:
            parts.append(text[start:i])
            start, used = i, 0
        used += cost
    parts.append(text[start:])
    return parts


@lru_cache(maxsize=4096)
def _translit_char(c: str) -> str:
    if c in GSM7_CHARS:
        return c
    if c in _TRANSLIT:
        return _TRANSLIT[c]
    # Decompose (ř -> r + caron, ﬁ -> fi) and keep what GSM-7 can carry.
    decomposed = unicodedata.normalize("NFKD", c)
    kept = "".join(d for d in decomposed if d in GSM7_CHARS and not unicodedata.combining(d))
    if kept:
        return kept
    # A composed form may itself be GSM-7 (e + grave -> è).
    composed = unicodedata.normalize("NFC", decomposed)
    if composed in GSM7_CHARS:
        return composed
    return "?"


def to_gsm7(text: str) -> str:
    """Transliterate to GSM-7: Czech diacritics dropped (ř -> r, ů -> u), „“ -> ", – -> -.

    Characters GSM-7 already has (é, à, ü, ñ ...) are kept; anything with no
    sensible replacement (emoji) becomes '?'.
    """
    if not text:
        return ""
    if is_gsm7(text):
        return text
    # The regex engine skips the GSM-7 runs in C; only the others reach Python.
    return _NON_GSM_RE.sub(_replace, unicodedata.normalize("NFC", text))


def _replace(m: re.Match[str]) -> str:
    return _translit_char(m.group())


def max_segments() -> int:
    """Segments above which the composer warns (COMMS_SMS_MAX_SEGMENTS, default 3)."""
    return int_setting("COMMS_SMS_MAX_SEGMENTS", "comms", "sms_max_segments", 3)
