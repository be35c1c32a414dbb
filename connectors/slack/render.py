"""A digest as Slack Block Kit messages: pure functions returning `chat.postMessage` payloads.

Every function returns a list of messages, each `{"text": fallback, "blocks": [...]}`. Long
content is split to Slack's limits (`SlackLimits`), never cut: a card's first message holds
the card and the first Q&A, its continuation messages (posted in the card's thread) hold
the rest.

    for message in card_messages(digest, card):
        assert not validate_slack_message(message)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.digest.markdown import source_line
from assistant.digest.model import Digest, DigestCard, QAPair, VersionNote
from assistant.digest.notes import note_text
from assistant.digest.split import Segment, flow, shorten, split_text, text_length
from assistant.digest.text import header, label

Block = dict[str, Any]
Message = dict[str, Any]

ASK_ACTION = "paper_ask"
ALL_QA_ACTION = "paper_all_qa"
PDF_ACTION = "paper_pdf"
FIRST_MESSAGE_QA = 3  # Q&A pairs shown on the card itself; the rest go to its thread


@dataclass(frozen=True)
class SlackLimits:
    """Slack's Block Kit limits, as data (counted in UTF-16 units, see `text_length`)."""

    blocks: int = 50
    section_text: int = 3000
    section_fields: int = 10
    field_text: int = 2000
    header_text: int = 150
    context_elements: int = 10
    context_text: int = 2000  # a text object allows 3,000; kept lower for a context line
    actions_elements: int = 25
    button_text: int = 75
    button_value: int = 2000
    action_id: int = 255
    block_id: int = 255
    url: int = 3000
    message_text: int = 40_000  # Slack truncates `text` beyond this
    fallback_text: int = 3000  # what we allow ourselves: `text` is only the notification
    # Undocumented total over all blocks' text (`msg_blocks_too_long` was seen from ~11,000).
    blocks_text: int = 10_000


SLACK_LIMITS = SlackLimits()

_FORMATTING = re.compile(r"(?<![A-Za-z0-9])[*_~`]|[*_~`](?![A-Za-z0-9])")
_LOOKALIKE = {"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"}
_QUOTE_START = re.compile(r"^(?=&gt;)", re.MULTILINE)


