"""Neutral rich text laid out for a platform: one `Segment` per line, for `flow`.

A renderer says how a span looks in its markup (`render_span`); long lines are split like
any other text, each piece rendered with the styles of the characters it holds.

    sections = flow(rich_segments(reply.rich, slack_span), lambda _: 3000)
"""

from __future__ import annotations

from collections.abc import Callable

from assistant.digest.split import Segment
from assistant.rich import RichText, Span

SpanRenderer = Callable[[Span], str]


def rich_segments(text: RichText, render_span: SpanRenderer) -> list[Segment]:
    """Segments for `assistant.digest.split.flow`, one per line; a blank line keeps its
    paragraph break."""
    segments: list[Segment] = []
    gap = "\n"
    for line in text.lines():
        if not line.plain.strip():
            gap = "\n\n"
            continue
        segments.append(Segment(line.plain, _line_renderer(line, render_span), gap=gap))
        gap = "\n"
    return segments


def render_rich(text: RichText, render_span: SpanRenderer) -> str:
    """The whole text in the platform's markup (for text that is never split)."""
    return "\n".join("".join(map(render_span, line.spans)) for line in text.lines())


def _line_renderer(line: RichText, render_span: SpanRenderer) -> Callable[[str], str]:
    plain = line.plain

    def render(piece: str) -> str:
        if not piece:
            return ""
        start = max(0, plain.find(piece))  # a piece is a cut of this line's text
        return "".join(render_span(s) for s in line.slice(start, start + len(piece)).spans)

    return render
