"""Discord payloads to the shared flows' events, and the shapes of our buttons: pure
functions.

Incoming functions read Discord's own JSON (an `INTERACTION_CREATE` or `MESSAGE_CREATE`
payload, as the gateway sends it), so they are testable on plain dicts; the shell turns
discord.py's objects into that shape with `interaction_payload` / `message_payload`.
Commands come typed from the command tree's options (`typed_command`).

A Discord thread is a channel of its own: the flows see Place(channel=<parent channel>,
thread=<thread channel>), the same key the digest publisher uses for a card's thread.

    command = typed_command("search", {"query": "LoRA"})
    event = message_event(message_json, bot_user_id, parent_id=None)   # None: not for us
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from assistant.commands import Command, command_from_options
from assistant.digest.model import Digest, DigestCard
from assistant.digest.split import shorten, text_length
from assistant.digest.text import label
from connectors.flow.platform import MessageEvent, Place

if TYPE_CHECKING:
    import discord

PLATFORM = "discord"
THREAD_TYPES = frozenset({10, 11, 12})  # announcement, public and private threads
USER_MESSAGE_TYPES = frozenset({0, 19})  # a message, a reply
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5  # "Manage Server"
EPHEMERAL = 1 << 6
CUSTOM_ID_LIMIT = 100
LINK_URL_LIMIT = 512  # a link button's URL
BUTTON_LABEL_LIMIT = 80
THREAD_NAME_LIMIT = 100
# Button custom ids: the state a click needs travels in the id (no server-side views).
SHARE_ID = r"paper:share:(?P<command>.+)"
ASK_ID = r"paper:ask:(?P<paper>.+)"
ALL_QA_ID = r"paper:qa:(?P<week>\d{4}-\d{2}-\d{2}):(?P<paper>.+)"
FEEDBACK_ID = r"paper:vote:(?P<verdict>helpful|unhelpful)"

_BOT_MENTION = re.compile(r"<@[!&]?\d+>")
_EMOJI = re.compile(r"<a?(:\w+:)\d+>")
_CHANNEL = re.compile(r"<#(\d+)>")
_LINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_SPACES = re.compile(r"[ \t]+")


# -- incoming --------------------------------------------------------------------------


def place(channel: Mapping[str, Any]) -> Place:
    """Where a Discord channel object is: a thread counts as its parent's thread."""
    channel_id = str(channel.get("id") or "")
    parent = channel.get("parent_id")
    if channel.get("type") in THREAD_TYPES and parent:
        return Place(str(parent), channel_id)
    return Place(channel_id)


def is_admin(permissions: int | str | None, user: str, admin_users: frozenset[str]) -> bool:
    """Manage Server (or Administrator) in the member's permission bitfield, or listed in
    DISCORD_ADMIN_USERS."""
    if user in admin_users:
        return True
    try:
        bits = int(permissions or 0)
    except ValueError:
        return False
    return bool(bits & (MANAGE_GUILD | ADMINISTRATOR))


def typed_command(verb: str, options: Mapping[str, str | bool | None]) -> Command:
    """The core's command for a used `/paper <verb>` and its typed options (text options
    lose their mentions and markup first)."""
    cleaned = {k: plain_text(v) if isinstance(v, str) else v for k, v in options.items()}
    return command_from_options(verb, cleaned)