def escape_mrkdwn(text: str) -> str:
    """Paper or user text shown literally in mrkdwn.

    `&`, `<` and `>` become entities (Slack's rule, which also defuses `<!channel>` and
    `<@U123>`). Slack has no escape for `*_~` and backticks, so one that could open or
    close formatting (not between two letters or digits, as in `snake_case` or `2*3`)
    becomes a look-alike: `∗ ˍ ∼ ˋ`. A `>` starting a line gets a zero-width space before
    it, so it is not read as a block quote.
    """
    text = _FORMATTING.sub(lambda m: _LOOKALIKE[m.group()], text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _QUOTE_START.sub("\u200b", text)


def _escaped_length(text: str) -> int:
    return text_length(escape_mrkdwn(text))


def slack_link(url: str, text: str | None = None) -> str:
    """`<url|text>` with the text escaped (`|` becomes `∣`) and the URL made safe."""
    safe = url.strip().replace(" ", "%20").replace("|", "%7C")
    safe = safe.replace("<", "%3C").replace(">", "%3E").replace("&", "&amp;")
    if text is None:
        return f"<{safe}>"
    return f"<{safe}|{escape_mrkdwn(text).replace('|', '∣')}>"


def header_messages(digest: Digest, limits: SlackLimits = SLACK_LIMITS) -> list[Message]:
    """The week's header post: title and numbered takeaways, split into messages if needed."""
    title = header(digest.week, digest.language, digest.source)
    units = [[_header_block(chunk)] for chunk in split_text(title, limits.header_text)]
    if not digest.cards:
        empty = label(digest.language, "empty", week=digest.week)
        units += [[_section(s)] for s in _sections([_plain(empty)], limits)]
    lines = [_list_line(card, digest.language) for card in _ranked(digest)]
    units += [[_section(s)] for s in _sections(lines, limits)]
    marker = f"{title} {label(digest.language, 'continued')}"
    return _messages(units, title, marker, limits)


def card_messages(
    digest: Digest, card: DigestCard, limits: SlackLimits = SLACK_LIMITS
) -> list[Message]:
    """The card (the thread's root) then continuation messages for its thread.

    The first message holds title, metadata, takeaway, summary, up to `FIRST_MESSAGE_QA`
    Q&A pairs that fit, a "N more Q&A in the thread" note and the buttons; whatever does
    not fit follows, in order, in as many messages as needed.
    """
    lang = digest.language
    lead = _title_blocks(card, limits) + _metadata_blocks(lang, card, limits)
    lead += [_section(s) for s in _sections([_italic(card.takeaway)], limits)]
    summary = _labelled(label(lang, "summary"), card.summary)
    units: list[list[Block]] = [[b] for b in lead]
    units += [[_section(s)] for s in _sections(summary, limits)]
    qa_units = [_qa_blocks(lang, n, pair, limits) for n, pair in enumerate(card.qa, start=1)]

    actions = _actions_block(digest, card, limits)
    notes = [label(lang, "more_qa", count=len(card.qa)), "… " + label(lang, "continued")]
    reserve = _size(actions) + max(text_length(n) for n in notes)
    first, rest_units, qa_shown = _first_message(
        units, qa_units, limits.blocks - 2, limits.blocks_text - reserve
    )
    remaining_qa = len(card.qa) - qa_shown
    if remaining_qa:
        first.append(_context(label(lang, "more_qa", count=remaining_qa)))
    elif rest_units:
        first.append(_context(notes[1]))
    first.append(actions)
    title = f"{card.rank}. {card.title}"
    messages = [{"text": _fallback(title, limits.fallback_text), "blocks": first}]
    marker = f"{title} {label(lang, 'continued')}"
    messages += _messages(rest_units, marker, marker, limits, mark_first=True)
    return messages


def update_messages(note: VersionNote, limits: SlackLimits = SLACK_LIMITS) -> list[Message]:
    """A version note for a card's thread (one message, split only past Slack's limits)."""
    text = note_text(note)
    head = f"*{escape_mrkdwn(text.headline)}* {slack_link(note.url, text.link_text)}"
    segments = [Segment("", lambda _: head, keep=True)]
    if text.changes:
        segments.append(_plain(text.changes_label))
        segments += [_change_line(name, sentence) for name, sentence in text.changes]
    if text.closing:
        segments.append(_plain(text.closing))
    units = [[_section(s)] for s in _sections(segments, limits)]
    marker = f"{text.headline} {label(note.language, 'continued')}"
    return _messages(units, text.headline, marker, limits)


def _change_line(name: str, sentence: str) -> Segment:
    return Segment(sentence, lambda s: f"• _{escape_mrkdwn(name)}:_ {escape_mrkdwn(s)}")


def qa_messages(
    digest: Digest, card: DigestCard, limits: SlackLimits = SLACK_LIMITS
) -> list[Message]:
    """Every Q&A pair of a card (the "All Q&A" button), split into messages as needed."""
    lang = digest.language
    title = " ".join(card.title.split())
    heading = f"{label(lang, 'qa')} ({len(card.qa)}) · {card.rank}. "
    linked = f"*{escape_mrkdwn(heading)}{slack_link(card.url, title)}*" if card.url else ""
    if linked and text_length(linked) <= limits.section_text:
        lead = [_section(linked)]
    else:
        lead = [_section(s) for s in _sections([_bold(title, prefix=heading)], limits)]
    units = [[b] for b in lead]
    units += [_qa_blocks(lang, n, pair, limits) for n, pair in enumerate(card.qa, start=1)]
    name = f"{card.rank}. {title} — {label(lang, 'qa')}"
    return _messages(units, name, f"{name} {label(lang, 'continued')}", limits)


# -- pieces of a card ------------------------------------------------------------------


def _title_blocks(card: DigestCard, limits: SlackLimits) -> list[Block]:
    title = " ".join(f"{card.rank}. {card.title}".split())
    if text_length(title) <= limits.header_text:
        return [_header_block(title)]
    if card.url:  # too long for a header block: a bold linked title instead
        linked = f"*{card.rank}. {slack_link(card.url, ' '.join(card.title.split()))}*"
        if text_length(linked) <= limits.section_text:
            return [_section(linked)]
    return [_section(s) for s in _sections([_bold(title)], limits)]


def _metadata_blocks(lang: str, card: DigestCard, limits: SlackLimits) -> list[Block]:
    unknown = escape_mrkdwn(label(lang, "unknown"))
    rows = [
        ("authors", escape_mrkdwn(", ".join(card.authors)), ", ".join(card.authors)),
        ("published", card.published.isoformat() if card.published else "", ""),
        ("updated", card.updated.isoformat() if card.updated else "", ""),
        ("categories", escape_mrkdwn(", ".join(card.categories)), ", ".join(card.categories)),
        ("link", slack_link(card.url) if card.url else "", card.url or ""),
    ]
    if card.pdf_url and len(card.pdf_url) > limits.url:  # too long for a button
        rows.append(("pdf", slack_link(card.pdf_url), card.pdf_url))
    fields: list[Block] = []
    extra: list[Block] = []
    for key, value, raw in rows:
        name = f"*{escape_mrkdwn(label(lang, key))}*"
        text = f"{name}\n{value or unknown}"
        if text_length(text) <= limits.field_text and len(fields) < limits.section_fields:
            fields.append({"type": "mrkdwn", "text": text})
        else:  # an author list longer than a field: a section of its own, split as needed
            extra += [_section(s) for s in _sections(_labelled(label(lang, key), raw), limits)]
    return ([{"type": "section", "fields": fields}] if fields else []) + extra


def _qa_blocks(lang: str, number: int, pair: QAPair, limits: SlackLimits) -> list[Block]:
    question = " ".join(pair.question.split())
    segments = [_bold(question, prefix=f"Q{number}. ")]
    if not pair.supported:
        segments.append(_italic(label(lang, "unsupported")))
    else:
        segments.append(_plain(pair.answer))
        if pair.source and pair.source.quote.strip():
            segments.append(_italic(source_line(lang, pair.source), keep=True))
            segments.append(Segment(pair.source.quote, _quote))
    return [_section(s) for s in _sections(segments, limits)]


def _list_line(card: DigestCard, lang: str) -> Segment:
    title = " ".join(card.title.split())
    link = slack_link(card.url, title) if card.url else escape_mrkdwn(title)
    prefix = f"{card.rank}. *{link}*"
    if card.already_posted is not None:  # the channel has its card: one line, to its thread
        earlier = card.already_posted
        said = f"_{escape_mrkdwn(label(lang, 'already_posted', date=earlier.posted_on))}_"
        if earlier.link:
            said += f": {slack_link(earlier.link, label(lang, 'see_thread'))}"
        return Segment("", lambda _: f"{prefix} — {said}", keep=True)
    return Segment(
        " ".join(card.takeaway.split()),
        lambda s: f"{prefix} — {escape_mrkdwn(s)}" if s else prefix,
        keep=True,
    )


def _actions_block(digest: Digest, card: DigestCard, limits: SlackLimits) -> Block:
    lang = digest.language
    buttons = [
        _button(label(lang, "ask"), ASK_ACTION, limits, value=card.paper_id),
        _button(
            label(lang, "all_qa"),
            ALL_QA_ACTION,
            limits,
            value=f"{digest.week.isoformat()}:{card.paper_id}",
        ),
    ]
    if card.pdf_url and len(card.pdf_url) <= limits.url:
        buttons.append(_button(label(lang, "pdf"), PDF_ACTION, limits, url=card.pdf_url))
    return {"type": "actions", "elements": buttons}


def _button(
    text: str, action_id: str, limits: SlackLimits, value: str = "", url: str = ""
) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": shorten(text, limits.button_text), "emoji": True},
        "action_id": action_id,
    }
    if value:
        button["value"] = value
    if url:
        button["url"] = url
    return button


