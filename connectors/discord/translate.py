"""Discord payloads to core messages and core replies to Discord messages: pure functions.

Incoming functions read Discord's own JSON (an `INTERACTION_CREATE` or `MESSAGE_CREATE`
payload, as the gateway sends it), so they are testable on plain dicts; the shell turns
discord.py's objects into that shape with `interaction_payload` / `message_payload`.
Outgoing functions return REST message payloads (`content`, `embeds`, `allowed_mentions`,
`components`) split to Discord's limits, never cut. Nothing here talks to Discord.

A Discord thread is a channel of its own: the core sees (channel=<parent channel id>,
thread=<thread channel id>), the same key the digest publisher uses for a card's thread.

    message = command_to_message(interaction_json)          # "/paper search LoRA"
    for payload in reply_messages(reply, share_query="LoRA"):
        assert not validate_discord_message(payload)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from assistant.digest.model import Digest, DigestCard
from assistant.digest.split import Segment, flow, shorten, take_prefix, text_length
from assistant.digest.text import label
from assistant.feedback import Feedback
from assistant.messages import Citation, IncomingMessage, PaperCard, Reply, ResultList
from connectors.discord.render import (
    DISCORD_LIMITS,
    EMBED_COLOR,
    NO_MENTIONS,
    DiscordLimits,
    Embed,
    Message,
    embed_size,
    escape_markdown,
    masked_link,
    pack_embeds,
)

if TYPE_CHECKING:
    import discord

PLATFORM = "discord"
THREAD_TYPES = frozenset({10, 11, 12})  # announcement, public and private threads
USER_MESSAGE_TYPES = frozenset({0, 19})  # a message, a reply
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5  # "Manage Server"
EPHEMERAL = 1 << 6
PRIVATE_VERBS = frozenset({"search", "show", "help"})  # answered only to the asker
CUSTOM_ID_LIMIT = 100
LINK_URL_LIMIT = 512  # a link button's URL
THREAD_NAME_LIMIT = 100
# Button custom ids: the state a click needs travels in the id (no server-side views).
SHARE_ID = r"paper:share:(?P<query>.+)"
ASK_ID = r"paper:ask:(?P<paper>.+)"
ALL_QA_ID = r"paper:qa:(?P<week>\d{4}-\d{2}-\d{2}):(?P<paper>.+)"
FEEDBACK_ID = r"paper:vote:(?P<verdict>helpful|unhelpful)"
THANKS = "Thanks, your feedback on this answer is recorded."
# Option names of each verb, in the order the core's command text wants them.
ARGUMENTS: dict[str, tuple[str, ...]] = {
    "search": ("query",),
    "show": ("paper",),
    "ask": ("paper", "question"),
    "digest": ("week",),
}

NOT_ENABLED = (
    "paperbot is not enabled in this channel; an admin can add it to `DISCORD_ALLOWED_CHANNELS`."
)
APOLOGY = "Sorry, something went wrong while answering; the error was logged. Please try again."
NO_THREAD = (
    "I could not open a thread on this answer (I need the *Create Public Threads* "
    "permission here): mention me in a reply to ask a follow-up."
)
CONTINUED = "*(continued)*"
WRITING = "writing…"
UNKNOWN = "unknown"

_BOT_MENTION = re.compile(r"<@[!&]?\d+>")
_EMOJI = re.compile(r"<a?(:\w+:)\d+>")
_CHANNEL = re.compile(r"<#(\d+)>")
_LINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_SPACES = re.compile(r"[ \t]+")
_CODE = re.compile(r"(`[^`\n]+`)")
_SLACK_BOLD = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]*?\S)\*(?![*\w])")


# -- incoming --------------------------------------------------------------------------


def place(channel: Mapping[str, Any]) -> tuple[str, str | None]:
    """(channel, thread) of a Discord channel object: a thread counts as its parent."""
    channel_id = str(channel.get("id") or "")
    parent = channel.get("parent_id")
    if channel.get("type") in THREAD_TYPES and parent:
        return str(parent), channel_id
    return channel_id, None


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


def command_text(data: Mapping[str, Any]) -> str:
    """The core's command text for an application command's `data`.

    >>> command_text({"name": "paper", "options": [{"name": "search", "type": 1,
    ...     "options": [{"name": "query", "type": 3, "value": "LoRA"}]}]})
    'search LoRA'
    """
    sub = next((o for o in data.get("options") or [] if o.get("type") == 1), None)
    if sub is None:
        return "help"
    verb = str(sub.get("name", "help"))
    values = {
        str(o.get("name")): plain_text(str(o.get("value", ""))) for o in sub.get("options") or []
    }
    parts = [values.get(name, "") for name in ARGUMENTS.get(verb, ())]
    if verb == "digest" and values.get("post", "").lower() == "true":
        parts.insert(0, "post")  # `digest post [week]`: an admin posts the full digest
    return " ".join([verb, *(p for p in parts if p)])


def command_to_message(
    payload: Mapping[str, Any], admin_users: frozenset[str] = frozenset()
) -> IncomingMessage:
    """A `/paper` application command (an `INTERACTION_CREATE` payload) as the core's message."""
    member = payload.get("member") or {}
    user = str((member.get("user") or payload.get("user") or {}).get("id", ""))
    channel, thread = place(payload.get("channel") or {"id": payload.get("channel_id")})
    return IncomingMessage(
        PLATFORM,
        user,
        channel,
        command_text(payload.get("data") or {}),
        thread=thread,
        is_admin=is_admin(member.get("permissions"), user, admin_users),
    )


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


