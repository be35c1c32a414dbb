"""Slack payloads to the shared flows' events: pure functions.

The shell (`connectors/slack/app.py`) calls these and nothing here talks to Slack, so every
platform rule (what to ignore, how to strip mentions, where a button's message lives) is
testable on plain dicts. Slash commands are parsed into the core's typed commands here.

    event = command_event(body)                       # "/paper search LoRA"
    event = message_event(event_json, "UBOT", "Ev1")  # None: not for us
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistant.commands import parse_command
from assistant.digest.split import shorten
from connectors.flow.platform import (
    AllQAClick,
    AskClick,
    AskForm,
    CommandEvent,
    FormSubmit,
    MessageEvent,
    Place,
    ShareClick,
    VoteClick,
)
from connectors.slack.render import ALL_QA_ACTION, ASK_ACTION, escape_mrkdwn
from connectors.slack.replies import HELPFUL_ACTION, SHARE_ACTION, UNHELPFUL_ACTION

PLATFORM = "slack"
ASK_MODAL = "paper_ask_modal"
QUESTION_BLOCK = "question"
QUESTION_INPUT = "question_input"
QUESTION_LIMIT = 1500

# Subtypes that are still a person writing in a thread ("also send to channel").
_USER_SUBTYPES = frozenset({None, "thread_broadcast"})
_USER_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<![^>]*>")
_SPACES = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class SlackReplyTo:
    """How to answer a Slack event privately: the user, and a slash command's or a
    button's response URL (for where the bot cannot post); a trigger id opens a modal."""

    response_url: str | None = None
    trigger_id: str | None = None
    message_id: str | None = None  # the message the event is about (for a reaction)


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


def command_event(payload: Mapping[str, Any]) -> CommandEvent:
    """A `/paper` slash command: the text after `/paper`, parsed into a typed command."""
    return CommandEvent(
        platform=PLATFORM,
        user=str(payload.get("user_id", "")),
        place=Place(str(payload.get("channel_id", ""))),
        command=parse_command(plain_text(str(payload.get("text", "")))),
        reply_to=SlackReplyTo(payload.get("response_url"), payload.get("trigger_id")),
    )


def message_event(
    event: Mapping[str, Any], bot_user_id: str | None, event_id: str | None = None
) -> MessageEvent | None:
    """A `message` (in a thread) or `app_mention` event as a follow-up, or None.

    Ignored: any bot's message (ours included), edits, joins and every other subtype,
    messages outside a thread, and thread messages that mention the bot (Slack sends an
    `app_mention` for those too, which is the one answered). An `app_mention` outside a
    thread is in the thread rooted at itself (in Slack every message can root one).
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
    return MessageEvent(
        platform=PLATFORM,
        user=str(user),
        place=Place(str(event.get("channel", "")), str(thread_ts or ts)),
        text=text,
        message_id=str(ts),
        mentioned=kind == "app_mention",
        delivery_id=event_id,
        reply_to=SlackReplyTo(message_id=str(ts)),
    )


def is_admin(user: Mapping[str, Any], admin_ids: frozenset[str]) -> bool:
    """A workspace admin or owner (from `users.info`), or a user listed in SLACK_ADMIN_USERS."""
    if user.get("id") in admin_ids:
        return True
    return any(bool(user.get(flag)) for flag in ("is_admin", "is_owner", "is_primary_owner"))


# -- buttons ---------------------------------------------------------------------------


def action_event(
    body: Mapping[str, Any],
) -> ShareClick | VoteClick | AllQAClick | AskClick | None:
    """The event a click on one of our buttons makes, or None (a link, or malformed)."""
    action = (body.get("actions") or [{}])[0]
    action_id, value = action.get("action_id"), str(action.get("value") or "")
    place, message_id = _button_place(body)
    user = str((body.get("user") or {}).get("id") or "")
    if place is None or not user or not message_id:
        return None
    common: dict[str, Any] = {
        "platform": PLATFORM,
        "user": user,
        "place": place,
        "reply_to": SlackReplyTo(body.get("response_url"), body.get("trigger_id"), message_id),
    }
    card_thread = Place(place.channel, place.thread or message_id)  # a card roots its thread
    if action_id == SHARE_ACTION and value:
        return ShareClick(command=value, **common)
    if action_id in (HELPFUL_ACTION, UNHELPFUL_ACTION):
        verdict = "helpful" if action_id == HELPFUL_ACTION else "unhelpful"
        return VoteClick(verdict=verdict, message_id=message_id, **common)
    week, _, paper_id = value.partition(":")
    if action_id == ALL_QA_ACTION and paper_id:
        return AllQAClick(week=week, paper_id=paper_id, **common | {"place": card_thread})
    if action_id == ASK_ACTION and value:
        return AskClick(paper_id=value, **common | {"place": card_thread})
    return None


def _button_place(body: Mapping[str, Any]) -> tuple[Place | None, str | None]:
    """Where the clicked button's message is (its channel and thread), and its ts."""
    message = body.get("message") or {}
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    ts = container.get("message_ts") or message.get("ts")
    if not (channel and ts):
        return None, None
    thread = message.get("thread_ts") or container.get("thread_ts")
    return Place(str(channel), str(thread) if thread else None), str(ts)


# -- the ask modal ---------------------------------------------------------------------


def ask_modal(form: AskForm) -> dict[str, Any]:
    """The "Ask about this paper" modal; its answer goes in the card's thread."""
    meta = json.dumps(
        {"channel": form.place.channel, "thread": form.place.thread, "paper_id": form.paper_id}
    )
    title = shorten(f"*{escape_mrkdwn(form.title)}* ({form.paper_id})", 2000)
    return {
        "type": "modal",
        "callback_id": ASK_MODAL,
        "private_metadata": meta,
        "title": _plain("Ask about this paper"),
        "submit": _plain("Ask"),
        "close": _plain("Cancel"),
        "blocks": [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": title}]},
            {
                "type": "input",
                "block_id": QUESTION_BLOCK,
                "label": _plain("Your question"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": QUESTION_INPUT,
                    "multiline": True,
                    "max_length": QUESTION_LIMIT,
                },
            },
        ],
    }


def modal_submit(body: Mapping[str, Any]) -> FormSubmit | None:
    """The question of a submitted ask modal, or None if it is empty or malformed."""
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
    return FormSubmit(
        platform=PLATFORM,
        user=str(user),
        place=Place(str(meta["channel"]), str(meta["thread"])),
        paper_id=str(meta.get("paper_id", "")),
        question=question,
    )


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}
