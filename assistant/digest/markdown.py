"""The digest as Markdown: for the console and `paperbot digest show`.

No platform limits apply here, so nothing is split. Paper text is escaped so a title with
`*` or `_` stays literal; unknown fields say "unknown"; an unsupported answer is shown as
"not found in the paper", never as fact.

    print(render_markdown(digest))
"""

from __future__ import annotations

import re
from datetime import date

from assistant.digest.model import (
    Digest,
    DigestCard,
    EarlierCard,
    QAPair,
    QASource,
    VersionNote,
)
from assistant.digest.notes import note_text
from assistant.digest.text import header, label

_INLINE = re.compile(r"([\\`*_\[\]<~|])")
_ENTITY = re.compile(r"&(?=#?\w+;)")
_LINE_START = re.compile(r"^(\s*)([#>+-])", re.MULTILINE)
_ORDERED = re.compile(r"^(\s*\d+)([.)])(?=\s|$)", re.MULTILINE)


def _paragraphs(text: str) -> str:
    """Escaped text without trailing spaces (two would make a hard line break)."""
    return "\n".join(line.rstrip() for line in escape_markdown(text.strip()).splitlines())


def escape_markdown(text: str) -> str:
    """`text` shown literally by a CommonMark renderer (backslash escapes)."""
    text = _INLINE.sub(r"\\\1", text)
    text = _ENTITY.sub(r"\\&", text)
    text = _LINE_START.sub(r"\1\\\2", text)
    return _ORDERED.sub(r"\1\\\2", text)


def markdown_link(text: str, url: str | None) -> str:
    """`[text](url)`, or the escaped text alone when there is no URL."""
    if not url:
        return escape_markdown(text)
    safe = url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    return f"[{escape_markdown(text)}]({safe})"


def render_markdown(digest: Digest) -> str:
    """The whole digest: the header and list, then every card."""
    parts = [render_header_markdown(digest)]
    parts += [render_card_markdown(digest, card) for card in _ranked(digest)]
    return "\n\n---\n\n".join(parts) + "\n"


def render_header_markdown(digest: Digest) -> str:
    """The week's title line and the numbered list of papers with their takeaways."""
    lines = [f"# {escape_markdown(header(digest.week, digest.language, digest.source))}", ""]
    if not digest.cards:
        lines.append(escape_markdown(label(digest.language, "empty", week=digest.week)))
    for card in _ranked(digest):
        takeaway = " ".join(card.takeaway.split())
        line = f"{card.rank}. **{markdown_link(card.title, card.url)}**"
        if card.already_posted is not None:
            lines.append(f"{line} — {earlier_markdown(digest.language, card.already_posted)}")
        else:
            lines.append(f"{line} — {escape_markdown(takeaway)}" if takeaway else line)
    return "\n".join(lines)


def earlier_markdown(lang: str, earlier: EarlierCard) -> str:
    """ "*already posted here on 2024-07-09*: [see its thread](url)" (without a URL, the
    thread's id, which `paperbot chat` switches to with `/thread ID`)."""
    said = f"*{escape_markdown(label(lang, 'already_posted', date=earlier.posted_on))}*"
    if earlier.link:
        return f"{said}: {markdown_link(label(lang, 'see_thread'), earlier.link)}"
    return f"{said} ({escape_markdown(label(lang, 'thread'))} {escape_markdown(earlier.thread)})"


def render_update_markdown(note: VersionNote) -> str:
    """A version note for a card's thread: the new version, its date, what changed."""
    text = note_text(note)
    lines = [f"**{escape_markdown(text.headline)}** {markdown_link(text.link_text, note.url)}"]
    if text.changes:
        lines += ["", escape_markdown(text.changes_label)]
        lines += [
            f"- *{escape_markdown(name)}:* {escape_markdown(sentence)}"
            for name, sentence in text.changes
        ]
    if text.closing:
        lines += ["", escape_markdown(text.closing)]
    return "\n".join(lines)


def render_card_markdown(digest: Digest, card: DigestCard) -> str:
    """One paper: title, metadata, takeaway, summary and every Q&A pair."""
    lang = digest.language
    lines = [f"## {card.rank}. {markdown_link(card.title, card.url)}", ""]
    lines += [f"- **{name}:** {value}" for name, value in _metadata(lang, card)]
    if card.takeaway.strip():
        lines += ["", *_prefixed(_paragraphs(card.takeaway), "> ")]
    lines += ["", f"### {label(lang, 'summary')}", ""]
    lines.append(_paragraphs(card.summary) or label(lang, "unknown"))
    if card.qa:
        lines += ["", f"### {escape_markdown(label(lang, 'qa'))}"]
        for number, pair in enumerate(card.qa, start=1):
            lines += ["", *_qa_lines(lang, number, pair)]
    return "\n".join(lines)


def _metadata(lang: str, card: DigestCard) -> list[tuple[str, str]]:
    unknown = label(lang, "unknown")
    rows = [
        (label(lang, "authors"), escape_markdown(", ".join(card.authors)) or unknown),
        (label(lang, "published"), _day(card.published) or unknown),
        (label(lang, "updated"), _day(card.updated) or unknown),
        (label(lang, "link"), markdown_link(card.url, card.url) if card.url else unknown),
    ]
    if card.pdf_url:
        rows.append((label(lang, "pdf"), markdown_link(card.pdf_url, card.pdf_url)))
    rows.append((label(lang, "categories"), escape_markdown(", ".join(card.categories)) or unknown))
    return rows


def _qa_lines(lang: str, number: int, pair: QAPair) -> list[str]:
    lines = [f"**Q{number}. {escape_markdown(' '.join(pair.question.split()))}**", ""]
    if not pair.supported:
        return [*lines, f"*{label(lang, 'unsupported')}*"]
    lines.append(_paragraphs(pair.answer))
    if pair.source and pair.source.quote.strip():
        lines += ["", f"*{escape_markdown(source_line(lang, pair.source))}*"]
        lines += _prefixed(_paragraphs(pair.source.quote), "> ")
    return lines


def source_line(lang: str, source: QASource) -> str:
    """ "Source: 3.2 Method, p. 4" (or "Source: (quoted from the paper)" with no place)."""
    where = [source.section.strip()] if source.section and source.section.strip() else []
    if source.page is not None:
        where.append(f"{label(lang, 'page')} {source.page}")
    place = ", ".join(where) if where else label(lang, "quoted")
    return f"{label(lang, 'source')}: {place}"


def _prefixed(text: str, prefix: str) -> list[str]:
    return [f"{prefix}{line}".rstrip() for line in text.splitlines()]


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _ranked(digest: Digest) -> list[DigestCard]:
    return sorted(digest.cards, key=lambda c: c.rank)
