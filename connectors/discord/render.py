"""A digest as Discord messages with embeds: pure functions returning REST payloads.

Every function returns a list of messages, each `{"content": str, "embeds": [...],
"allowed_mentions": {"parse": []}}` (paper text never pings anyone). Long content is
split to Discord's limits (`DiscordLimits`), never cut: a card's first message holds the
card embed, its continuation messages (posted in the card's thread) hold the rest.
Buttons (components) are added by the connector.

    for message in card_messages(digest, card):
        assert not validate_discord_message(message)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.digest.markdown import source_line
from assistant.digest.model import Digest, DigestCard, QAPair, VersionNote
from assistant.digest.notes import note_text
from assistant.digest.split import Segment, flow, shorten, text_length
from assistant.digest.text import header, label

Embed = dict[str, Any]
Message = dict[str, Any]

FIRST_MESSAGE_QA = 3  # Q&A embeds that may share the card's own message
EMBED_COLOR = 0xB31B1B
NO_MENTIONS: dict[str, list[str]] = {"parse": []}


@dataclass(frozen=True)
class DiscordLimits:
    """Discord's message and embed limits, as data (counted in UTF-16 units)."""

    content: int = 2000
    embeds: int = 10
    embed_title: int = 256
    embed_description: int = 4096
    embed_fields: int = 25
    field_name: int = 256
    field_value: int = 1024
    footer_text: int = 2048
    author_name: int = 256
    embeds_total: int = 6000  # title, description, fields, footer and author of all embeds


DISCORD_LIMITS = DiscordLimits()

_INLINE = re.compile(r"([\\*_~`|\[\]<])")
_LINE_START = re.compile(r"^(\s*)([>#+-])", re.MULTILINE)
_ORDERED = re.compile(r"^(\s*\d+)([.)])(?=\s|$)", re.MULTILINE)


def escape_markdown(text: str) -> str:
    """Paper or user text shown literally in Discord markdown (backslash escapes).

    Escapes emphasis, code, spoilers, masked links and `<@mentions>` everywhere, and
    quote, heading and list markers at the start of a line.
    """
    text = _INLINE.sub(r"\\\1", text)
    text = _LINE_START.sub(r"\1\\\2", text)
    return _ORDERED.sub(r"\1\\\2", text)


def _escaped_length(text: str) -> int:
    return text_length(escape_markdown(text))


def masked_link(text: str, url: str) -> str:
    """`[text](url)` with the text escaped and the URL made safe."""
    safe = url.strip().replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    return f"[{escape_markdown(text)}]({safe})"


def header_messages(digest: Digest, limits: DiscordLimits = DISCORD_LIMITS) -> list[Message]:
    """The week's header post: title and the numbered list, split into messages if needed."""
    lang = digest.language
    title = header(digest.week, lang, digest.source)
    if digest.cards:
        segments = [_list_line(card, lang) for card in _ranked(digest)]
    else:
        segments = [_plain(label(lang, "empty", week=digest.week))]
    embeds = [_embed(description=d) for d in _descriptions(segments, limits)]
    content = _label(title, limits.content, bold=True)
    marker = _label(f"{title} {label(lang, 'continued')}", limits.content, bold=True)
    return pack_embeds(embeds, content, marker, limits)


def card_messages(
    digest: Digest, card: DigestCard, limits: DiscordLimits = DISCORD_LIMITS
) -> list[Message]:
    """The card (the thread's root) then continuation messages for its thread.

    The card embed has the linked title, takeaway and summary as its description and the
    metadata as fields; summary left over and the Q&A follow as further embeds, packed
    into as few messages as the limits allow (at most `FIRST_MESSAGE_QA` Q&A share the
    card's message). The first message's content says how many Q&A are in the thread.
    """
    lang = digest.language
    card_embed, opening = _card_embed(lang, card, limits)
    budget = min(limits.embed_description, limits.embeds_total - embed_size(card_embed))
    segments = [*opening, _italic(card.takeaway), _plain(card.summary, gap="\n\n")]
    if budget >= limits.embed_description // 8:
        texts = _descriptions(segments, limits, first=budget)
    else:  # metadata left no room worth using: the description starts in the next embed
        texts = ["", *_descriptions(segments, limits)]
    if texts and texts[0]:
        card_embed["description"] = texts[0]
    lead = [card_embed] + [_embed(description=t) for t in texts[1:]]
    qa = [_qa_embeds(lang, n, pair, limits) for n, pair in enumerate(card.qa, start=1)]

    first, shown = _first_message(lead, qa, limits)
    rest = [e for group in [lead, *qa] for e in group][len(first) :]
    note = ""
    if len(card.qa) > shown:
        note = f"*{label(lang, 'more_qa', count=len(card.qa) - shown)}*"
    elif rest:
        note = f"*… {label(lang, 'continued')}*"
    messages = [{"content": note, "embeds": first, "allowed_mentions": NO_MENTIONS}]
    if rest:
        marker = _label(f"{card.rank}. {card.title} {label(lang, 'continued')}", limits.content)
        messages += pack_embeds(rest, marker, marker, limits)
    return messages


