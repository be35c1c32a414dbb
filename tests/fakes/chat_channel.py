"""A recording fake `DigestChannel`: a shared in-memory "platform" that posts can crash on."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from assistant.digest.markdown import (
    render_card_markdown,
    render_header_markdown,
    render_update_markdown,
)
from assistant.digest.model import Digest, DigestCard, VersionNote
from assistant.digest.publisher import PostedRef


class Killed(Exception):
    """The publisher's process died (raised by the fake at a chosen point)."""


@dataclass
class FakePlatform:
    """What the chat platform holds: every message ever posted, per channel."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def keys(self, channel: str) -> list[str]:
        return [m["key"] for m in self.messages if m["channel"] == channel]


class FakeChannel:
    """Posts Markdown to a `FakePlatform`; can die after its n-th post (after the platform
    accepted it, before the publisher could record it)."""

    platform = "fake"

    def __init__(
        self, world: FakePlatform, die_after: int | None = None, delay: float = 0.0
    ) -> None:
        self.world = world
        self.die_after = die_after
        self.delay = delay
        self.posted = 0

    def render_header(self, digest: Digest) -> list[Any]:
        return [render_header_markdown(digest)]

    def render_card(self, digest: Digest, card: DigestCard) -> list[Any]:
        text = render_card_markdown(digest, card)
        middle = len(text) // 2  # two messages: the card and a continuation in its thread
        return [text[:middle], text[middle:]]

    async def post(self, channel: str, payload: Any, key: str, thread: str | None) -> PostedRef:
        if self.delay:
            await asyncio.sleep(self.delay)
        message_id = f"m{next(self.world.ids)}"
        self.world.messages.append(
            {"channel": channel, "key": key, "id": message_id, "thread": thread, "text": payload}
        )
        self.posted += 1
        if self.die_after is not None and self.posted >= self.die_after:
            raise Killed(f"killed after post {self.posted}")
        return PostedRef(message_id, thread or message_id)

    async def link(self, channel: str, ref: PostedRef) -> str | None:
        return f"https://chat.example/{channel}/{ref.message_id}"

    def render_update(self, note: VersionNote) -> list[Any]:
        return [render_update_markdown(note)]

    async def find(self, channel: str, key: str, thread: str | None = None) -> PostedRef | None:
        for m in self.world.messages:
            if m["channel"] == channel and m["key"] == key:
                return PostedRef(m["id"], m["thread"] or m["id"])
        return None
