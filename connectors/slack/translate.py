"""Slack payloads to core messages and core replies to Slack messages: pure functions.

The shell (`connectors/slack/app.py`) calls these and nothing here talks to Slack, so every
platform rule (what to ignore, how to strip mentions, how to escape and split) is testable
on plain dicts.

    message = event_to_message(event, bot_user_id="UBOT")   # None: not for us
    for kwargs in reply_messages(reply, feedback=True):
        client.chat_postMessage(channel=channel, thread_ts=thread, **kwargs)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from assistant.digest.split import Segment, flow, shorten, text_length
from assistant.feedback import Feedback
from assistant.messages import Citation, IncomingMessage, PaperCard, Reply, ResultList
from connectors.slack.render import (
    SLACK_LIMITS,
    Block,
    Message,
    SlackLimits,
    escape_mrkdwn,
    pack_messages,
    slack_link,
)

PLATFORM = "slack"
SHARE_ACTION = "share_result"
HELPFUL_ACTION = "answer_helpful"
UNHELPFUL_ACTION = "answer_unhelpful"
ASK_MODAL = "paper_ask_modal"
QUESTION_BLOCK = "question"
QUESTION_INPUT = "question_input"
NOT_ENABLED = (
    "paperbot is not enabled in this channel; an admin can add it to `SLACK_ALLOWED_CHANNELS`."
)
CANNOT_POST = (
    "I can't post in this channel: invite me first (`/invite @paperbot`), or ask in a channel "
    "I am in."
)
APOLOGY = "Sorry, something went wrong while answering; the error was logged. Please try again."
UNKNOWN = "unknown"

# Subtypes that are still a person writing in a thread ("also send to channel").
_USER_SUBTYPES = frozenset({None, "thread_broadcast"})
_USER_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<![^>]*>")
_SPACES = re.compile(r"[ \t]+")


# -- incoming --------------------------------------------------------------------------


def plain_text(text: str) -> str:
    """Slack's message markup as the plain text a person typed.

    User mentions and `<!here>`-style specials are dropped, links and channel references
    unwrapped (`<https://arxiv.org/abs/2407.08608|arxiv…>` becomes the URL), and Slack's
    entities (`&amp; &lt; &gt;`) decoded last, so a literal `<` typed by the user stays.
    """
    text = _USER_MENTION.sub(" ", text)
    text = _SPECIAL.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def command_to_message(payload: Mapping[str, Any], is_admin: bool = False) -> IncomingMessage:
    """A `/paper` slash command as the core's message: the text after `/paper`."""
    return IncomingMessage(
        PLATFORM,
        str(payload.get("user_id", "")),
        str(payload.get("channel_id", "")),
        plain_text(str(payload.get("text", ""))),
        thread=None,
        is_admin=is_admin,
    )


def event_to_message(event: Mapping[str, Any], bot_user_id: str | None) -> IncomingMessage | None:
    """A `message` (in a thread) or `app_mention` event as the core's message, or None.

    Ignored: any bot's message (ours included), edits, joins and every other subtype,
    messages outside a thread, and thread messages that mention the bot (Slack sends an
    `app_mention` for those too, which is the one answered). An `app_mention` outside a
    thread starts a thread rooted at itself.
    """
    kind = event.get("type")
    if kind not in ("message", "app_mention") or event.get("subtype") not in _USER_SUBTYPES:
        return None
    user = event.get("user")
    if not user or event.get("bot_id") or user == bot_user_id or "edited" in event:
        return None
    ts, thread_ts = event.get("ts"), event.get("thread_ts")
    raw = str(event.get("text") or "")
    if kind == "message":
        if not thread_ts or thread_ts == ts:
            return None
        if bot_user_id and f"<@{bot_user_id}" in raw:
            return None
    text = plain_text(raw)
    if not text or not ts:
        return None
    return IncomingMessage(
        PLATFORM,
        str(user),
        str(event.get("channel", "")),
        text,
        thread=str(thread_ts or ts),
        message_id=str(ts),
    )


