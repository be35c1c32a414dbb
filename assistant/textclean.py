"""What a person typed, without what no one can see: terminal escape sequences, control
characters and invisible format characters (zero-width spaces, joiners, bidi overrides).

>>> visible_text("\\x1b[31m\\u200b flash\\x00 attention \\u2066")
'flash attention'
"""

from __future__ import annotations

import re
import unicodedata

# ANSI/VT escape sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), and
# two-character escapes; also their 8-bit C1 forms (CSI U+009B, OSC U+009D).
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[@-Z\\-_]"
)
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def visible_text(text: str) -> str:
    """`text` with escape sequences and invisible characters removed and whitespace runs
    (control characters such as NUL count as space) collapsed to one space."""
    text = _ESCAPES.sub(" ", text)
    kept = []
    for char in text:
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) in _INVISIBLE:
            kept.append(" " if unicodedata.category(char) == "Cc" else "")
        else:
            kept.append(char)
    return " ".join("".join(kept).split())
