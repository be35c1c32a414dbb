"""Build small real PDFs for tests with reportlab.

Each page is a list of lines drawn top to bottom in Helvetica. A line starting with "# "
is a heading: it is drawn (without the marker) in a larger bold font, with space above it,
the way paper templates set section titles.

>>> pdf = make_pdf([["# 1 Introduction", "Some words about the topic."], ["More words."]])
"""

from __future__ import annotations

import io

from reportlab.lib.pagesizes import LETTER
from reportlab.pdfgen.canvas import Canvas

HEADING = "# "
_MARGIN = 72.0
_BODY = ("Helvetica", 10.0, 14.0)  # font, size, leading
_TITLE = ("Helvetica-Bold", 12.0, 22.0)


def make_pdf(pages: list[list[str]]) -> bytes:
    """A PDF with one page per list of lines; an empty list gives a page with no text."""
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=LETTER, invariant=True)
    for lines in pages:
        _draw_page(canvas, lines)
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def make_scanned_pdf(pages: int = 1, stamp: str = "") -> bytes:
    """A PDF of drawings only, like a scan without a text layer; `stamp` is the only text
    (on page 1, the way arXiv stamps its identifier down the margin)."""
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=LETTER, invariant=True)
    for number in range(pages):
        canvas.rect(_MARGIN, _MARGIN, 300, 400, fill=1)
        if stamp and number == 0:
            canvas.setFont(*_BODY[:2])
            canvas.drawString(20, 300, stamp)
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def _draw_page(canvas: Canvas, lines: list[str]) -> None:
    _, height = LETTER
    y = height - _MARGIN
    for line in lines:
        font, size, leading = _TITLE if line.startswith(HEADING) else _BODY
        y -= leading
        if y < _MARGIN:
            raise ValueError("too many lines for one page: split them over more pages")
        canvas.setFont(font, size)
        canvas.drawString(_MARGIN, y, line.removeprefix(HEADING))
