"""What the shared flows need from a chat platform: events in, a few calls out, a renderer.

A platform adapter turns its payloads into the events below and implements `ChatPlatform`
(eight small calls); its `Renderer` turns core replies into its message payloads. The
flows (`connectors.flow.flows`) do everything else, the same way on every platform.

    flows = ChatFlows(SlackPlatform(client, ...), SlackRenderer(), core, queue)
    await flows.handle(CommandEvent(platform="slack", user="U1", place=Place("C1"),
                                    command=parse_command("search LoRA"), reply_to=target))
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from assistant.commands import Command, Visibility
from assistant.digest.model import Digest, DigestCard
from assistant.messages import Reply
from assistant.rich import RichText

Message = Any  # a platform's message payload (Slack kwargs, a Discord body, a renderable)
Asked = tuple[str, str]  # (user id, question): "<@user> asked: question"


@dataclass(frozen=True)
class Place:
    """A channel and, inside it, a thread (None: the channel itself)."""

    channel: str
    thread: str | None = None


@dataclass(frozen=True)
class Posted:
    """A message the bot posted: where, its id, and the adapter's handle for it."""

    place: Place
    id: str
    handle: object = None


@dataclass(frozen=True, kw_only=True)
class Event:
    """Something a user did. `reply_to` is the adapter's own handle for answering it (an
    interaction, a response URL, a trigger id); the flows only pass it back."""

    platform: str
    user: str
    place: Place
    reply_to: object = None


@dataclass(frozen=True, kw_only=True)
class CommandEvent(Event):
    """A `/paper` command, already typed."""

    command: Command


@dataclass(frozen=True, kw_only=True)
class MessageEvent(Event):
    """A message in a thread (or a mention anywhere): a follow-up question.

    `delivery_id` names the delivery for deduplication (Slack's event id, Discord's message
    id): a retried or replayed delivery is answered once.
    """

    text: str
    message_id: str
    mentioned: bool = False
    delivery_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ShareClick(Event):
    """ "Share in channel" under private results: `command` run again, for everyone."""

    command: str


@dataclass(frozen=True, kw_only=True)
class VoteClick(Event):
    """ "Helpful" / "Not helpful" under the answer `message_id`."""

    verdict: str
    message_id: str


@dataclass(frozen=True, kw_only=True)
class AllQAClick(Event):
    """ "All Q&A" on a digest card; `place` is the card's thread."""

    week: str
    paper_id: str


@dataclass(frozen=True, kw_only=True)
class AskClick(Event):
    """ "Ask about this paper" on a digest card: open the form; `place` is the card's thread."""

    paper_id: str


@dataclass(frozen=True, kw_only=True)
class FormSubmit(Event):
    """The submitted "Ask about this paper" form; `place` is the card's thread."""

    paper_id: str
    question: str


@dataclass(frozen=True)
class AskForm:
    """The "Ask about this paper" form to open: its answer goes in `place` (a card's thread)."""

    paper_id: str
    title: str
    place: Place


class Refused(Exception):
    """The platform will not do it here; `hint` tells the user what to do about it."""

    def __init__(self, hint: RichText) -> None:
        super().__init__(hint.plain)
        self.hint = hint


class ChatPlatform(Protocol):
    """The calls the flows make on a platform. Blocking SDKs run their calls off the loop."""

    name: str

    async def acknowledge(self, event: Event, visibility: Visibility | None) -> None:
        """Tell the platform the event is being handled, before any slow work (Discord's
        deferred response: "thinking…" for everyone or only the user; None: a silent
        acknowledgement of a click). Platforms that acknowledge on receipt do nothing."""
        ...

    async def post(self, place: Place, message: Message, event: Event | None = None) -> Posted:
        """A message for everyone in `place`. With `event`, a platform that answers the
        event in place (Discord: the deferred response) uses that message. Raises
        `Refused` where the bot cannot post."""
        ...

    async def update(self, posted: Posted, message: Message) -> None:
        """Replace a posted message."""
        ...

    async def delete(self, posted: Posted) -> None:
        """Remove a posted message."""
        ...

    async def post_privately(self, event: Event, messages: Sequence[Message]) -> None:
        """Messages only the event's user sees, where the platform allows it (else in the
        event's place)."""
        ...

    async def open_thread(self, posted: Posted, title: str) -> str:
        """The thread on a posted message (opened if needed); raises `Refused`."""
        ...

    async def open_form(self, event: Event, form: AskForm) -> None:
        """Open the "Ask about this paper" form for the event's user."""
        ...

    async def is_admin(self, event: Event) -> bool:
        """Whether the event's user may run admin commands here."""
        ...

    def working(self, event: MessageEvent) -> AbstractAsyncContextManager[None]:
        """Shown while an answer to a thread message is written (a reaction, typing)."""
        ...


class Renderer(Protocol):
    """Core replies and the flows' own notices as one platform's message payloads."""

    def reply(
        self,
        reply: Reply,
        *,
        asked: Asked | None = None,
        shared_by: str | None = None,
        feedback: bool = False,
    ) -> list[Message]:
        """A reply as messages split to the platform's limits; `asked` adds who asked what,
        `shared_by` who shared it, `feedback` the helpful / not helpful buttons; a
        private reply's `share` command becomes a share button."""
        ...

    def notice(self, text: RichText) -> list[Message]:
        """A short notice of the flows' own (not enabled here, thanks, an apology)."""
        ...

    def placeholder(self, asked: Asked) -> Message:
        """The message an `ask` answer will replace while it is being written."""
        ...

    def streaming(self, text: str, asked: Asked | None) -> Message:
        """An answer so far, while the model writes it."""
        ...

    def qa(self, digest: Digest, card: DigestCard) -> list[Message]:
        """Every Q&A pair of a digest card (the "All Q&A" button)."""
        ...
