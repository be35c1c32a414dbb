"""Which language a text is in, by script: enough to answer in the asker's language.

>>> detect_language("FlashAttention-3の主な貢献は？")
'ja'
"""

from __future__ import annotations

import re

_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LETTERS = re.compile(r"[^\W\d_]")

NAMES = {"en": "English", "ja": "Japanese", "zh": "Chinese", "ko": "Korean", "ru": "Russian"}


def detect_language(text: str) -> str:
    """An ISO 639-1 code guessed from the script of the text; English when unsure."""
    letters = len(_LETTERS.findall(text)) or 1
    kana, han = len(_KANA.findall(text)), len(_HAN.findall(text))
    if kana:
        return "ja"
    if han / letters > 0.2:
        return "zh"
    if len(_HANGUL.findall(text)) / letters > 0.2:
        return "ko"
    if len(_CYRILLIC.findall(text)) / letters > 0.3:
        return "ru"
    return "en"


def language_name(code: str) -> str:
    return NAMES.get(code, code)
