"""An answer that shows up in Discord while the model writes it.

The core calls `on_delta` from a worker thread; `LiveAnswer.add` schedules an update on
the bot's event loop at most once per `interval` seconds (Discord allows about five
edits per 5 s per channel), and never blocks the worker on Discord.

    post = ThreadPost(client.http, thread_id)
    live = LiveAnswer(loop, post.show, interval=1.0)
    reply = await loop.run_in_executor(pool, assistant.follow_up, message, live.add)
    await live.close()
    await post.finish(reply_messages(reply))
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord.http import Route

from connectors.discord import translate as tr
from connectors.discord.render import Message

log = logging.getLogger(__name__)

Show = Callable[[Message], Awaitable[None]]


class LiveAnswer:
    """Streams an answer into one message through `show` (post, then edit in place)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        show: Show,
        asked: tuple[str, str] | None = None,
        interval: float = 1.0,
    ) -> None:
        self._loop = loop
        self._show = show
        self._asked = asked
        self._interval = interval
        self._text = ""
        self._last = time.monotonic()
        self._pending: list[concurrent.futures.Future[None]] = []
        self._guard = threading.Lock()
        self._lock = asyncio.Lock()
        self._closed = False
        self.updates = 0

    def add(self, piece: str) -> None:
        """The model's next piece of text (the core's `on_delta`; any thread)."""
        with self._guard:
            self._text += piece
            now = time.monotonic()
            if self._closed or now - self._last < self._interval or not self._text.strip():
                return
            self._last = now
            snapshot = tr.streaming_message(self._text, self._asked)
            self._pending.append(
                asyncio.run_coroutine_threadsafe(self._update(snapshot), self._loop)
            )

    async def close(self) -> None:
        """Wait for the updates under way; later pieces are not shown (the final reply
        replaces the message)."""
        with self._guard:
            self._closed = True
            pending = list(self._pending)
        await asyncio.gather(*(asyncio.wrap_future(f) for f in pending), return_exceptions=True)

    async def _update(self, message: Message) -> None:
        async with self._lock:  # in order, one at a time
            if self._closed:
                return
            try:
                await self._show(message)
                self.updates += 1
            except discord.HTTPException as exc:  # a missed preview is not worth failing for
                log.warning("discord: live update failed: %s", exc)


class ThreadPost:
    """A message in a channel (a thread) that is posted once, then edited in place; then
    the final reply's first message replaces it and the rest follow."""

    def __init__(self, http: discord.http.HTTPClient, channel_id: str) -> None:
        self._http = http
        self.channel_id = channel_id
        self.message_id: str | None = None

    async def show(self, message: Message) -> None:
        if self.message_id is None:
            self.message_id = str((await self.post(message))["id"])
        else:
            await self._http.request(self._route("PATCH"), json=message)

    async def finish(self, messages: list[Message]) -> None:
        first, rest = messages[0], messages[1:]
        await self.show(first)
        for message in rest:
            await self.post(message)

    async def discard(self) -> None:
        """Remove the live message (the answer turned out to be an error)."""
        if self.message_id is not None:
            await self._http.request(self._route("DELETE"))
            self.message_id = None

    async def post(self, message: Message) -> Any:
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=self.channel_id)
        return await self._http.request(route, json=message)

    def _route(self, method: str) -> Route:
        return Route(
            method,
            "/channels/{channel_id}/messages/{message_id}",
            channel_id=self.channel_id,
            message_id=self.message_id,
        )