def message_to_incoming(
    payload: Mapping[str, Any],
    bot_user_id: str,
    parent_id: str | None,
    content_intent: bool = False,
) -> IncomingMessage | None:
    """A `MESSAGE_CREATE` payload as the core's message, or None when it is not for the bot.

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
    if not mentions(payload, bot_user_id) and not (content_intent and parent_id):
        return None
    text = plain_text(str(payload.get("content") or ""))
    if not text or not user:
        return None
    channel_id = str(payload.get("channel_id", ""))
    channel, thread = (parent_id, channel_id) if parent_id else (channel_id, None)
    return IncomingMessage(
        PLATFORM, user, channel, text, thread=thread, message_id=str(payload.get("id", ""))
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
    return {
        "data": dict(interaction.data or {}),
        "channel": raw_channel,
        "message": {"id": str(clicked.id)} if clicked is not None else {},
        "member": {
            "user": {"id": str(interaction.user.id)},
            "permissions": str(interaction.permissions.value),
        },
    }


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


# -- outgoing --------------------------------------------------------------------------


def reply_messages(
    reply: Reply,
    *,
    asked: tuple[str, str] | None = None,
    share_query: str | None = None,
    shared_by: str | None = None,
    feedback: bool = False,
    limits: DiscordLimits = DISCORD_LIMITS,
) -> list[Message]:
    """A core reply as Discord message payloads, split to the limits (never cut).

    `asked` is (user id, question) for a line saying who asked what; `shared_by` a user
    who shared search results; `share_query` adds a "Post to channel" button to search
    results; `feedback` adds helpful / not helpful buttons under an answer's last message.
    Answers, results and paper cards are embeds (descriptions of 4,096); other replies
    (help, errors, notices) are plain content of at most 2,000 a message.
    """
    lead = ""
    if asked is not None:
        lead = asked_line(*asked, limits=limits)
    elif shared_by is not None:
        lead = f"Shared by <@{shared_by}>"
    embeds = _body_embeds(reply, limits)
    if embeds:
        messages = pack_embeds(embeds, lead, CONTINUED, limits)
    else:
        messages = text_messages(reply.text, lead, limits)
    if share_query and reply.kind == "search" and embeds:
        button = share_button(share_query)
        if button is not None:
            messages[-1] = with_components(messages[-1], [button])
    if feedback and reply.kind == "answer" and reply.mode in ("llm", "extractive"):
        messages[-1] = with_components(messages[-1], feedback_buttons())
    return messages


def text_messages(
    text: str, lead: str = "", limits: DiscordLimits = DISCORD_LIMITS
) -> list[Message]:
    """Our own Markdown-ish text (the core's help, errors, notices) as content messages."""
    segments = [Segment("", lambda _: lead, keep=True)] if lead else []
    segments.append(Segment(text, core_markdown))
    chunks = flow(segments, lambda _: limits.content) or ["…"]
    return [{"content": c, "embeds": [], "allowed_mentions": NO_MENTIONS} for c in chunks]


def streaming_message(
    text: str, asked: tuple[str, str] | None = None, limits: DiscordLimits = DISCORD_LIMITS
) -> Message:
    """An answer so far, for editing in place while the model writes (one message: as
    much as fits, marked as still being written)."""
    room = limits.embed_description - 2
    head, rest = take_prefix(text, room, lambda t: text_length(escape_markdown(t)))
    shown = escape_markdown(head) + (" …" if rest else "")
    embed: Embed = {"color": EMBED_COLOR, "description": shown or "…"}
    embed["footer"] = {"text": WRITING}
    lead = asked_line(*asked, limits=limits) if asked else ""
    return {"content": lead, "embeds": [embed], "allowed_mentions": NO_MENTIONS}


def asked_line(user: str, question: str, limits: DiscordLimits = DISCORD_LIMITS) -> str:
    """`<@user> asked: question` (no ping: every payload disallows mentions)."""
    room = min(limits.content - 40, 1000)
    shown = shorten(" ".join(question.split()), room, measure=_escaped_length)
    return f"<@{user}> asked: {escape_markdown(shown)}"


def core_markdown(text: str) -> str:
    """The core's Markdown-ish text for Discord: its `*bold*` becomes `**bold**` (code
    spans are left alone); nothing else changes."""
    spans: list[str] = []

    def hide(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"\x00{len(spans) - 1}\x00"

    bold = _SLACK_BOLD.sub(r"**\1**", _CODE.sub(hide, text))
    return re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], bold)


