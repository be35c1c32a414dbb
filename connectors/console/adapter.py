"""The shared flows' calls, made on a terminal (`ChatPlatform` for the console).

Everything is printed; an answer being written is printed as it comes (each update prints
what is new), then its sources. The console user runs their own terminal: an admin.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from rich.console import Console

from assistant.commands import Visibility
from connectors.console.render import ConsoleMessage
from connectors.flow.platform import AskForm, Event, Message, MessageEvent, Place, Posted

_IDS = itertools.count(1)


class ConsolePlatform:
    """Prints what the flows post; remembers how much of a streamed answer is shown."""

    name = "console"

    def __init__(self, console: Console) -> None:
        self._console = console
        self._streamed: dict[str, str] = {}  # posted id -> text printed so far

    async def acknowledge(self, event: Event, visibility: Visibility | None) -> None:
        return None

    async def post(self, place: Place, message: Message, event: Event | None = None) -> Posted:
        posted = Posted(place, f"m{next(_IDS)}")
        self._show(posted.id, message)
        return posted

    async def update(self, posted: Posted, message: Message) -> None:
        self._show(posted.id, message)

    async def delete(self, posted: Posted) -> None:
        if self._streamed.pop(posted.id, None) is not None:
            self._console.print()

    async def post_privately(self, event: Event, messages: Sequence[Message]) -> None:
        for message in messages:
            self._show(None, message)

    async def open_thread(self, posted: Posted, title: str) -> str:
        return posted.place.thread or posted.id

    async def open_form(self, event: Event, form: AskForm) -> None:
        raise NotImplementedError("the console has no buttons")

    async def is_admin(self, event: Event) -> bool:
        return True

    @asynccontextmanager
    async def working(self, event: MessageEvent) -> AsyncIterator[None]:
        yield

    def _show(self, posted: str | None, message: ConsoleMessage) -> None:
        if message.streamed is not None and posted is not None:
            shown = self._streamed.get(posted, "")
            new = message.streamed[len(shown) :] if message.streamed.startswith(shown) else ""
            self._console.print(new, end="", markup=False, highlight=False)
            self._streamed[posted] = message.streamed
            return
        if posted is not None and self._streamed.pop(posted, None) is not None:
            self._console.print()  # end the streamed line
            self._console.print(message.after_stream or message.renderable)
            return
        if message.renderable is not None:
            self._console.print(message.renderable)
