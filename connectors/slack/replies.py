"""Core replies as Slack messages: the Slack renderer of the shared flows (pure functions).

Every function returns `chat.postMessage` / `chat.postEphemeral` / `chat.update` kwargs
(`text` for notifications and screen readers, `blocks`), split to Slack's limits, never
cut. The core's own words come as neutral rich text and are rendered here in mrkdwn;
answers and paper text are shown literally (nothing in them formats, pings or links).

    for kwargs in reply_messages(reply, feedback=True):
        client.chat_postMessage(channel=channel, thread_ts=thread, **kwargs)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from assistant.digest.model import Digest, DigestCard
from assistant.digest.split import Segment, flow, shorten, text_length
from assistant.messages import Citation, PaperCard, Reply, ResultList
from assistant.rich import RichText, Span, rich
from connectors.flow.platform import Asked
from connectors.flow.richtext import rich_segments
from connectors.slack.render import (
    SLACK_LIMITS,
    Block,
    Message,
    SlackLimits,
    escape_mrkdwn,
    pack_messages,
    qa_messages,
    slack_link,
)

SHARE_ACTION = "share_result"
HELPFUL_ACTION = "answer_helpful"
UNHELPFUL_ACTION = "answer_unhelpful"
UNKNOWN = "unknown"


def slack_span(span: Span) -> str:
    """One span of neutral rich text in mrkdwn."""
    if span.style == "code":
        inert = escape_entities(span.text).replace("`", "ˋ")
        return f"`{inert}`"
    if span.style == "link" and span.url:
        return slack_link(span.url, span.text)
    text = escape_mrkdwn(span.text)
    if span.style == "bold":
        return f"*{text}*"
    if span.style == "italic":
        return f"_{text}_"
    return text


def escape_entities(text: str) -> str:
    """Only `& < >` as entities (what Slack needs inside a code span)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackRenderer:
    """The shared flows' `Renderer` for Slack."""

    def __init__(self, limits: SlackLimits = SLACK_LIMITS) -> None:
        self.limits = limits

    def reply(
        self,
        reply: Reply,
        *,
        asked: Asked | None = None,
        shared_by: str | None = None,
        feedback: bool = False,
    ) -> list[Message]:
        return reply_messages(
            reply, asked=asked, shared_by=shared_by, feedback=feedback, limits=self.limits
        )

    def notice(self, text: RichText) -> list[Message]:
        return [text_message(text, self.limits)]

    def placeholder(self, asked: Asked) -> Message:
        return placeholder_message(*asked, limits=self.limits)

    def streaming(self, text: str, asked: Asked | None) -> Message:
        return streaming_message(text, asked, self.limits)

    def qa(self, digest: Digest, card: DigestCard) -> list[Message]:
        return qa_messages(digest, card, self.limits)


def reply_messages(
    reply: Reply,
    *,
    feedback: bool = False,
    asked: Asked | None = None,
    shared_by: str | None = None,
    limits: SlackLimits = SLACK_LIMITS,
) -> list[Message]:
    """A core reply as messages (split at 3,000 characters a section, 50 blocks a message).

    `asked` is (user id, question) for a line saying who asked what; `shared_by` says who
    shared it; a private reply's `share` command becomes a "Share in channel" button;
    `feedback` adds helpful / not helpful buttons to answers.
    """
    units: list[list[Block]] = []
    if asked is not None:
        units.append([_context(_asked_line(*asked, limits))])
    if shared_by is not None:
        units.append([_context(f"Shared by <@{shared_by}>")])
    units += _body_units(reply, limits)
    share = reply.share if reply.private else None
    if share and text_length(share) <= limits.button_value:
        units.append(
            [{"type": "actions", "elements": [_button("Share in channel", SHARE_ACTION, share)]}]
        )
    if feedback and reply.kind == "answer" and reply.mode in ("llm", "extractive"):
        units.append([_feedback_block()])
    first_line = next((line for line in reply.text.splitlines() if line.strip()), reply.kind)
    marker = f"{shorten(first_line, 60)} (continued)"
    # raw: pack_messages escapes the notification text (once)
    fallback = shorten(" ".join(reply.text.split()) or reply.kind, 300, measure=_escaped_len)
    return pack_messages(units, fallback, marker, limits)


