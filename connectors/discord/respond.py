"""Answering one interaction: acknowledged once, then followed up, privately or publicly.

Discord wants a first response within 3 s and fixes a deferred response's visibility at
the defer: a public "thinking…" message cannot become private. So a private reply (an
error after a public defer) first deletes the public placeholder, then follows up privately.
A click may also be acknowledged silently (`defer_update`): nothing shows until a follow-up.

    responder = Responder(interaction)
    await responder.defer(private=False)
    message_id = await responder.answer(payload)   # the deferred message, replaced
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord

from connectors.discord.render import Message
from connectors.discord.views import view_of

log = logging.getLogger(__name__)


def send_kwargs(message: Message, edit: bool = False) -> dict[str, Any]:
    """A message payload as discord.py's send / edit keyword arguments (an edit replaces
    content, embeds and buttons)."""
    kwargs: dict[str, Any] = {
        "content": message.get("content") or None,
        "embeds": [discord.Embed.from_dict(e) for e in message.get("embeds") or []],
        "allowed_mentions": discord.AllowedMentions.none(),
    }
    view = view_of(message.get("components"))
    if view is not None or edit:
        kwargs["view"] = view
    return kwargs


class Responder:
    """How one interaction is answered."""

    def __init__(self, interaction: discord.Interaction[Any]) -> None:
        self.interaction = interaction
        self.placeholder = False  # a public "thinking…" message awaits its answer

    async def defer(self, private: bool) -> None:
        """Acknowledge now ("thinking…"), answer later; `private`: only the user sees it."""
        if self.interaction.response.is_done():
            return
        await self.interaction.response.defer(ephemeral=private, thinking=True)
        self.placeholder = not private

    async def defer_update(self) -> None:
        """Acknowledge a click or a form silently (follow-ups come later)."""
        if not self.interaction.response.is_done():
            await self.interaction.response.defer()

    async def answer(self, message: Message) -> str:
        """The first public answer: it replaces the deferred "thinking…" message (or is
        the response itself, or a follow-up); its message id."""
        if self.placeholder:
            self.placeholder = False
            edited = await self.interaction.edit_original_response(**send_kwargs(message, True))
            return str(edited.id)
        if not self.interaction.response.is_done():
            await self.interaction.response.send_message(**send_kwargs(message))
            return str((await self.interaction.original_response()).id)
        sent = await self.interaction.followup.send(**send_kwargs(message), wait=True)
        return str(sent.id)

    async def edit(self, message: Message) -> None:
        """Replace the response message (e.g. with an answer so far)."""
        await self.interaction.edit_original_response(**send_kwargs(message, edit=True))

    async def delete(self) -> None:
        """Remove the response message."""
        self.placeholder = False
        await self.interaction.delete_original_response()

    async def private(self, messages: Sequence[Message]) -> None:
        """Messages only the user sees (a public placeholder is removed first)."""
        rest = list(messages)
        if not self.interaction.response.is_done():
            first = rest.pop(0)
            await self.interaction.response.send_message(**send_kwargs(first), ephemeral=True)
        elif self.placeholder:
            try:
                await self.delete()
            except discord.HTTPException as exc:
                log.warning("discord: could not remove the placeholder: %s", exc)
        for message in rest:
            await self.interaction.followup.send(**send_kwargs(message), ephemeral=True)