def is_admin(user: Mapping[str, Any], admin_ids: frozenset[str]) -> bool:
    """A workspace admin or owner (from `users.info`), or a user listed in SLACK_ADMIN_USERS."""
    if user.get("id") in admin_ids:
        return True
    return any(bool(user.get(flag)) for flag in ("is_admin", "is_owner", "is_primary_owner"))


def action_to_feedback(body: Mapping[str, Any]) -> Feedback | None:
    """The feedback a block action carries, or None if it is not a feedback button."""
    action = (body.get("actions") or [{}])[0]
    verdict: Literal["helpful", "unhelpful"]
    if action.get("action_id") == HELPFUL_ACTION:
        verdict = "helpful"
    elif action.get("action_id") == UNHELPFUL_ACTION:
        verdict = "unhelpful"
    else:
        return None
    message = body.get("message") or {}
    container = body.get("container") or {}
    ts = container.get("message_ts") or message.get("ts")
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    user = (body.get("user") or {}).get("id")
    if not (ts and channel and user):
        return None
    thread = message.get("thread_ts") or container.get("thread_ts") or ts
    return Feedback(PLATFORM, str(channel), str(thread), str(ts), str(user), verdict)


def action_message_ref(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(channel, thread) of the message a button sits on: a card is its own thread's root."""
    message = body.get("message") or {}
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    ts = container.get("message_ts") or message.get("ts")
    if not (channel and ts):
        return None
    return str(channel), str(message.get("thread_ts") or container.get("thread_ts") or ts)


# -- modal -----------------------------------------------------------------------------


def ask_modal(paper_id: str, title: str, channel: str, thread: str) -> dict[str, Any]:
    """The "Ask about this paper" modal; its answer goes in the card's thread."""
    meta = json.dumps({"channel": channel, "thread": thread, "paper_id": paper_id})
    return {
        "type": "modal",
        "callback_id": ASK_MODAL,
        "private_metadata": meta,
        "title": _plain("Ask about this paper"),
        "submit": _plain("Ask"),
        "close": _plain("Cancel"),
        "blocks": [
            _context(shorten(f"*{escape_mrkdwn(title)}* ({paper_id})", 2000)),
            {
                "type": "input",
                "block_id": QUESTION_BLOCK,
                "label": _plain("Your question"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": QUESTION_INPUT,
                    "multiline": True,
                    "max_length": 1500,
                },
            },
        ],
    }


@dataclass(frozen=True)
class ModalQuestion:
    """What a submitted "Ask about this paper" modal asks, and where to answer."""

    channel: str
    thread: str
    paper_id: str
    user: str
    question: str


def modal_question(body: Mapping[str, Any]) -> ModalQuestion | None:
    """The question of a `view_submission` of the ask modal, or None if it is malformed."""
    view = body.get("view") or {}
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
        value = view["state"]["values"][QUESTION_BLOCK][QUESTION_INPUT]["value"]
    except (KeyError, TypeError, ValueError):
        return None
    user = (body.get("user") or {}).get("id")
    question = plain_text(str(value or ""))
    if not (question and user and meta.get("channel") and meta.get("thread")):
        return None
    return ModalQuestion(
        meta["channel"], meta["thread"], str(meta.get("paper_id", "")), str(user), question
    )


# -- outgoing --------------------------------------------------------------------------


def escape_entities(text: str) -> str:
    """Only `& < >` as entities: for the core's own Markdown-ish texts (help, errors,
    notices), whose *bold* and `code` should render while user text inside stays inert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def reply_messages(
    reply: Reply,
    *,
    share_query: str | None = None,
    feedback: bool = False,
    asked: tuple[str, str] | None = None,
    shared_by: str | None = None,
    limits: SlackLimits = SLACK_LIMITS,
) -> list[Message]:
    """A core reply as `chat.postMessage` / `chat.postEphemeral` kwargs (`text`, `blocks`).

    `asked` is (user id, question) for a line saying who asked what; `share_query` adds a
    "Share in channel" button to search results; `feedback` adds helpful / not helpful
    buttons to answers. Long replies come back as several messages, split at Slack's limits
    (3,000 characters a section, 50 blocks a message), never cut.
    """
    units: list[list[Block]] = []
    if asked is not None:
        units.append([_context(_asked_line(*asked, limits))])
    if shared_by is not None:
        units.append([_context(f"Shared by <@{shared_by}>")])
    units += _body_units(reply, share_query, limits)
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
    text: str, asked: tuple[str, str] | None = None, limits: SlackLimits = SLACK_LIMITS
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


def text_message(text: str, limits: SlackLimits = SLACK_LIMITS) -> Message:
    """A short notice of ours (Markdown-ish, like the core's): one message."""
    sections = _flowed([Segment(text, escape_entities)], limits)
    return {"text": _fallback(text, limits), "blocks": [_section(s) for s in sections[:40]]}


def _body_units(reply: Reply, share_query: str | None, limits: SlackLimits) -> list[list[Block]]:
    results = next((p for p in reply.parts if isinstance(p, ResultList)), None)
    card = next((p for p in reply.parts if isinstance(p, PaperCard)), None)
    if reply.kind == "answer":
        return _answer_units(reply, limits)
    if reply.kind in ("search", "digest") and results is not None:
        return _results_units(results, share_query if reply.kind == "search" else None, limits)
    if reply.kind == "paper" and card is not None:
        return _card_units(card, limits)
    return [[_section(s)] for s in _flowed([Segment(reply.text, escape_entities)], limits)]


def _answer_units(reply: Reply, limits: SlackLimits) -> list[list[Block]]:
    # "none": the core's own words (no paper text), whose `/paper search` should render
    escape = escape_entities if reply.mode == "none" else escape_mrkdwn
    units = [[_section(s)] for s in _flowed([Segment(reply.text, escape)], limits)]
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


def _results_units(
    results: ResultList, share_query: str | None, limits: SlackLimits
) -> list[list[Block]]:
    units = [[_section(s)] for s in _flowed([_bold(results.heading)], limits)]
    lines: list[Segment] = []
    for number, item in enumerate(results.items, start=1):
        title = " ".join(item.title.split())
        link = slack_link(item.url, title) if item.url else escape_mrkdwn(title)
        head = f"{number}. *{link}* ({escape_mrkdwn(item.paper_id)})"
        lines.append(Segment(" ".join(item.snippet.split()), _after(head), keep=True))
    units.append([_section(s) for s in _flowed(lines, limits)])
    if share_query and text_length(share_query) <= limits.button_value:
        button = _button("Share in channel", SHARE_ACTION, share_query)
        units.append([{"type": "actions", "elements": [button]}])
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


def _after(head: str) -> Any:
    return lambda s: f"{head} — {escape_mrkdwn(s)}" if s else head


def _quote(text: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in escape_mrkdwn(text).split("\n"))


def _asked_line(user: str, question: str, limits: SlackLimits) -> str:
    room = limits.context_text - 40
    shown = shorten(" ".join(question.split()), room, measure=_escaped_len)
    return f"<@{user}> asked: {escape_mrkdwn(shown)}"


def _escaped_len(text: str) -> int:
    return text_length(escape_mrkdwn(text))


def _fallback(
    text: str,
    limits: SlackLimits,
    room: int | None = None,
    escape: Callable[[str], str] = escape_mrkdwn,
) -> str:
    """A notification text (the blocks carry the full content)."""
    flat = " ".join(text.split()) or "paperbot"
    limit = min(room or limits.fallback_text, limits.fallback_text)
    return escape(shorten(flat, limit, measure=lambda t: text_length(escape(t))))


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
