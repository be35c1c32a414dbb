"""Posting digests to Discord: the Discord connector's `DigestChannel`.

Every thread root (the header, each card) gets a thread started on it, so a reply in a
card's thread is about that card's paper: `post` returns `PostedRef(message, thread)`
and continuation messages go into that thread channel.

Discord messages carry no metadata, so each post is marked twice, for two kinds of crash:
- a `nonce` derived from (channel, key) with `enforce_nonce`: a create retried within
  Discord's nonce window (a few minutes: a timeout after Discord stored the message)
  returns the message already there instead of posting it again;
- a short readable marker, `ref:<hash>`, in the footer of the message's last embed (or
  a `-# ref:` line without embeds): after a crash older than that window, the publisher
  takes the stale claim over and `find` looks the marker up in the channel's recent
  history (thread roots) or in the root's thread (continuations). Message content
  and footers are always readable by the bot, intents or not.
Starting the thread is part of posting a root, and idempotent: a root found after a
crash between the two steps gets its thread then, and Discord's error 160004 ("a thread
has already been created for this message") means it exists: a thread started on a
message has that message's id.

Calls go through discord.py's HTTP client (its rate-limit buckets, 429 `retry_after`
and 5xx retries). That client belongs to the bot's event loop; the scheduler runs on
another, so `post` and `find` run their requests on `loop` and await the result.

>>> channel = DiscordDigestChannel(client, loop=bot_loop)
>>> await DigestPublisher(store, conversations).publish(digest, channel, "1234567890")
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any, Literal, TypeVar

import discord
from discord.http import Route

from assistant.digest.model import Digest, DigestCard, VersionNote
from assistant.digest.publisher import PostedRef
from connectors.discord import translate as tr
from connectors.discord.render import (
    DISCORD_LIMITS,
    Message,
    card_messages,
    header_messages,
    update_messages,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
THREAD_EXISTS = 160004  # "A thread has already been created for this message"
ARCHIVE_MINUTES: Literal[10080] = 10080  # a digest thread stays open for a week without activity
MARKER_ROOM = 32  # room left in every limit for the marker
# Rendered a little under the limits, so adding the marker never breaks one.
MARKED_LIMITS = replace(
    DISCORD_LIMITS,
    content=DISCORD_LIMITS.content - MARKER_ROOM,
    footer_text=DISCORD_LIMITS.footer_text - MARKER_ROOM,
    embeds_total=DISCORD_LIMITS.embeds_total - MARKER_ROOM,
)
_CONTINUATION = re.compile(r"#(\d+)$")


def _hash(channel: str, key: str) -> str:
    return hashlib.sha256(f"{channel}:{key}".encode()).hexdigest()


def post_nonce(channel: str, key: str) -> str:
    """The nonce of a digest post (Discord allows 25 characters)."""
    return "pb" + _hash(channel, key)[:23]


def post_marker(channel: str, key: str) -> str:
    """The readable marker `find` looks for, e.g. `ref:3fa9c2e1b7d0`."""
    return "ref:" + _hash(channel, key)[:12]


def marked(message: Message, marker: str) -> Message:
    """`message` carrying `marker` in its last embed's footer (or a subtext line)."""
    embeds = [dict(e) for e in message.get("embeds") or []]
    if not embeds:
        content = str(message.get("content") or "")
        return {**message, "content": f"{content}\n-# {marker}".strip()}
    footer = str((embeds[-1].get("footer") or {}).get("text") or "")
    embeds[-1]["footer"] = {"text": f"{footer} · {marker}" if footer else marker}
    return {**message, "embeds": embeds}


def has_marker(message: Message, marker: str) -> bool:
    """Whether a message object (as Discord returns it) carries `marker`."""
    if marker in str(message.get("content") or ""):
        return True
    return any(
        marker in str((e.get("footer") or {}).get("text") or "")
        for e in message.get("embeds") or []
    )


def root_key(key: str) -> str | None:
    """The key of the thread root a continuation key (`...#2`) belongs to, else None."""
    match = _CONTINUATION.search(key)
    if match is None or match.group(1) == "0":
        return None
    return key[: match.start()] + "#0"


def root_thread_name(message: Message) -> str:
    """A thread name for a root message: its first embed's title, or its content."""
    embeds = message.get("embeds") or []
    title = str(embeds[0].get("title") or "") if embeds else ""
    return tr.thread_name(title or str(message.get("content") or ""))


