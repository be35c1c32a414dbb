"""Answering one interaction: deferred once, then followed up, privately or publicly.

Discord wants a response within 3 s and fixes a deferred response's visibility at the
defer: a public "thinking…" message cannot become private. So a private reply (an error
after a public defer) first deletes the public placeholder, then follows up privately.

    responder = Responder(interaction)
    await responder.defer(private=False)
    await responder.public(reply_messages(reply))   # or .private(...)
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from connectors.discord import translate as tr
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
        self._placeholder = False  # a public "thinking…" message awaits its answer
        self._message_id: int | None = None

    async def defer(self, private: bool) -> None:
        """Acknowledge now ("thinking…"), answer later; `private`: only the user sees it."""
        response = await self.interaction.response.defer(ephemeral=private, thinking=True)
        self._placeholder = not private
        self._message_id = getattr(response, "message_id", None)

    async def original_id(self) -> str:
        """The id of the (deferred) response message."""
        if self._message_id is None:
            self._message_id = (await self.interaction.original_response()).id
        return str(self._message_id)

    async def edit(self, message: Message) -> None:
        """Replace the deferred response (e.g. with an answer so far)."""
        await self.interaction.edit_original_response(**send_kwargs(message, edit=True))

    async def public(self, messages: list[Message]) -> None:
        """Messages for everyone: the first replaces the deferred response."""
        first, rest = messages[0], messages[1:]
        if self._placeholder:
            await self.edit(first)
            self._placeholder = False
        elif not self.interaction.response.is_done():
            await self.interaction.response.send_message(**send_kwargs(first))
        else:
            await self.followup(first)
        for message in rest:
            await self.followup(message)

    async def private(self, messages: list[Message]) -> None:
        """Messages only the user sees (a public placeholder is removed first)."""
        rest = messages
        if not self.interaction.response.is_done():
            await self.interaction.response.send_message(**send_kwargs(messages[0]), ephemeral=True)
            rest = messages[1:]
        elif self._placeholder:
            self._placeholder = False
            try:
                await self.interaction.delete_original_response()
            except discord.HTTPException as exc:
                log.warning("discord: could not remove the placeholder: %s", exc)
        for message in rest:
            await self.followup(message, private=True)

    async def followup(self, message: Message, private: bool = False) -> None:
        await self.interaction.followup.send(**send_kwargs(message), ephemeral=private)

    async def apologize(self) -> None:
        """The error boundary's short apology, privately."""
        await self.private(tr.text_messages(tr.APOLOGY))