def placeholder_message(user: str, question: str, limits: SlackLimits = SLACK_LIMITS) -> Message:
    """The root message of an `ask` thread while the answer is being written."""
    line = shorten(f"Looking into: {question}", limits.section_text - 3, measure=_escaped_len)
    text = f"{escape_mrkdwn(line)}…"
    return {"text": text, "blocks": [_section(f"_{text}_"), _context(f"Asked by <@{user}>")]}


def streaming_message(
    text: str, asked: Asked | None = None, limits: SlackLimits = SLACK_LIMITS
) -> Message:
    """A streamed answer so far, for `chat.update` (one message: as much as fits)."""
    head = _asked_line(*asked, limits) if asked else ""
    blocks: list[Block] = [_context(head)] if head else []
    budget = limits.blocks_text - text_length(head) - 100  # room for the "writing…" line
    for section in _flowed([Segment(text, escape_mrkdwn)], limits):
        if len(blocks) >= limits.blocks - 2 or text_length(section) > budget:
            break
        blocks.append(_section(section))
        budget -= text_length(section)
    blocks.append(_context("_writing…_"))
    return {"text": _fallback(text or "…", limits), "blocks": blocks}


def text_message(text: RichText | str, limits: SlackLimits = SLACK_LIMITS) -> Message:
    """A short notice (neutral rich text): one message."""
    body = text if isinstance(text, RichText) else rich(text)
    sections = _flowed(rich_segments(body, slack_span), limits)
    return {"text": _fallback(body.plain, limits), "blocks": [_section(s) for s in sections[:40]]}


def _body_units(reply: Reply, limits: SlackLimits) -> list[list[Block]]:
    results = next((p for p in reply.parts if isinstance(p, ResultList)), None)
    card = next((p for p in reply.parts if isinstance(p, PaperCard)), None)
    if reply.kind == "answer":
        return _answer_units(reply, limits)
    if reply.kind in ("search", "digest") and results is not None:
        return _results_units(results, limits)
    if reply.kind == "paper" and card is not None:
        return _card_units(card, limits)
    return [[_section(s)] for s in _flowed(_segments(reply), limits)]


def _segments(reply: Reply) -> list[Segment]:
    """The reply's own formatting when the core gave one, else its text, literally."""
    if reply.rich is not None:
        return rich_segments(reply.rich, slack_span)
    return [Segment(reply.text, escape_mrkdwn)]


def _answer_units(reply: Reply, limits: SlackLimits) -> list[list[Block]]:
    units = [[_section(s)] for s in _flowed(_segments(reply), limits)]
    citations = reply.citations
    if not citations:
        return units
    if reply.mode == "llm":  # the generated text does not show the quotes: cite them
        units.append([_context("*Sources*")])
        units += [[_section(s) for s in _flowed(_cited(c, True), limits)] for c in citations]
        units.append([_context("_Generated from the cited passages; check the quotes._")])
    else:  # extractive answers already quote: list where the quotes come from
        lines = [s for c in citations for s in _cited(c, False)]
        sources = [Segment("", lambda _: "*Sources*", keep=True), *lines]
        units.append([_section(s) for s in _flowed(sources, limits)])
    return units


def _cited(citation: Citation, quote: bool) -> list[Segment]:
    title = " ".join(citation.title.split())
    name = slack_link(citation.url, title) if citation.url else escape_mrkdwn(title)
    where = ", ".join(
        x for x in (citation.section, f"p. {citation.page}" if citation.page else None) if x
    )
    head = f"*[{citation.number}]* {name}" + (f" ({escape_mrkdwn(where)})" if where else "")
    segments = [Segment("", lambda _: head, keep=True)]
    if quote and citation.quote.strip():
        segments.append(Segment(citation.quote, _quote))
    return segments