def update_messages(note: VersionNote, limits: DiscordLimits = DISCORD_LIMITS) -> list[Message]:
    """A version note for a card's thread: the headline as content, the link and what
    changed in an embed (split only past Discord's limits)."""
    text = note_text(note)
    segments = [_plain(text.changes_label)] if text.changes else []
    segments += [_change_line(name, sentence) for name, sentence in text.changes]
    if text.closing:
        segments.append(_plain(text.closing, gap="\n\n"))
    embeds = [_embed(description=d) for d in _descriptions(segments, limits)]
    embeds[0]["title"] = _label(text.link_text, limits.embed_title)
    embeds[0]["url"] = note.url
    content = _label(text.headline, limits.content, bold=True)
    marker = _label(f"{text.headline} {label(note.language, 'continued')}", limits.content)
    return pack_embeds(embeds, content, marker, limits)


def _change_line(name: str, sentence: str) -> Segment:
    return Segment(sentence, lambda s: f"• *{escape_markdown(name)}:* {escape_markdown(s)}")


def qa_messages(
    digest: Digest, card: DigestCard, limits: DiscordLimits = DISCORD_LIMITS
) -> list[Message]:
    """Every Q&A pair of a card (the "All Q&A" button), split into messages as needed."""
    lang = digest.language
    name = f"{label(lang, 'qa')} ({len(card.qa)}) · {card.rank}. {card.title}"
    embeds = [e for n, p in enumerate(card.qa, start=1) for e in _qa_embeds(lang, n, p, limits)]
    content = _label(name, limits.content, bold=True)
    marker = _label(f"{name} {label(lang, 'continued')}", limits.content, bold=True)
    if not embeds:
        return [{"content": content, "embeds": [], "allowed_mentions": NO_MENTIONS}]
    return pack_embeds(embeds, content, marker, limits)


# -- embeds ----------------------------------------------------------------------------


def _card_embed(lang: str, card: DigestCard, limits: DiscordLimits) -> tuple[Embed, list[Segment]]:
    """The card embed without its description, and what must open the description.

    A title too long for an embed title is shortened there and given in full, in bold, at
    the top of the description.
    """
    title = " ".join(f"{card.rank}. {card.title}".split())
    opening: list[Segment] = []
    if _escaped_length(title) > limits.embed_title:
        opening.append(_bold(title))
    embed = _embed(
        title=escape_markdown(shorten(title, limits.embed_title, measure=_escaped_length))
    )
    if card.url:
        embed["url"] = card.url
    embed["fields"], overflow = _metadata_fields(lang, card, limits)
    embed["footer"] = {"text": shorten(card.paper_id, limits.footer_text)}
    return embed, opening + overflow


def _metadata_fields(
    lang: str, card: DigestCard, limits: DiscordLimits
) -> tuple[list[dict[str, Any]], list[Segment]]:
    """Fields for the metadata, and segments for the description when a value is too
    long for a field (a very long author list)."""
    unknown = label(lang, "unknown")
    rows = [
        ("authors", ", ".join(card.authors), False),
        ("published", card.published.isoformat() if card.published else "", True),
        ("updated", card.updated.isoformat() if card.updated else "", True),
        ("categories", ", ".join(card.categories), True),
        ("link", card.url or "", False),
    ]
    if card.pdf_url:
        rows.append(("pdf", card.pdf_url, False))
    fields: list[dict[str, Any]] = []
    overflow: list[Segment] = []
    for key, value, inline in rows:
        name = escape_markdown(label(lang, key))
        text = escape_markdown(" ".join(value.split()) or unknown)
        if text_length(text) <= limits.field_value and len(fields) < limits.embed_fields:
            fields.append({"name": name, "value": text, "inline": inline})
        else:
            overflow += [Segment("", _constant(f"**{name}**"), keep=True), _plain(value)]
    return fields, overflow


