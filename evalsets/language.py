"""A small, dependency-free language guess: enough to find non-English prompts for the edge-case quota.

Scripts other than Latin decide at once (Cyrillic → ru, Han → zh, …); Latin text is scored by its share of
very common function words in a handful of languages. A record's own metadata (`language`, `lang`, `locale`)
wins over the guess.
"""
from __future__ import annotations

import re
from typing import Any

_STOP = {
    "en": "the and of to is in that it you for this with are on be what how can i my do not your have",
    "es": "el la de que y en los las es por un una para con no se del lo como más pero sus al",
    "fr": "le la les de des et est un une que en pour pas qui dans sur ce il je vous avec du au",
    "de": "der die das und ist nicht ein eine zu den mit von sich auf für ich sie es dem wie auch",
    "pt": "o a os as de que e do da em um uma para não com é por se mais dos das como",
    "it": "il la di che e è un una per non con del della sono le gli si mi come ma",
    "nl": "de het een en van is dat in niet op te voor zijn met ik je die er ook",
}
_STOPSETS = {lang: set(words.split()) for lang, words in _STOP.items()}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_SCRIPTS = (
    ("ja", ((0x3040, 0x30FF),)),
    ("ko", ((0xAC00, 0xD7AF), (0x1100, 0x11FF))),
    ("zh", ((0x4E00, 0x9FFF), (0x3400, 0x4DBF))),
    ("ru", ((0x0400, 0x04FF),)),
    ("ar", ((0x0600, 0x06FF),)),
    ("he", ((0x0590, 0x05FF),)),
    ("hi", ((0x0900, 0x097F),)),
    ("el", ((0x0370, 0x03FF),)),
    ("th", ((0x0E00, 0x0E7F),)),
)
NAMES = {
    "english": "en", "spanish": "es", "french": "fr", "german": "de", "portuguese": "pt", "italian": "it",
    "dutch": "nl", "russian": "ru", "chinese": "zh", "japanese": "ja", "korean": "ko", "arabic": "ar",
}


def guess_language(text: str) -> str:
    """An ISO 639-1 code, "other" for an unrecognised script, or "und" when there are no words to go by."""
    sample = text[:3000]
    letters = [ch for ch in sample if ch.isalpha()]
    if not letters:
        return "und"
    non_latin = [ch for ch in letters if ord(ch) > 0x24F]
    if len(non_latin) > 0.3 * len(letters):
        counts = {code: sum(1 for ch in non_latin if any(lo <= ord(ch) <= hi for lo, hi in ranges))
                  for code, ranges in _SCRIPTS}
        if counts["ja"]:
            return "ja"
        code, n = max(counts.items(), key=lambda kv: kv[1])
        return code if n else "other"
    words = [w.lower() for w in _WORD.findall(sample)[:400]]
    if not words:
        return "und"
    scores = {lang: sum(1 for w in words if w in stop) for lang, stop in _STOPSETS.items()}
    best = max(scores, key=lambda lang: (scores[lang], lang == "en"))
    if scores[best] == 0:
        return "und"
    return best


def language_of(meta: dict[str, Any], text: str) -> str:
    for key in ("language", "lang", "locale"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            v = value.strip().lower()
            return NAMES.get(v, v.split("-")[0].split("_")[0][:8])
    return guess_language(text)