# -- text rendering --------------------------------------------------------------------


def _plain(text: str) -> Segment:
    return Segment(text, escape_mrkdwn)


def _labelled(name: str, text: str) -> list[Segment]:
    """A bold label line, then the text (split as needed; the label is not repeated)."""
    bold = f"*{escape_mrkdwn(name)}*"
    return [Segment("", lambda _: bold, keep=True), _plain(text)]


def _bold(text: str, prefix: str = "") -> Segment:
    return Segment(text, lambda s: _wrap_lines(escape_mrkdwn(prefix + s), "*"), keep=True)


def _italic(text: str, keep: bool = False) -> Segment:
    return Segment(text, lambda s: _wrap_lines(escape_mrkdwn(s), "_"), keep=keep)


def _wrap_lines(text: str, mark: str) -> str:
    """Bold or italic line by line (mrkdwn emphasis does not span lines)."""
    return "\n".join(
        f"{mark}{line.strip()}{mark}" if line.strip() else "" for line in text.split("\n")
    )


def _quote(text: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in escape_mrkdwn(text).split("\n"))


def _sections(segments: Sequence[Segment], limits: SlackLimits) -> list[str]:
    return flow(segments, lambda _: limits.section_text)


# -- blocks and messages ---------------------------------------------------------------


def _header_block(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _size(value: object) -> int:
    """All text a block carries (what Slack's total limit counts, conservatively)."""
    if isinstance(value, dict):
        return sum(
            text_length(v) if k in ("text", "url", "value") and isinstance(v, str) else _size(v)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return sum(_size(v) for v in value)
    return 0


def _first_message(
    units: list[list[Block]], qa_units: list[list[Block]], max_blocks: int, max_chars: int
) -> tuple[list[Block], list[list[Block]], int]:
    """The card's own blocks: leading units in order while they fit, then a few Q&A.

    Returns those blocks, the units left for the thread and how many Q&A were taken.
    """
    blocks: list[Block] = []
    every = units + qa_units
    limit = min(len(every), len(units) + FIRST_MESSAGE_QA)
    taken = 0
    while taken < limit:
        unit = every[taken]
        if len(blocks) + len(unit) > max_blocks or _size(blocks + unit) > max_chars:
            break
        blocks += unit
        taken += 1
    if not blocks:  # cannot happen with sane limits; never post an empty card
        raise ValueError("the card's first block does not fit in a message")
    return blocks, every[taken:], max(0, taken - len(units))


def _messages(
    units: list[list[Block]],
    fallback: str,
    marker: str,
    limits: SlackLimits,
    mark_first: bool = False,
) -> list[Message]:
    """Pack units (lists of blocks kept together when possible) into messages.

    `fallback` and `marker` are raw text; messages after the first (all of them with
    `mark_first`) start with a context line `marker` ("… (continued)").
    """
    marker_block = _context(_fallback(marker, limits.context_text))
    pages: list[list[Block]] = [[]]
    for unit in units:
        for piece in _fitting_pieces(unit, limits, _size(marker_block)):
            page = pages[-1]
            if page and (
                len(page) + len(piece) > limits.blocks - 1
                or _size(page + piece) > limits.blocks_text - _size(marker_block)
            ):
                pages.append([])
            pages[-1] += piece
    if not pages[0]:
        return []
    note = _fallback(marker, limits.fallback_text)
    messages = [{"text": note, "blocks": [marker_block, *page]} for page in pages]
    if not mark_first:
        messages[0] = {"text": _fallback(fallback, limits.fallback_text), "blocks": pages[0]}
    return messages


def pack_messages(
    units: list[list[Block]], fallback: str, marker: str, limits: SlackLimits = SLACK_LIMITS
) -> list[Message]:
    """Blocks packed into as few messages as Slack's limits allow, in order.

    Each unit (a list of blocks) stays in one message when it fits; `fallback` is the first
    message's notification text, and later messages start with a `marker` context line.
    Every block must already be within its own limits (split text with `flow` first).
    """
    return _messages(units, fallback, marker, limits)


def _fitting_pieces(unit: list[Block], limits: SlackLimits, reserve: int) -> list[list[Block]]:
    """The unit whole if it fits in one message, else one block at a time."""
    if len(unit) <= limits.blocks - 1 and _size(unit) <= limits.blocks_text - reserve:
        return [unit]
    return [[block] for block in unit]


def _fallback(text: str, limit: int) -> str:
    """A notification or marker line: escaped, shortened (the blocks carry the full text)."""
    return escape_mrkdwn(shorten(text, limit, measure=_escaped_length))


def _ranked(digest: Digest) -> list[DigestCard]:
    return sorted(digest.cards, key=lambda c: c.rank)


# -- validation ------------------------------------------------------------------------


def validate_slack_message(msg: Message, limits: SlackLimits = SLACK_LIMITS) -> list[str]:
    """Every way `msg` breaks a Slack limit (empty when it can be posted as it is)."""
    problems: list[str] = []
    text = msg.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("text: a non-empty fallback text is required")
    else:
        _check_length(problems, "text", text, min(limits.fallback_text, limits.message_text))
    blocks = msg.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return [*problems, "blocks: a non-empty list of blocks is required"]
    if len(blocks) > limits.blocks:
        problems.append(f"blocks: {len(blocks)} blocks, over {limits.blocks}")
    if _size(blocks) > limits.blocks_text:
        problems.append(f"blocks: {_size(blocks)} characters in all, over {limits.blocks_text}")
    action_ids: list[str] = []
    for i, block in enumerate(blocks):
        problems += _check_block(f"blocks[{i}]", block, limits, action_ids)
    duplicates = sorted({a for a in action_ids if action_ids.count(a) > 1})
    problems += [f"blocks: action_id {a!r} is used more than once" for a in duplicates]
    return problems


def _check_block(where: str, block: Any, limits: SlackLimits, action_ids: list[str]) -> list[str]:
    if not isinstance(block, dict):
        return [f"{where}: a block must be an object"]
    problems: list[str] = []
    kind = block.get("type")
    where = f"{where} ({kind})"
    if "block_id" in block:
        _check_length(problems, f"{where}.block_id", block["block_id"], limits.block_id)
    checker = _BLOCK_CHECKS.get(kind) if isinstance(kind, str) else None
    if checker is None:
        return [*problems, f"{where}: unsupported block type"]
    checker(problems, where, block, limits, action_ids)
    return problems


def _check_header(
    problems: list[str], where: str, block: Block, limits: SlackLimits, _: list[str]
) -> None:
    _check_text(problems, f"{where}.text", block.get("text"), limits.header_text, plain=True)


def _check_section(
    problems: list[str], where: str, block: Block, limits: SlackLimits, ids: list[str]
) -> None:
    if "text" not in block and "fields" not in block:
        problems.append(f"{where}: a section needs text or fields")
    if "text" in block:
        _check_text(problems, f"{where}.text", block["text"], limits.section_text)
    fields = block.get("fields", [])
    if not isinstance(fields, list) or ("fields" in block and not fields):
        problems.append(f"{where}.fields: must be a non-empty list")
        fields = []
    if len(fields) > limits.section_fields:
        problems.append(f"{where}.fields: {len(fields)} fields, over {limits.section_fields}")
    for j, field in enumerate(fields):
        _check_text(problems, f"{where}.fields[{j}]", field, limits.field_text)
    if isinstance(block.get("accessory"), dict) and block["accessory"].get("type") == "button":
        _check_button(problems, f"{where}.accessory", block["accessory"], limits, ids)


def _check_context(
    problems: list[str], where: str, block: Block, limits: SlackLimits, _: list[str]
) -> None:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        problems.append(f"{where}.elements: must be a non-empty list")
        return
    if len(elements) > limits.context_elements:
        problems.append(f"{where}.elements: {len(elements)}, over {limits.context_elements}")
    for j, element in enumerate(elements):
        if isinstance(element, dict) and element.get("type") == "image":
            continue
        _check_text(problems, f"{where}.elements[{j}]", element, limits.context_text)


def _check_actions(
    problems: list[str], where: str, block: Block, limits: SlackLimits, ids: list[str]
) -> None:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        problems.append(f"{where}.elements: must be a non-empty list")
        return
    if len(elements) > limits.actions_elements:
        problems.append(f"{where}.elements: {len(elements)}, over {limits.actions_elements}")
    for j, element in enumerate(elements):
        if isinstance(element, dict) and element.get("type") == "button":
            _check_button(problems, f"{where}.elements[{j}]", element, limits, ids)


def _check_divider(
    problems: list[str], where: str, block: Block, limits: SlackLimits, _: list[str]
) -> None:
    return None


def _check_button(
    problems: list[str], where: str, button: Block, limits: SlackLimits, ids: list[str]
) -> None:
    _check_text(problems, f"{where}.text", button.get("text"), limits.button_text, plain=True)
    if "action_id" in button:
        _check_length(problems, f"{where}.action_id", button["action_id"], limits.action_id)
        if isinstance(button["action_id"], str):
            ids.append(button["action_id"])
    if "value" in button:
        _check_length(problems, f"{where}.value", button["value"], limits.button_value)
    if "url" in button:
        _check_length(problems, f"{where}.url", button["url"], limits.url)


_BLOCK_CHECKS: dict[str, Callable[[list[str], str, Block, SlackLimits, list[str]], None]] = {
    "header": _check_header,
    "section": _check_section,
    "context": _check_context,
    "actions": _check_actions,
    "divider": _check_divider,
}


def _check_text(problems: list[str], where: str, obj: Any, limit: int, plain: bool = False) -> None:
    kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        problems.append(f"{where}: must be a text object of type {' or '.join(kinds)}")
        return
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append(f"{where}: text must not be empty")
        return
    _check_length(problems, where, text, limit)


def _check_length(problems: list[str], where: str, value: Any, limit: int) -> None:
    if not isinstance(value, str):
        problems.append(f"{where}: must be a string")
    elif text_length(value) > limit:
        problems.append(f"{where}: {text_length(value)} characters, over {limit}")