def _qa_embeds(lang: str, number: int, pair: QAPair, limits: DiscordLimits) -> list[Embed]:
    """One embed per Q&A pair, or several when its text is longer than a description."""
    question = " ".join(pair.question.split())
    title = f"Q{number}. {question}"
    segments: list[Segment] = []
    if _escaped_length(title) > limits.embed_title:
        segments.append(_bold(title))
        title = f"Q{number}."
    if not pair.supported:
        segments.append(_italic(label(lang, "unsupported")))
    else:
        segments.append(_plain(pair.answer))
        if pair.source and pair.source.quote.strip():
            segments.append(_italic(source_line(lang, pair.source), gap="\n\n", keep=True))
            segments.append(Segment(pair.source.quote, _quote))
    texts = _descriptions(segments, limits)
    more = f"Q{number}. {label(lang, 'continued')}"
    embeds = [_embed(title=escape_markdown(title), description=texts[0])]
    return embeds + [_embed(title=escape_markdown(more), description=t) for t in texts[1:]]


def _list_line(card: DigestCard, lang: str) -> Segment:
    title = " ".join(card.title.split())
    link = masked_link(title, card.url) if card.url else escape_markdown(title)
    prefix = f"{card.rank}\\. **{link}**"
    if card.already_posted is not None:  # the channel has its card: one line, to its thread
        earlier = card.already_posted
        said = f"*{escape_markdown(label(lang, 'already_posted', date=earlier.posted_on))}*"
        if earlier.link:
            said += f": {masked_link(label(lang, 'see_thread'), earlier.link)}"
        return Segment("", _constant(f"{prefix} — {said}"), keep=True)
    return Segment(
        " ".join(card.takeaway.split()),
        lambda s: f"{prefix} — {escape_markdown(s)}" if s else prefix,
        keep=True,
    )


def _embed(title: str = "", description: str = "") -> Embed:
    embed: Embed = {"color": EMBED_COLOR}
    if title:
        embed["title"] = title
    if description:
        embed["description"] = description
    return embed


# -- text rendering --------------------------------------------------------------------


def _plain(text: str, gap: str = "\n") -> Segment:
    return Segment(text, escape_markdown, gap=gap)


def _bold(text: str) -> Segment:
    return Segment(text, lambda s: _wrap_lines(escape_markdown(s), "**"), keep=True)


def _italic(text: str, gap: str = "\n", keep: bool = False) -> Segment:
    return Segment(text, lambda s: _wrap_lines(escape_markdown(s), "*"), gap=gap, keep=keep)


def _constant(markup: str) -> Callable[[str], str]:
    return lambda _: markup


def _wrap_lines(text: str, mark: str) -> str:
    return "\n".join(
        f"{mark}{line.strip()}{mark}" if line.strip() else "" for line in text.split("\n")
    )


def _quote(text: str) -> str:
    lines = escape_markdown(text).split("\n")
    return "\n".join(f"> {line}".rstrip() for line in lines)


def _descriptions(
    segments: Sequence[Segment], limits: DiscordLimits, first: int | None = None
) -> list[str]:
    full = limits.embed_description
    return flow(segments, lambda i: first if i == 0 and first is not None else full)


def _label(text: str, limit: int, bold: bool = False) -> str:
    """A content line (heading, continuation marker): escaped and shortened to fit."""
    room = limit - (4 if bold else 0)
    line = escape_markdown(shorten(text, room, measure=_escaped_length))
    return f"**{line}**" if bold else line


# -- messages --------------------------------------------------------------------------


def embed_size(embed: Embed) -> int:
    """What counts toward Discord's 6,000 characters: title, description, fields, footer, author."""
    size = sum(text_length(str(embed.get(k, ""))) for k in ("title", "description"))
    for field in embed.get("fields", []):
        size += text_length(str(field.get("name", ""))) + text_length(str(field.get("value", "")))
    size += text_length(str(embed.get("footer", {}).get("text", "")))
    return size + text_length(str(embed.get("author", {}).get("name", "")))


def _fits(embeds: list[Embed], limits: DiscordLimits) -> bool:
    return len(embeds) <= limits.embeds and sum(map(embed_size, embeds)) <= limits.embeds_total


def _first_message(
    lead: list[Embed], qa: list[list[Embed]], limits: DiscordLimits
) -> tuple[list[Embed], int]:
    """The card's own embeds: the lead in order while they fit, then a few whole Q&A.

    Returns those embeds and how many Q&A pairs they include.
    """
    first = [lead[0]]
    for embed in lead[1:]:
        if not _fits([*first, embed], limits):
            return first, 0
        first.append(embed)
    shown = 0
    for group in qa[:FIRST_MESSAGE_QA]:
        if not _fits(first + group, limits):
            break
        first += group
        shown += 1
    return first, shown


