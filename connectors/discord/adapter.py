"""The shared flows' calls, made on Discord (`ChatPlatform` for Discord).

An interaction is answered through its `Responder` (a deferred response that the first
public message replaces, private follow-ups); anything else is a channel message through
discord.py's REST client (its rate-limit buckets and retries). A Discord thread is a
channel: a message for Place(channel, thread) goes to the thread's channel id.

    platform = DiscordPlatform(client, admin_users=settings.discord.admin_user_ids)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import discord
from discord.http import Route

from assistant.commands import Visibility
from assistant.rich import bold, rich
from connectors.discord import translate as tr
from connectors.discord.respond import Responder
from connectors.discord.views import AskForm as AskModal
from connectors.flow.platform import (
    AskForm,
    Event,
    Message,
    MessageEvent,
    Place,
    Posted,
    Refused,
)

log = logging.getLogger(__name__)

THREAD_EXISTS = 160004  # "A thread has already been created for this message"
NO_THREAD = rich(
    "I could not open a thread on this answer (I need the ",
    bold("Create Public Threads"),
    " permission here): mention me in a reply to ask a follow-up.",
)


def responder(event: Event | None) -> Responder | None:
    """The responder of an interaction event (None for a message event)."""
    reply_to = event.reply_to if event is not None else None
    return reply_to if isinstance(reply_to, Responder) else None


class DiscordPlatform:
    """Interaction responses and channel messages; admins by their permissions."""

    name = "discord"

    def __init__(self, client: discord.Client, admin_users: frozenset[str] = frozenset()):
        self._client = client
        self._admins = admin_users

    async def acknowledge(self, event: Event, visibility: Visibility | None) -> None:
        answer = responder(event)
        if answer is None:
            return
        if visibility is None:
            await answer.defer_update()
        else:
            await answer.defer(private=visibility == "private")

    async def post(self, place: Place, message: Message, event: Event | None = None) -> Posted:
        answer = responder(event)
        if answer is not None:  # the interaction's own response (or a follow-up of it)
            original = answer.placeholder or not answer.interaction.response.is_done()
            sent = await answer.answer(message)
            return Posted(place, sent, answer if original else None)
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=_target(place))
        sent = await self._client.http.request(route, json=message)
        return Posted(place, str(sent["id"]))

    async def update(self, posted: Posted, message: Message) -> None:
        if isinstance(posted.handle, Responder):  # the interaction's response message
            await posted.handle.edit(message)
            return
        await self._client.http.request(self._route("PATCH", posted), json=message)

    async def delete(self, posted: Posted) -> None:
        if isinstance(posted.handle, Responder):
            await posted.handle.delete()
            return
        await self._client.http.request(self._route("DELETE", posted))

    async def post_privately(self, event: Event, messages: Sequence[Message]) -> None:
        """Ephemeral messages for an interaction; a message event can only be answered
        for everyone, in its place."""
        answer = responder(event)
        if answer is not None:
            await answer.private(messages)
            return
        for message in messages:
            await self.post(event.place, message)

    async def open_thread(self, posted: Posted, title: str) -> str:
        if posted.place.thread is not None:
            return posted.place.thread
        try:
            created = await self._client.http.start_thread_with_message(
                posted.place.channel,
                posted.id,
                name=tr.thread_name(title),
                auto_archive_duration=1440,
            )
        except discord.HTTPException as exc:
            if exc.code == THREAD_EXISTS:  # a message's thread has the message's id
                return posted.id
            log.warning("discord: could not start a thread in %s: %s", posted.place.channel, exc)
            raise Refused(NO_THREAD) from exc
        return str(created["id"])

    async def open_form(self, event: Event, form: AskForm) -> None:
        answer = responder(event)
        if answer is None:
            return
        thread = form.place.thread or form.place.channel
        modal = AskModal(form.paper_id, form.title, form.place.channel, thread)
        await answer.interaction.response.send_modal(modal)

    async def is_admin(self, event: Event) -> bool:
        answer = responder(event)
        if answer is None:
            return event.user in self._admins
        permissions = answer.interaction.permissions.value
        return tr.is_admin(permissions, event.user, self._admins)

    @asynccontextmanager
    async def working(self, event: MessageEvent) -> AsyncIterator[None]:
        """ "typing…" in the thread while the answer is written."""
        channel = self._client.get_partial_messageable(int(_target(event.place)))
        async with channel.typing():
            yield

    def _route(self, method: str, posted: Posted) -> Route:
        return Route(
            method,
            "/channels/{channel_id}/messages/{message_id}",
            channel_id=_target(posted.place),
            message_id=posted.id,
        )


def _target(place: Place) -> str:
    """The channel id a message for `place` goes to (a thread is a channel)."""
    return place.thread or place.channel