def _results_units(results: ResultList, limits: SlackLimits) -> list[list[Block]]:
    units = [[_section(s)] for s in _flowed([_bold(results.heading)], limits)]
    lines: list[Segment] = []
    for number, item in enumerate(results.items, start=1):
        title = " ".join(item.title.split())
        link = slack_link(item.url, title) if item.url else escape_mrkdwn(title)
        head = f"{number}. *{link}* ({escape_mrkdwn(item.paper_id)})"
        lines.append(Segment(" ".join(item.snippet.split()), _after(head), keep=True))
    if lines:
        units.append([_section(s) for s in _flowed(lines, limits)])
    return units


def _card_units(card: PaperCard, limits: SlackLimits) -> list[list[Block]]:
    title = " ".join(card.title.split())
    units: list[list[Block]] = []
    if text_length(title) <= limits.header_text:
        units.append([{"type": "header", "text": _plain(title)}])
    else:
        units.append([_section(s) for s in _flowed([_bold(title)], limits)])
    authors, categories = ", ".join(card.authors), ", ".join(card.categories)
    rows = [
        ("ID", card.paper_id, escape_mrkdwn(card.paper_id)),
        ("Authors", authors, escape_mrkdwn(authors)),
        ("Published", "", card.published.isoformat() if card.published else ""),
        ("Updated", "", card.updated.isoformat() if card.updated else ""),
        ("Categories", categories, escape_mrkdwn(categories)),
        ("Link", "", slack_link(card.url) if card.url else ""),
    ]
    fields: list[Block] = []
    extra: list[str] = []
    for name, raw, value in rows:
        text = f"*{name}*\n{value or UNKNOWN}"
        if text_length(text) <= limits.field_text:
            fields.append({"type": "mrkdwn", "text": text})
        else:  # a very long author list: a section of its own, split as needed
            extra += _flowed([_bold(name), Segment(raw, escape_mrkdwn)], limits)
    units.append([{"type": "section", "fields": fields}])
    units += [[_section(s)] for s in extra]
    summary = card.summary or "No summary yet."
    units += [[_section(s)] for s in _flowed([Segment(summary, escape_mrkdwn)], limits)]
    return units


# -- blocks ----------------------------------------------------------------------------


def _flowed(segments: Sequence[Segment], limits: SlackLimits) -> list[str]:
    return flow(segments, lambda _: limits.section_text)


def _bold(text: str) -> Segment:
    return Segment(
        text, lambda s: "\n".join(f"*{x}*" for x in escape_mrkdwn(s).split("\n") if x), keep=True
    )


def _after(head: str) -> Callable[[str], str]:
    return lambda s: f"{head} — {escape_mrkdwn(s)}" if s else head


def _quote(text: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in escape_mrkdwn(text).split("\n"))


def _asked_line(user: str, question: str, limits: SlackLimits) -> str:
    room = limits.context_text - 40
    shown = shorten(" ".join(question.split()), room, measure=_escaped_len)
    return f"<@{user}> asked: {escape_mrkdwn(shown)}"


def _escaped_len(text: str) -> int:
    return text_length(escape_mrkdwn(text))


def _fallback(text: str, limits: SlackLimits) -> str:
    """A notification text (the blocks carry the full content): escaped once."""
    flat = " ".join(text.split()) or "paperbot"
    return escape_mrkdwn(shorten(flat, limits.fallback_text, measure=_escaped_len))


def _feedback_block() -> Block:
    return {
        "type": "actions",
        "elements": [
            _button("Helpful", HELPFUL_ACTION, "helpful"),
            _button("Not helpful", UNHELPFUL_ACTION, "unhelpful"),
        ],
    }


def _button(text: str, action_id: str, value: str) -> Block:
    return {"type": "button", "text": _plain(text), "action_id": action_id, "value": value}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