def thread_name(text: str) -> str:
    """A thread name (at most 100 characters, no markup) from a question or a title."""
    plain = re.sub(r"\\(.)", r"\1", text).replace("**", "").replace("*", "")
    plain = " ".join(plain.split()) or "paperbot"
    return shorten(plain, THREAD_NAME_LIMIT)


# -- components ------------------------------------------------------------------------


def share_button(query: str) -> dict[str, Any] | None:
    """ "Post to channel" for private search results; None if the query is too long to
    travel in the button (custom ids hold 100 characters)."""
    return _button("Post to channel", f"paper:share:{query}", style=2)


def feedback_buttons() -> list[dict[str, Any]]:
    """ "Helpful" / "Not helpful" under an answer (a vote per user, the last one counts)."""
    buttons = [
        _button("Helpful", "paper:vote:helpful", style=2),
        _button("Not helpful", "paper:vote:unhelpful", style=2),
    ]
    return [b for b in buttons if b is not None]


def interaction_feedback(payload: Mapping[str, Any], verdict: str) -> Feedback | None:
    """The vote a click on an answer's feedback button casts (an INTERACTION_CREATE
    payload), or None when it is not on a message of ours in a channel."""
    message = payload.get("message") or {}
    member = payload.get("member") or {}
    user = (member.get("user") or payload.get("user") or {}).get("id")
    channel, thread = place(payload.get("channel") or {"id": payload.get("channel_id")})
    if verdict not in ("helpful", "unhelpful") or not (message.get("id") and user and channel):
        return None
    return Feedback(
        PLATFORM,
        channel,
        thread or str(message["id"]),
        str(message["id"]),
        str(user),
        "helpful" if verdict == "helpful" else "unhelpful",
    )


def card_buttons(digest: Digest, card: DigestCard) -> list[dict[str, Any]]:
    """The buttons of a digest card: ask (a form), all Q&A, and the PDF link."""
    lang = digest.language
    buttons = [
        _button(label(lang, "ask"), f"paper:ask:{card.paper_id}", style=1),
        _button(label(lang, "all_qa"), f"paper:qa:{digest.week.isoformat()}:{card.paper_id}"),
    ]
    pdf = card.pdf_url
    if pdf and pdf.startswith(("http://", "https://")) and len(pdf) <= LINK_URL_LIMIT:
        buttons.append({"type": 2, "style": 5, "label": label(lang, "pdf"), "url": pdf})
    # a longer PDF URL would make Discord refuse the whole card (400): the card's fields
    # carry the link anyway
    return [b for b in buttons if b is not None]


def with_components(message: Message, buttons: Sequence[dict[str, Any]]) -> Message:
    """`message` with `buttons` in one action row (at most five)."""
    if not buttons:
        return message
    return {**message, "components": [{"type": 1, "components": list(buttons)[:5]}]}


