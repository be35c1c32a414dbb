"""Neutral rich text: how the core writes its own messages (help, errors, notices).

Each connector renders it in its platform's markup (Slack mrkdwn, Discord Markdown, the
terminal). A span is literal text with a style, so no character in it has a meaning of
its own: user text quoted inside a core message cannot format, ping or link anywhere.

>>> message = rich("No papers match ", quoted("LoRA"), ". Try ", code("/paper help"), ".")
>>> message.plain
'No papers match “LoRA”. Try /paper help.'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Style = Literal["plain", "bold", "italic", "code", "link"]
_CODE = re.compile(r"`([^`\n]+)`")


@dataclass(frozen=True)
class Span:
    """A run of literal text in one style (`url` is the target of a link)."""

    text: str
    style: Style = "plain"
    url: str | None = None


@dataclass(frozen=True)
class RichText:
    """Spans in order; newlines in a span's text break lines."""

    spans: tuple[Span, ...] = ()

    @property
    def plain(self) -> str:
        """The text without styles (what a notification or a log shows)."""
        return "".join(span.text for span in self.spans)

    @classmethod
    def literal(cls, text: str) -> RichText:
        """Text shown as it is (an answer, paper text)."""
        return cls((Span(text),)) if text else cls()

    def __bool__(self) -> bool:
        return any(span.text for span in self.spans)

    def __add__(self, other: RichText | str) -> RichText:
        return rich(self, other)

    def lines(self) -> list[RichText]:
        """One RichText per line (styles are kept on both sides of a break)."""
        lines: list[list[Span]] = [[]]
        for span in self.spans:
            pieces = span.text.split("\n")
            for n, piece in enumerate(pieces):
                if n:
                    lines.append([])
                if piece:
                    lines[-1].append(Span(piece, span.style, span.url))
        return [RichText(tuple(line)) for line in lines]

    def slice(self, start: int, end: int) -> RichText:
        """The spans covering characters `start:end` of `plain`, cut to fit."""
        found: list[Span] = []
        offset = 0
        for span in self.spans:
            lo, hi = max(start, offset), min(end, offset + len(span.text))
            if lo < hi:
                found.append(Span(span.text[lo - offset : hi - offset], span.style, span.url))
            offset += len(span.text)
        return RichText(tuple(found))


def rich(*parts: str | Span | RichText) -> RichText:
    """Text made of parts: a str is plain text."""
    spans: list[Span] = []
    for part in parts:
        if isinstance(part, RichText):
            spans += part.spans
        elif isinstance(part, Span):
            spans.append(part)
        elif part:
            spans.append(Span(part))
    return RichText(tuple(s for s in spans if s.text))


def bold(text: str) -> RichText:
    return RichText((Span(text, "bold"),))


def italic(text: str) -> RichText:
    return RichText((Span(text, "italic"),))


def code(text: str) -> RichText:
    return RichText((Span(text, "code"),))


def link(text: str, url: str) -> RichText:
    return RichText((Span(text, "link", url),))


def quoted(text: str, limit: int = 60) -> RichText:
    """User text in quotes, shortened: “…”."""
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return rich(f"“{shown}”")


def with_code(text: str) -> RichText:
    """The core's own sentences that mark commands with backticks (`/paper search x`):
    those become code spans, the rest plain text."""
    parts: list[str | RichText] = []
    last = 0
    for match in _CODE.finditer(text):
        parts += [text[last : match.start()], code(match.group(1))]
        last = match.end()
    parts.append(text[last:])
    return rich(*parts)