class DiscordDigestChannel:
    """Posts digest messages (embeds; card buttons) with the bot's REST client, at most
    one per `post_interval` seconds per channel.

    `loop` is the event loop the client runs on (None: the caller's); `before` is
    awaited there before each call (e.g. the login finishing).
    """

    platform = "discord"

    def __init__(
        self,
        client: discord.Client,
        loop: asyncio.AbstractEventLoop | None = None,
        before: Callable[[], Awaitable[None]] | None = None,
        post_interval: float = 1.0,
        max_pages: int = 10,
    ) -> None:
        self._client = client
        self._loop = loop
        self._before = before
        self._interval = post_interval
        self._max_pages = max_pages
        self._last_post: dict[str, float] = {}
        self._guilds: dict[str, str] = {}
        self.in_flight: set[asyncio.Task[Any]] = set()

    def render_header(self, digest: Digest) -> list[Any]:
        return header_messages(digest, MARKED_LIMITS)

    def render_card(self, digest: Digest, card: DigestCard) -> list[Any]:
        messages = card_messages(digest, card, MARKED_LIMITS)
        messages[0] = tr.with_components(messages[0], tr.card_buttons(digest, card))
        return messages

    def render_update(self, note: VersionNote) -> list[Any]:
        return update_messages(note, MARKED_LIMITS)

    async def post(self, channel: str, payload: Any, key: str, thread: str | None) -> PostedRef:
        return await self._on_client_loop(lambda: self._post(channel, payload, key, thread))

    async def find(self, channel: str, key: str, thread: str | None = None) -> PostedRef | None:
        if thread is not None:  # a reply in a known thread (a version note)
            return await self._on_client_loop(lambda: self._find_in(channel, thread, key))
        return await self._on_client_loop(lambda: self._find(channel, key))

    async def link(self, channel: str, ref: PostedRef) -> str | None:
        """The message's jump URL (`https://discord.com/channels/<guild>/<channel>/<id>`);
        its thread hangs off it."""
        return await self._on_client_loop(lambda: self._jump_url(channel, ref.message_id))

    async def _jump_url(self, channel: str, message_id: str) -> str:
        guild = self._guilds.get(channel)
        if guild is None:
            data = await self._client.http.get_channel(int(channel))
            guild = str(data.get("guild_id") or "@me")
            self._guilds[channel] = guild
        return f"https://discord.com/channels/{guild}/{channel}/{message_id}"

    # -- on the client's loop ----------------------------------------------------------

    async def _on_client_loop(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            return await self._tracked(make)
        future = asyncio.run_coroutine_threadsafe(self._tracked(make), loop)
        return await asyncio.wrap_future(future)

    async def _tracked(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        task = asyncio.current_task()
        if task is not None:
            self.in_flight.add(task)
        try:
            if self._before is not None:
                await self._before()
            return await make()
        finally:
            if task is not None:
                self.in_flight.discard(task)

    async def _post(
        self, channel: str, payload: Message, key: str, thread: str | None
    ) -> PostedRef:
        target = thread or channel
        await self._pace(target)
        body = marked(payload, post_marker(channel, key))
        body |= {"nonce": post_nonce(channel, key), "enforce_nonce": True}
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=target)
        message = await self._client.http.request(route, json=body)
        if thread is not None:
            return PostedRef(str(message["id"]), thread)
        thread_id = await self._ensure_thread(channel, message, root_thread_name(payload))
        return PostedRef(str(message["id"]), thread_id)

    async def _ensure_thread(self, channel: str, message: dict[str, Any], name: str) -> str:
        existing = (message.get("thread") or {}).get("id")
        if existing:
            return str(existing)
        try:
            created = await self._client.http.start_thread_with_message(
                channel, message["id"], name=name, auto_archive_duration=ARCHIVE_MINUTES
            )
        except discord.HTTPException as exc:
            if exc.code != THREAD_EXISTS:
                raise
            return str(message["id"])
        return str(created["id"])

    async def _find(self, channel: str, key: str) -> PostedRef | None:
        parent = root_key(key)
        root = await self._search(channel, post_marker(channel, parent or key))
        if root is None:
            return None
        if parent is None:
            name = root_thread_name(root)
            return PostedRef(str(root["id"]), await self._ensure_thread(channel, root, name))
        thread = str((root.get("thread") or {}).get("id") or root["id"])
        try:
            found = await self._search(thread, post_marker(channel, key))
        except discord.NotFound:  # the root has no thread yet: nothing was posted in it
            return None
        return PostedRef(str(found["id"]), thread) if found else None

    async def _find_in(self, channel: str, thread: str, key: str) -> PostedRef | None:
        try:
            found = await self._search(thread, post_marker(channel, key))
        except discord.NotFound:
            return None
        return PostedRef(str(found["id"]), thread) if found else None

    async def _search(self, channel: str, marker: str) -> dict[str, Any] | None:
        """The newest message in `channel`'s recent history that carries `marker`."""
        me = self._client.user.id if self._client.user else None
        before: str | None = None
        for _ in range(self._max_pages):
            page = await self._client.http.logs_from(channel, 100, before=before)
            for raw in page:
                message: dict[str, Any] = dict(raw)
                mine = me is None or str((message.get("author") or {}).get("id")) == str(me)
                if mine and has_marker(message, marker):
                    return message
            if len(page) < 100:
                return None
            before = str(page[-1]["id"])
        log.warning("stopped looking for a digest post after %d pages", self._max_pages)
        return None

    async def _pace(self, target: str) -> None:
        last = self._last_post.get(target)
        if last is not None:
            wait = self._interval - (time.monotonic() - last)
            if wait > 0:
                await asyncio.sleep(wait)
        self._last_post[target] = time.monotonic()
