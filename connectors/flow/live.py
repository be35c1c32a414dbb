"""An answer that shows up while the model writes it, on any platform.

The core calls `on_delta` from a worker thread; `LiveAnswer.add` schedules an update on
the flows' event loop at most once per `interval` seconds (Slack allows about one message
a second per channel, Discord five edits per five seconds) and never blocks the worker.
The first update posts the message (or replaces a placeholder), later ones edit it; the
final reply replaces it and the rest of a long reply follows in the thread.

    live = LiveAnswer(platform, renderer, place, asked, interval=1.0, root=placeholder)
    reply = await queue.run("answer", user, core.follow_up, message, live.add)
    await live.close()
    await live.finish(renderer.reply(reply))
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Sequence

from connectors.flow.platform import Asked, ChatPlatform, Message, Place, Posted, Renderer

log = logging.getLogger(__name__)


class LiveAnswer:
    """Streams an answer into one message in `place` (posted on the first update, or
    `root` when there is one already)."""

    def __init__(
        self,
        platform: ChatPlatform,
        renderer: Renderer,
        place: Place,
        asked: Asked | None = None,
        interval: float = 1.0,
        root: Posted | None = None,
    ) -> None:
        self._platform = platform
        self._renderer = renderer
        self._place = place
        self._asked = asked
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._text = ""
        self._last = time.monotonic()
        self._pending: list[concurrent.futures.Future[None]] = []
        self._guard = threading.Lock()
        self._lock = asyncio.Lock()
        self._closed = False
        self.posted = root
        self.updates = 0

    def add(self, piece: str) -> None:
        """The model's next piece of text (the core's `on_delta`; any thread)."""
        with self._guard:
            self._text += piece
            now = time.monotonic()
            if self._closed or now - self._last < self._interval or not self._text.strip():
                return
            self._last = now
            snapshot = self._renderer.streaming(self._text, self._asked)
            self._pending.append(asyncio.run_coroutine_threadsafe(self._show(snapshot), self._loop))

    async def close(self) -> None:
        """Wait for the updates under way; later pieces are not shown (the final reply
        replaces the message)."""
        with self._guard:
            self._closed = True
            pending = list(self._pending)
        await asyncio.gather(*(asyncio.wrap_future(f) for f in pending), return_exceptions=True)

    async def finish(self, messages: Sequence[Message]) -> Posted:
        """The final reply: its first message replaces the live one, the rest follow in the
        thread."""
        first, rest = messages[0], messages[1:]
        async with self._lock:
            if self.posted is None:
                self.posted = await self._platform.post(self._place, first)
            else:
                await self._platform.update(self.posted, first)
        thread = self._place.thread or self.posted.id
        for message in rest:
            await self._platform.post(Place(self._place.channel, thread), message)
        return self.posted

    async def discard(self) -> None:
        """Remove the live message (the answer turned out to be a private error)."""
        async with self._lock:
            if self.posted is not None:
                await self._platform.delete(self.posted)
                self.posted = None

    async def _show(self, message: Message) -> None:
        async with self._lock:  # in order, one at a time
            if self._closed:
                return
            try:
                if self.posted is None:
                    self.posted = await self._platform.post(self._place, message)
                else:
                    await self._platform.update(self.posted, message)
                self.updates += 1
            except Exception as exc:  # a missed preview is not worth failing the answer
                log.warning("%s: live update failed: %s", self._platform.name, exc)