def parse_week(value: str) -> date | None:
    """A week from a button's custom id (`2024-07-08`), or None."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _button(text: str, custom_id: str, style: int = 2) -> dict[str, Any] | None:
    if text_length(custom_id) > CUSTOM_ID_LIMIT:
        return None
    return {"type": 2, "style": style, "label": shorten(text, 80), "custom_id": custom_id}


# -- embeds ----------------------------------------------------------------------------


def _body_embeds(reply: Reply, limits: DiscordLimits) -> list[Embed]:
    results = next((p for p in reply.parts if isinstance(p, ResultList)), None)
    card = next((p for p in reply.parts if isinstance(p, PaperCard)), None)
    if reply.kind == "answer" and reply.text.strip():
        return _answer_embeds(reply, limits)
    if reply.kind in ("search", "digest") and results is not None and results.items:
        return _results_embeds(results, limits)
    if reply.kind == "paper" and card is not None:
        return _paper_embeds(card, limits)
    return []


def _answer_embeds(reply: Reply, limits: DiscordLimits) -> list[Embed]:
    # "none": the core's own words (no paper text), whose `/paper search` should render
    render = core_markdown if reply.mode == "none" else escape_markdown
    embeds = [_embed(description=d) for d in _flowed([Segment(reply.text, render)], limits)]
    citations = reply.citations
    if not citations:
        return embeds
    quote = reply.mode == "llm"  # generated text does not show the quotes: cite them
    lines = [s for c in citations for s in _cited(c, quote)]
    sources = [_embed(description=d) for d in _flowed(lines, limits)]
    sources[0]["title"] = "Sources"
    if quote:
        sources[-1]["footer"] = {"text": "Generated from the cited passages; check the quotes."}
    return embeds + sources


def _cited(citation: Citation, quote: bool) -> list[Segment]:
    title = " ".join(citation.title.split())
    name = masked_link(title, citation.url) if citation.url else escape_markdown(title)
    where = ", ".join(
        x for x in (citation.section, f"p. {citation.page}" if citation.page else None) if x
    )
    head = f"**[{citation.number}]** {name}" + (f" ({escape_markdown(where)})" if where else "")
    segments = [Segment("", lambda _: head, keep=True, gap="\n\n")]
    if quote and citation.quote.strip():
        segments.append(Segment(citation.quote, _quote))
    return segments


def _results_embeds(results: ResultList, limits: DiscordLimits) -> list[Embed]:
    lines: list[Segment] = []
    for number, item in enumerate(results.items, start=1):
        title = " ".join(item.title.split())
        link = masked_link(title, item.url) if item.url else escape_markdown(title)
        head = f"{number}\\. **{link}** ({escape_markdown(item.paper_id)})"
        lines.append(Segment(" ".join(item.snippet.split()), _after(head), keep=True))
    embeds = [_embed(description=d) for d in _flowed(lines, limits)]
    embeds[0]["title"] = escape_markdown(
        shorten(results.heading, limits.embed_title, measure=_escaped_length)
    )
    return embeds


def _paper_embeds(card: PaperCard, limits: DiscordLimits) -> list[Embed]:
    title = " ".join(card.title.split())
    short = shorten(title, limits.embed_title, measure=_escaped_length)
    embed = _embed(title=escape_markdown(short))
    if card.url and card.url.startswith(("http://", "https://")):
        embed["url"] = card.url
    rows = [
        ("ID", card.paper_id, False),
        ("Authors", ", ".join(card.authors), False),
        ("Published", card.published.isoformat() if card.published else "", True),
        ("Updated", card.updated.isoformat() if card.updated else "", True),
        ("Categories", ", ".join(card.categories), True),
        ("Link", card.url or "", False),
    ]
    segments = [_bold(title)] if short != title else []
    embed["fields"] = []
    for name, value, inline in rows:
        text = escape_markdown(" ".join(value.split()) or UNKNOWN)
        if text_length(text) <= limits.field_value:
            embed["fields"].append({"name": name, "value": text, "inline": inline})
        else:  # a very long author list goes in the description
            segments += [_label(name), _plain(value)]
    segments.append(Segment(card.summary or "No summary yet.", escape_markdown, gap="\n\n"))
    first = min(limits.embed_description, limits.embeds_total - embed_size(embed) - 16)
    if first < limits.embed_description // 8:  # no room worth using: describe it after
        return [embed] + [_embed(description=t) for t in _flowed(segments, limits)]
    texts = flow(segments, lambda i: first if i == 0 else limits.embed_description)
    embed["description"] = texts[0]
    return [embed] + [_embed(description=t) for t in texts[1:]]


def _flowed(segments: Sequence[Segment], limits: DiscordLimits) -> list[str]:
    return flow(segments, lambda _: limits.embed_description)


def _embed(title: str = "", description: str = "") -> Embed:
    embed: Embed = {"color": EMBED_COLOR}
    if title:
        embed["title"] = title
    if description:
        embed["description"] = description
    return embed


def _label(name: str) -> Segment:
    return Segment("", lambda _: f"**{name}**", keep=True)


def _plain(text: str) -> Segment:
    return Segment(text, escape_markdown)


def _bold(text: str) -> Segment:
    return Segment(text, lambda s: f"**{escape_markdown(s)}**" if s else "", keep=True)


def _after(head: str) -> Callable[[str], str]:
    return lambda s: f"{head} — {escape_markdown(s)}" if s else head


def _quote(text: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in escape_markdown(text).split("\n"))


def _escaped_length(text: str) -> int:
    return text_length(escape_markdown(text))
