"""Posting digests to Slack: the Slack connector's `DigestChannel`.

Every post carries its publisher key as message metadata, which is what `find` looks for
after a crash: in the channel's recent history for thread roots, and in the root's thread
for continuation messages (thread replies are not in `conversations.history`). The Web
API is blocking, so each call runs in a worker thread.

>>> channel = SlackDigestChannel(web_client)
>>> await DigestPublisher(store, conversations).publish(digest, channel, "C0123456789")
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

from slack_sdk import WebClient

from assistant.digest.model import Digest, DigestCard, VersionNote
from assistant.digest.publisher import PostedRef
from connectors.slack.render import card_messages, header_messages, update_messages

log = logging.getLogger(__name__)

EVENT_TYPE = "paperbot_digest"
PAGE = 200  # messages a history request (internal and Marketplace apps)
DISTRIBUTED_PAGE = 15  # non-Marketplace apps installed in other workspaces
_CONTINUATION = re.compile(r"#(\d+)$")


def post_metadata(key: str) -> dict[str, Any]:
    """The message metadata a digest post carries."""
    return {"event_type": EVENT_TYPE, "event_payload": {"key": key}}


def metadata_key(message: dict[str, Any]) -> str | None:
    """The publisher key of a posted message, if it is one of ours."""
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != EVENT_TYPE:
        return None
    key = (metadata.get("event_payload") or {}).get("key")
    return str(key) if key else None


def root_key(key: str) -> str | None:
    """The key of the thread root a continuation key (`...#2`) belongs to, else None."""
    match = _CONTINUATION.search(key)
    if match is None or match.group(1) == "0":
        return None
    return key[: match.start()] + "#0"


class SlackDigestChannel:
    """Posts digest messages (Block Kit) with `chat.postMessage`, at most one per
    `post_interval` seconds per channel (Slack's pace for a channel).

    Reading history back (`find`) follows the app's `distribution`: since 2025-05-29 a
    non-Marketplace app installed outside its own workspace ("distributed") gets at most 15
    messages a `conversations.history`/`replies` request and one request a minute, so it
    asks for 15 and waits `distributed_interval` between requests; internal and Marketplace
    apps ask for 200 at a time."""

    platform = "slack"

    def __init__(
        self,
        client: WebClient,
        post_interval: float = 1.0,
        lookback_seconds: float = 7 * 24 * 3600,
        max_pages: int = 10,
        distribution: str = "internal",
        distributed_interval: float = 61.0,  # a minute, and a margin for clock skew
    ) -> None:
        self._client = client
        self._interval = post_interval
        self._lookback = lookback_seconds
        self._max_pages = max_pages
        self._last_post: dict[str, float] = {}
        distributed = distribution == "distributed"
        self._page_size = DISTRIBUTED_PAGE if distributed else PAGE
        self._read_interval = distributed_interval if distributed else 0.0
        self._last_read: dict[str, float] = {}

    def render_header(self, digest: Digest) -> list[Any]:
        return header_messages(digest)

    def render_card(self, digest: Digest, card: DigestCard) -> list[Any]:
        return card_messages(digest, card)

    def render_update(self, note: VersionNote) -> list[Any]:
        return update_messages(note)

    async def post(self, channel: str, payload: Any, key: str, thread: str | None) -> PostedRef:
        await self._pace(channel)
        ts = await asyncio.to_thread(self._post, channel, payload, key, thread)
        return PostedRef(ts, thread or ts)

    async def find(self, channel: str, key: str, thread: str | None = None) -> PostedRef | None:
        if thread is not None:  # a reply in a known thread (a version note)
            return await asyncio.to_thread(self._find_reply, channel, thread, key)
        return await asyncio.to_thread(self._find, channel, key)

    async def link(self, channel: str, ref: PostedRef) -> str | None:
        """The message's permalink (`chat.getPermalink`): it opens the message and its thread."""
        return await asyncio.to_thread(self._permalink, channel, ref.message_id)

    def _permalink(self, channel: str, ts: str) -> str | None:
        response = self._client.chat_getPermalink(channel=channel, message_ts=ts)
        permalink = response.get("permalink")
        return str(permalink) if permalink else None

    async def _pace(self, channel: str) -> None:
        last = self._last_post.get(channel)
        if last is not None:
            wait = self._interval - (time.monotonic() - last)
            if wait > 0:
                await asyncio.sleep(wait)
        self._last_post[channel] = time.monotonic()

    def _post(self, channel: str, payload: dict[str, Any], key: str, thread: str | None) -> str:
        response = self._client.chat_postMessage(
            channel=channel,
            text=payload["text"],
            blocks=payload["blocks"],
            thread_ts=thread,
            metadata=post_metadata(key),
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["ts"])

    def _find(self, channel: str, key: str) -> PostedRef | None:
        parent = root_key(key)
        wanted = parent or key
        for message in self._history(channel):
            if metadata_key(message) != wanted:
                continue
            ts = str(message["ts"])
            if parent is None:
                return PostedRef(ts, str(message.get("thread_ts") or ts))
            return self._find_reply(channel, ts, key)
        return None

    def _find_reply(self, channel: str, root_ts: str, key: str) -> PostedRef | None:
        for message in self._pages(
            self._client.conversations_replies,
            channel=channel,
            ts=root_ts,
            include_all_metadata=True,
            limit=self._page_size,
        ):
            if metadata_key(message) == key:
                return PostedRef(str(message["ts"]), root_ts)
        return None

    def _history(self, channel: str) -> Iterator[dict[str, Any]]:
        oldest = f"{time.time() - self._lookback:.6f}"
        yield from self._pages(
            self._client.conversations_history,
            channel=channel,
            include_all_metadata=True,
            limit=self._page_size,
            oldest=oldest,
        )

    def _pages(self, method: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        cursor = None
        for _ in range(self._max_pages):
            self._pace_read(method.__name__)
            response = method(**kwargs, cursor=cursor) if cursor else method(**kwargs)
            yield from response.get("messages") or []
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return
        log.warning("stopped looking for a digest post after %d pages", self._max_pages)

    def _pace_read(self, method: str) -> None:
        """Wait until another request to `method` is allowed (distributed apps only)."""
        last = self._last_read.get(method)
        if last is not None and self._read_interval:
            wait = self._read_interval - (time.monotonic() - last)
            if wait > 0:
                log.info("slack: waiting %.0f s to read more history (distributed app)", wait)
                time.sleep(wait)
        self._last_read[method] = time.monotonic()