def pack_embeds(
    embeds: list[Embed], content: str, marker: str, limits: DiscordLimits = DISCORD_LIMITS
) -> list[Message]:
    """Pack embeds, in order, into as few messages as the limits allow (10 embeds and
    6,000 characters a message); the first says `content`, the others `marker`."""
    pages: list[list[Embed]] = [[]]
    for embed in embeds:
        if pages[-1] and not _fits([*pages[-1], embed], limits):
            pages.append([])
        pages[-1].append(embed)
    return [
        {"content": content if i == 0 else marker, "embeds": page, "allowed_mentions": NO_MENTIONS}
        for i, page in enumerate(pages)
    ]


def _ranked(digest: Digest) -> list[DigestCard]:
    return sorted(digest.cards, key=lambda c: c.rank)


# -- validation ------------------------------------------------------------------------

_MESSAGE_KEYS = {"content", "embeds", "allowed_mentions", "components", "flags", "tts"}
_EMBED_KEYS = {
    "title", "type", "description", "url", "timestamp", "color", "footer", "image",
    "thumbnail", "video", "provider", "author", "fields", "flags",
}  # fmt: skip


def validate_discord_message(msg: Message, limits: DiscordLimits = DISCORD_LIMITS) -> list[str]:
    """Every way `msg` breaks a Discord limit or is not a valid message payload."""
    problems = [f"{key}: not a Discord message field" for key in msg if key not in _MESSAGE_KEYS]
    try:
        json.dumps(msg)
    except (TypeError, ValueError) as exc:
        problems.append(f"not JSON-serialisable: {exc}")
    content = msg.get("content", "")
    embeds = msg.get("embeds", [])
    if not isinstance(content, str):
        problems.append("content: must be a string")
        content = ""
    _check(problems, "content", content, limits.content)
    if not isinstance(embeds, list):
        return [*problems, "embeds: must be a list"]
    if not content.strip() and not embeds:
        problems.append("a message needs content or embeds")
    if len(embeds) > limits.embeds:
        problems.append(f"embeds: {len(embeds)} embeds, over {limits.embeds}")
    for i, embed in enumerate(embeds):
        problems += _check_embed(f"embeds[{i}]", embed, limits)
    total = sum(embed_size(e) for e in embeds if isinstance(e, dict))
    if total > limits.embeds_total:
        problems.append(f"embeds: {total} characters in all, over {limits.embeds_total}")
    return problems


def _check_embed(where: str, embed: Any, limits: DiscordLimits) -> list[str]:
    if not isinstance(embed, dict):
        return [f"{where}: an embed must be an object"]
    problems = [f"{where}.{k}: not an embed field" for k in embed if k not in _EMBED_KEYS]
    if not any(embed.get(k) for k in ("title", "description", "fields", "image", "author")):
        problems.append(f"{where}: an embed needs a title, description or fields")
    _check(problems, f"{where}.title", embed.get("title", ""), limits.embed_title)
    _check(problems, f"{where}.description", embed.get("description", ""), limits.embed_description)
    url = embed.get("url")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        problems.append(f"{where}.url: must be an http(s) URL")
    fields = embed.get("fields", [])
    if not isinstance(fields, list):
        return [*problems, f"{where}.fields: must be a list"]
    if len(fields) > limits.embed_fields:
        problems.append(f"{where}.fields: {len(fields)} fields, over {limits.embed_fields}")
    for j, field in enumerate(fields):
        problems += _check_field(f"{where}.fields[{j}]", field, limits)
    for key, limit in (("footer", limits.footer_text), ("author", limits.author_name)):
        part = embed.get(key)
        if part is not None:
            attr = "text" if key == "footer" else "name"
            value = part.get(attr) if isinstance(part, dict) else None
            _check(problems, f"{where}.{key}.{attr}", value, limit, required=True)
    return problems


def _check_field(where: str, field: Any, limits: DiscordLimits) -> list[str]:
    if not isinstance(field, dict):
        return [f"{where}: a field must be an object"]
    problems: list[str] = []
    _check(problems, f"{where}.name", field.get("name"), limits.field_name, required=True)
    _check(problems, f"{where}.value", field.get("value"), limits.field_value, required=True)
    if "inline" in field and not isinstance(field["inline"], bool):
        problems.append(f"{where}.inline: must be true or false")
    return problems


def _check(problems: list[str], where: str, value: Any, limit: int, required: bool = False) -> None:
    if not isinstance(value, str):
        problems.append(f"{where}: must be a string")
    elif required and not value.strip():
        problems.append(f"{where}: must not be empty")
    elif text_length(value) > limit:
        problems.append(f"{where}: {text_length(value)} characters, over {limit}")
