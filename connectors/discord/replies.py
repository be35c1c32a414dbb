"""Core replies as Discord messages: the Discord renderer of the shared flows (pure).

Every function returns REST message payloads (`content`, `embeds`, `allowed_mentions`,
`components`) split to Discord's limits, never cut. Answers, results and paper cards are
embeds (descriptions of 4,096); the core's own words (help, errors, notices) come as
neutral rich text, rendered here in Discord Markdown as plain content of at most 2,000 a
message. Paper and user text is always shown literally and never pings anyone.

    for payload in reply_messages(reply, feedback=True):
        assert not validate_discord_message(payload)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from assistant.digest.model import Digest, DigestCard
from assistant.digest.split import Segment, flow, shorten, take_prefix, text_length
from assistant.messages import Citation, PaperCard, Reply, ResultList
from assistant.rich import RichText, Span, rich
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
    qa_messages,
)
from connectors.discord.translate import feedback_buttons, share_button, with_components
from connectors.flow.platform import Asked
from connectors.flow.richtext import rich_segments

CONTINUED = "*(continued)*"
WRITING = "writing…"
LOOKING = "Looking into it…"
UNKNOWN = "unknown"


def discord_span(span: Span) -> str:
    """One span of neutral rich text in Discord Markdown."""
    if span.style == "code":
        fence = "``" if "`" in span.text else "`"
        pad = " " if fence == "``" else ""
        return f"{fence}{pad}{span.text}{pad}{fence}"
    if span.style == "link" and span.url:
        return masked_link(span.text, span.url)
    text = escape_markdown(span.text)
    if span.style == "bold":
        return f"**{text}**"
    if span.style == "italic":
        return f"*{text}*"
    return text


class DiscordRenderer:
    """The shared flows' `Renderer` for Discord."""

    def __init__(self, limits: DiscordLimits = DISCORD_LIMITS) -> None:
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
        return text_messages(text, limits=self.limits)

    def placeholder(self, asked: Asked) -> Message:
        lead = asked_line(*asked, limits=self.limits)
        embed: Embed = {"color": EMBED_COLOR, "description": LOOKING}
        return {"content": lead, "embeds": [embed], "allowed_mentions": NO_MENTIONS}

    def streaming(self, text: str, asked: Asked | None) -> Message:
        return streaming_message(text, asked, self.limits)

    def qa(self, digest: Digest, card: DigestCard) -> list[Message]:
        return qa_messages(digest, card, self.limits)


def reply_messages(
    reply: Reply,
    *,
    asked: Asked | None = None,
    shared_by: str | None = None,
    feedback: bool = False,
    limits: DiscordLimits = DISCORD_LIMITS,
) -> list[Message]:
    """A core reply as Discord message payloads, split to the limits (never cut).

    `asked` is (user id, question) for a line saying who asked what; `shared_by` a user
    who shared results; a private reply's `share` command becomes a "Post to channel"
    button; `feedback` adds helpful / not helpful buttons under an answer's last message.
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
        body = reply.rich if reply.rich is not None else RichText.literal(reply.text)
        messages = text_messages(body, lead, limits)
    if reply.share and reply.private and embeds:
        button = share_button(reply.share)
        if button is not None:
            messages[-1] = with_components(messages[-1], [button])
    if feedback and reply.kind == "answer" and reply.mode in ("llm", "extractive"):
        messages[-1] = with_components(messages[-1], feedback_buttons())
    return messages


def text_messages(
    text: RichText | str, lead: str = "", limits: DiscordLimits = DISCORD_LIMITS
) -> list[Message]:
    """Neutral rich text (the core's help, errors, notices) as content messages."""
    body = text if isinstance(text, RichText) else rich(text)
    segments = [Segment("", lambda _: lead, keep=True)] if lead else []
    segments += rich_segments(body, discord_span)
    chunks = flow(segments, lambda _: limits.content) or ["…"]
    return [{"content": c, "embeds": [], "allowed_mentions": NO_MENTIONS} for c in chunks]


def streaming_message(
    text: str, asked: Asked | None = None, limits: DiscordLimits = DISCORD_LIMITS
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
    if reply.rich is not None:  # "none": the core's own words, formatted
        text = rich_segments(reply.rich, discord_span)
    else:
        text = [Segment(reply.text, escape_markdown)]
    embeds = [_embed(description=d) for d in _flowed(text, limits)]
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
