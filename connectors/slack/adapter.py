"""The shared flows' calls, made on Slack's Web API (`ChatPlatform` for Slack).

The Web API client blocks, so each call runs in a thread of the connector's loop. Slack
is acknowledged by the bolt listeners on receipt, so `acknowledge` has nothing to do; a
private answer is an ephemeral message, or the response URL where the bot cannot post.

    platform = SlackPlatform(client, admin_ids=settings.slack.admin_user_ids)
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from assistant.commands import Visibility
from assistant.rich import code, rich
from connectors.flow.platform import (
    AskForm,
    Event,
    Message,
    MessageEvent,
    Place,
    Posted,
    Refused,
)
from connectors.slack.translate import SlackReplyTo, ask_modal, is_admin

log = logging.getLogger(__name__)

T = TypeVar("T")
REACTION = "eyes"
# Errors meaning the bot cannot post in the channel (a DM, a channel it is not in).
NOT_POSTABLE = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
CANNOT_POST = rich(
    "I can't post in this channel: invite me first (",
    code("/invite @paperbot"),
    "), or ask in a channel I am in.",
)


class SlackPlatform:
    """Posts, updates and private replies through the Web API; admins from `users.info`
    (cached for `admin_cache_seconds`) or SLACK_ADMIN_USERS."""

    name = "slack"

    def __init__(
        self,
        client: WebClient,
        admin_ids: frozenset[str] = frozenset(),
        admin_cache_seconds: float = 600.0,
    ) -> None:
        self.client = client
        self._admin_ids = admin_ids
        self._admin_ttl = admin_cache_seconds
        self._admins: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    async def acknowledge(self, event: Event, visibility: Visibility | None) -> None:
        return None  # the bolt listener acknowledged it on receipt

    async def post(self, place: Place, message: Message, event: Event | None = None) -> Posted:
        try:
            response = await self._call(
                self.client.chat_postMessage,
                channel=place.channel,
                thread_ts=place.thread,
                unfurl_links=False,
                **message,
            )
        except SlackApiError as exc:
            if exc.response.get("error") in NOT_POSTABLE:
                raise Refused(CANNOT_POST) from exc
            raise
        return Posted(place, str(response["ts"]))

    async def update(self, posted: Posted, message: Message) -> None:
        await self._call(
            self.client.chat_update, channel=posted.place.channel, ts=posted.id, **message
        )

    async def delete(self, posted: Posted) -> None:
        await self._call(self.client.chat_delete, channel=posted.place.channel, ts=posted.id)

    async def post_privately(self, event: Event, messages: Sequence[Message]) -> None:
        """Ephemeral messages; through the response URL where the bot cannot post (a DM,
        a private channel it was not invited to)."""
        reply_to = event.reply_to if isinstance(event.reply_to, SlackReplyTo) else None
        for message in messages:
            try:
                await self._call(
                    self.client.chat_postEphemeral,
                    channel=event.place.channel,
                    user=event.user,
                    thread_ts=event.place.thread,
                    **message,
                )
            except SlackApiError as exc:
                url = reply_to.response_url if reply_to else None
                if exc.response.get("error") not in NOT_POSTABLE or not url:
                    raise
                await self._call(WebhookClient(url).send, response_type="ephemeral", **message)

    async def open_thread(self, posted: Posted, title: str) -> str:
        return posted.place.thread or posted.id  # in Slack any message roots a thread

    async def open_form(self, event: Event, form: AskForm) -> None:
        reply_to = event.reply_to if isinstance(event.reply_to, SlackReplyTo) else None
        if reply_to is None or not reply_to.trigger_id:
            return
        try:
            await self._call(
                self.client.views_open, trigger_id=reply_to.trigger_id, view=ask_modal(form)
            )
        except SlackApiError as exc:  # e.g. the trigger expired: the user clicks again
            log.warning("slack: could not open the ask modal: %s", exc.response.get("error"))

    async def is_admin(self, event: Event) -> bool:
        return await asyncio.to_thread(self._is_admin, event.user)

    @asynccontextmanager
    async def working(self, event: MessageEvent) -> AsyncIterator[None]:
        """An "eyes" reaction on the question while its answer is written."""
        await self._react(self.client.reactions_add, event)
        try:
            yield
        finally:
            await self._react(self.client.reactions_remove, event)

    # -- helpers -------------------------------------------------------------------------

    async def _call(self, method: Callable[..., T], **kwargs: Any) -> T:
        return await asyncio.to_thread(method, **kwargs)

    async def _react(self, method: Callable[..., Any], event: MessageEvent) -> None:
        try:
            await self._call(
                method, channel=event.place.channel, timestamp=event.message_id, name=REACTION
            )
        except SlackApiError as exc:  # already there, gone, or no scope: not worth failing
            log.debug("slack: reaction failed: %s", exc.response.get("error"))

    def _is_admin(self, user: str) -> bool:
        if user in self._admin_ids:
            return True
        now = time.monotonic()
        with self._lock:
            cached = self._admins.get(user)
        if cached is not None and now - cached[0] < self._admin_ttl:
            return cached[1]
        try:
            info = self.client.users_info(user=user)["user"]
        except SlackApiError as exc:
            log.warning("slack: users.info failed for %s: %s", user, exc.response.get("error"))
            return False
        admin = is_admin(info, self._admin_ids)
        with self._lock:
            self._admins[user] = (now, admin)
        return admin