def plain_text(text: str) -> str:
    """What a person typed, without mentions: custom emoji as `:name:`, `<url>` unwrapped."""
    text = _BOT_MENTION.sub(" ", text)
    text = _EMOJI.sub(r"\1", text)
    text = _CHANNEL.sub(r"#\1", text)
    text = _LINK.sub(r"\1", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def mentions(payload: Mapping[str, Any], user_id: str) -> bool:
    """Whether a message payload mentions `user_id` (a reply to the bot does too)."""
    return any(str(u.get("id")) == user_id for u in payload.get("mentions") or [])


def message_event(
    payload: Mapping[str, Any],
    bot_user_id: str,
    parent_id: str | None,
    content_intent: bool = False,
) -> MessageEvent | None:
    """A `MESSAGE_CREATE` payload as a follow-up, or None when it is not for the bot.

    `parent_id` is the parent channel when the message is in a thread (the payload does
    not say). Ignored: any bot's or webhook's message (ours included), system messages,
    empty text, and, unless it mentions the bot, a message outside a thread or (without
    the message-content intent, whose content Discord leaves empty) anywhere.
    """
    author = payload.get("author") or {}
    user = str(author.get("id", ""))
    if author.get("bot") or author.get("system") or payload.get("webhook_id"):
        return None
    if user == bot_user_id or payload.get("type", 0) not in USER_MESSAGE_TYPES:
        return None
    mentioned = mentions(payload, bot_user_id)
    if not mentioned and not (content_intent and parent_id):
        return None
    text = plain_text(str(payload.get("content") or ""))
    if not text or not user:
        return None
    channel_id = str(payload.get("channel_id", ""))
    where = Place(parent_id, channel_id) if parent_id else Place(channel_id)
    message_id = str(payload.get("id", ""))
    return MessageEvent(
        platform=PLATFORM,
        user=user,
        place=where,
        text=text,
        message_id=message_id,
        mentioned=mentioned,
        delivery_id=message_id,
    )


def interaction_payload(interaction: discord.Interaction[Any]) -> dict[str, Any]:
    """The parts of an interaction's JSON this module reads, from discord.py's object."""
    channel = interaction.channel
    raw_channel: dict[str, Any] = {"id": str(interaction.channel_id or "")}
    if channel is not None:
        raw_channel["type"] = getattr(getattr(channel, "type", None), "value", None)
        parent = getattr(channel, "parent_id", None)
        if parent:
            raw_channel["parent_id"] = str(parent)
    clicked = interaction.message  # the message a clicked button is on
    message: dict[str, Any] = {}
    if clicked is not None:
        message["id"] = str(clicked.id)
        if clicked.thread is not None:
            message["thread"] = {"id": str(clicked.thread.id)}
    return {
        "data": dict(interaction.data or {}),
        "channel": raw_channel,
        "message": message,
        "member": {
            "user": {"id": str(interaction.user.id)},
            "permissions": str(interaction.permissions.value),
        },
    }


def interaction_user(payload: Mapping[str, Any]) -> str:
    member = payload.get("member") or {}
    return str((member.get("user") or payload.get("user") or {}).get("id", ""))


def card_thread(payload: Mapping[str, Any]) -> Place:
    """The thread of the card a clicked button sits on (the card is its thread's root)."""
    where = place(payload.get("channel") or {})
    if where.thread is not None:
        return where
    message = payload.get("message") or {}
    thread = (message.get("thread") or {}).get("id") or message.get("id")
    return Place(where.channel, str(thread) if thread else None)


def message_payload(message: discord.Message) -> dict[str, Any]:
    """The parts of a message's JSON this module reads, from discord.py's object."""
    return {
        "id": str(message.id),
        "channel_id": str(message.channel.id),
        "type": message.type.value,
        "webhook_id": str(message.webhook_id) if message.webhook_id else None,
        "author": {
            "id": str(message.author.id),
            "bot": message.author.bot,
            "system": message.author.system,
        },
        "mentions": [{"id": str(u.id)} for u in message.mentions],
        "content": message.content,
    }


def parse_week(value: str) -> date | None:
    """A week from a button's custom id (`2024-07-08`), or None."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# -- our buttons -----------------------------------------------------------------------


def thread_name(text: str) -> str:
    """A thread name (at most 100 characters, no markup) from a question or a title."""
    plain = re.sub(r"\\(.)", r"\1", text).replace("**", "").replace("*", "")
    plain = " ".join(plain.split()) or "paperbot"
    return shorten(plain, THREAD_NAME_LIMIT)


def share_button(command: str) -> dict[str, Any] | None:
    """ "Post to channel" under private results; None if the command is too long to
    travel in the button (custom ids hold 100 characters)."""
    return _button("Post to channel", f"paper:share:{command}", style=2)


def feedback_buttons() -> list[dict[str, Any]]:
    """ "Helpful" / "Not helpful" under an answer (a vote per user, the last one counts)."""
    buttons = [
        _button("Helpful", "paper:vote:helpful", style=2),
        _button("Not helpful", "paper:vote:unhelpful", style=2),
    ]
    return [b for b in buttons if b is not None]


def card_buttons(digest: Digest, card: DigestCard) -> list[dict[str, Any]]:
    """The buttons of a digest card: ask (a form), all Q&A, and the PDF link."""
    lang = digest.language
    buttons = [
        _button(label(lang, "ask"), f"paper:ask:{card.paper_id}", style=1),
        _button(label(lang, "all_qa"), f"paper:qa:{digest.week.isoformat()}:{card.paper_id}"),
    ]
    pdf = card.pdf_url
    if pdf and pdf.startswith(("http://", "https://")) and len(pdf) <= LINK_URL_LIMIT:
        text = shorten(label(lang, "pdf"), BUTTON_LABEL_LIMIT)
        buttons.append({"type": 2, "style": 5, "label": text, "url": pdf})
    # a longer PDF URL would make Discord refuse the whole card (400): the card's fields
    # carry the link anyway
    return [b for b in buttons if b is not None]


def with_components(message: dict[str, Any], buttons: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`message` with `buttons` in one action row (at most five)."""
    if not buttons:
        return message
    return {**message, "components": [{"type": 1, "components": list(buttons)[:5]}]}


def _button(text: str, custom_id: str, style: int = 2) -> dict[str, Any] | None:
    if text_length(custom_id) > CUSTOM_ID_LIMIT:
        return None
    label_text = shorten(text, BUTTON_LABEL_LIMIT)
    return {"type": 2, "style": style, "label": label_text, "custom_id": custom_id}
