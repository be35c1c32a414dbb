"""The chat flows, written once for every platform: ask, follow-ups, the ask form, All
Q&A, share, feedback, with the allowlist, the admin check, deduplication and the error
boundary. A platform brings its adapter (`ChatPlatform`) and its `Renderer`.

Every flow acknowledges first (the platforms' 3 s) and does the blocking work (the core,
SQLite) on the work queue, in the lane that fits: answers fairly per user, short work
never behind them.

    flows = ChatFlows(platform, renderer, core, store, queue, allowed={"C1"})
    flows.spawn(event)          # on the flows' event loop; tracked until done
    await flows.drain(20)       # at shutdown
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import date
from typing import Any, TypeVar

from assistant.commands import Ask, Command, Help, PostDigest, Unclear, parse_command
from assistant.conversations import Scope
from assistant.core import Assistant
from assistant.digest.model import Digest, DigestCard
from assistant.errors import NotFoundError
from assistant.feedback import Feedback, FeedbackStore
from assistant.messages import IncomingMessage, Origin, Reply
from assistant.rich import RichText, rich
from assistant.state import StateStore
from connectors.flow import texts
from connectors.flow.live import LiveAnswer
from connectors.flow.platform import (
    AllQAClick,
    AskClick,
    Asked,
    AskForm,
    ChatPlatform,
    CommandEvent,
    Event,
    FormSubmit,
    Message,
    MessageEvent,
    Place,
    Posted,
    Refused,
    Renderer,
    ShareClick,
    VoteClick,
)
from connectors.flow.work import Lane, WorkQueue

log = logging.getLogger(__name__)

T = TypeVar("T")
DigestLoader = Callable[[date | None, str], Digest]


def lane_for(command: Command) -> Lane:
    """Help and usage errors are quick, admin commands have their own lane, the rest
    (search, show, ask, the week's list) are answers."""
    if isinstance(command, Help | Unclear):
        return "quick"
    return "admin" if command.admin_only else "answer"


class ChatFlows:
    """Runs each event's flow on one platform, inside an error boundary."""

    def __init__(
        self,
        platform: ChatPlatform,
        renderer: Renderer,
        assistant: Assistant,
        store: StateStore,
        queue: WorkQueue,
        allowed: Collection[str] = (),
        load_digest: DigestLoader | None = None,
        language: str = "en",
        stream_interval: float = 1.0,
    ) -> None:
        self.platform = platform
        self.renderer = renderer
        self.queue = queue
        self._assistant = assistant
        self._store = store
        self._feedback = FeedbackStore(store)
        self._allowed = frozenset(allowed)
        self._load_digest = load_digest
        self._language = language
        self._interval = stream_interval
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- running -------------------------------------------------------------------------

    def spawn(self, event: Event) -> asyncio.Task[Reply | None]:
        """Handle `event` as a task of the running loop, tracked until it is done."""
        task = asyncio.get_running_loop().create_task(self.handle(event))
        self.track(task)
        return task

    def track(self, task: asyncio.Task[Any]) -> None:
        """Count `task` as work in flight (for `drain`)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until the work in flight is done (False if `timeout` passed first)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            for _ in range(20):  # let events already handed over reach their tasks
                await asyncio.sleep(0)
            pending = {t for t in self._tasks if not t.done()}
            if not pending:
                return True
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(pending, timeout=left)

    def cancel(self) -> None:
        """Cancel the work in flight (shutdown ran out of time)."""
        for task in list(self._tasks):
            task.cancel()

    async def handle(self, event: Event) -> Reply | None:
        """The event's flow inside the error boundary: a failure is logged once with its
        traceback and the user gets a short apology (privately where possible)."""
        try:
            return await self._dispatch(event)
        except Exception:
            log.exception("%s: handling %s failed", event.platform, type(event).__name__)
            try:
                await self.platform.post_privately(event, self.renderer.notice(texts.APOLOGY))
            except Exception as exc:
                log.warning("%s: could not apologize to %s: %s", event.platform, event.user, exc)
            return None

    async def _dispatch(self, event: Event) -> Reply | None:
        if isinstance(event, CommandEvent):
            return await self.command(event)
        if isinstance(event, MessageEvent):
            return await self.message(event)
        if isinstance(event, ShareClick):
            return await self.share(event)
        if isinstance(event, FormSubmit):
            return await self.form(event)
        if isinstance(event, VoteClick):
            await self.vote(event)
        elif isinstance(event, AllQAClick):
            await self.all_qa(event)
        elif isinstance(event, AskClick):
            await self.open_form(event)
        else:
            raise TypeError(f"no flow for {event!r}")
        return None

    # -- flows ---------------------------------------------------------------------------

    async def command(self, event: CommandEvent) -> Reply | None:
        """A `/paper` command: acknowledged as the core says it will be answered, run in
        its lane, answered publicly or privately as the reply says."""
        command = event.command
        if not self._allowed_here(event):
            await self._notice(event, texts.not_enabled(event.platform))
            return None
        if isinstance(command, Ask):
            return await self._ask(event, command)
        await self.platform.acknowledge(event, command.visibility)
        admin = command.admin_only and await self.platform.is_admin(event)
        origin = Origin(event.platform, event.user, event.place.channel, event.place.thread, admin)
        notices = self._notices(event) if isinstance(command, PostDigest) else None
        reply = await self.queue.run(
            lane_for(command), event.user, self._assistant.run, command, origin, notices
        )
        await self._deliver(event, reply, self.renderer.reply(reply))
        return reply

    def _notices(self, event: Event) -> Callable[[str], None]:
        """What a long command says while it runs (a digest post waiting for another
        post of the same digest, or resuming one that died), told to its user privately
        at once; called from the worker thread."""
        loop = asyncio.get_running_loop()

        def notice(text: str) -> None:
            sent = asyncio.run_coroutine_threadsafe(self._notice(event, rich(text)), loop)
            sent.add_done_callback(_log_failure)

        return notice

    async def _ask(self, event: CommandEvent, command: Ask) -> Reply | None:
        """`ask`: a public message that becomes the answer (streamed into while an LLM
        writes it); its thread carries the conversation on (asked in a thread, that one)."""
        await self.platform.acknowledge(event, "public")
        asked = (event.user, command.question)
        try:
            root = await self.platform.post(event.place, self.renderer.placeholder(asked), event)
        except Refused as refused:
            await self._notice(event, refused.hint)
            return None
        place = event.place
        origin = Origin(event.platform, event.user, place.channel, place.thread, message_id=root.id)
        answer = functools.partial(self._assistant.run, command, origin)
        reply, live = await self._streamed(event, place, asked, answer, root)
        if reply.private:
            return reply
        first, *rest = self.renderer.reply(reply, asked=asked, feedback=True)
        await live.finish([first])
        await self._follow_in_thread(event, reply, root, command.question, rest)
        return reply

    async def _follow_in_thread(
        self, event: Event, reply: Reply, root: Posted, title: str, rest: list[Message]
    ) -> None:
        """The rest of a long answer, in the thread the answer opens (or is in)."""
        channel, thread = root.place.channel, root.place.thread
        if reply.opens_thread:
            try:
                thread = await self.platform.open_thread(root, title)
            except Refused as refused:
                for message in rest:
                    await self.platform.post(root.place, message)
                await self._notice(event, refused.hint)
                return
            if thread != root.id:  # the conversation was opened under the root's id
                scope = Scope(paper_ids=reply.scope_paper_ids)
                start = self._assistant.start_thread
                await self._quick(event, start, event.platform, channel, thread, scope)
        for message in rest:
            await self.platform.post(Place(channel, thread), message)

    async def message(self, event: MessageEvent) -> Reply | None:
        """A thread message or a mention: answered in its thread when it is for us, once
        per delivery; a mention outside a thread opens one on itself."""
        place = event.place
        if place.thread is not None and not event.mentioned:
            found = self._assistant.conversations.get
            if await self._quick(event, found, event.platform, place.channel, place.thread) is None:
                return None  # people talking in a thread that is not ours
        if event.delivery_id is not None:
            key = f"{event.platform}:{event.delivery_id}"
            if not await self._quick(event, self._store.first_time, key):
                log.info("%s: %s already handled: ignored", event.platform, event.delivery_id)
                return None
        if not self._allowed_here(event):
            if event.mentioned:
                await self._notice(event, texts.not_enabled(event.platform))
            return None
        if place.thread is None:
            try:
                thread = await self.platform.open_thread(
                    Posted(place, event.message_id), event.text
                )
            except Refused as refused:
                await self._notice(event, refused.hint)
                return None
            place = Place(place.channel, thread)
        message = IncomingMessage(
            event.platform, event.user, place.channel, event.text, place.thread, False,
            event.message_id,
        )  # fmt: skip
        async with self.platform.working(event):
            answer = functools.partial(self._assistant.follow_up, message)
            reply, live = await self._streamed(event, place, None, answer)
            if not reply.private:
                await live.finish(self.renderer.reply(reply, feedback=True))
        return reply

    async def form(self, event: FormSubmit) -> Reply | None:
        """The "Ask about this paper" form: answered for everyone in the card's thread."""
        if not self._allowed_here(event):
            await self._notice(event, texts.not_enabled(event.platform))
            return None
        await self.platform.acknowledge(event, None)
        asked = (event.user, event.question)
        place = event.place
        message = IncomingMessage(
            event.platform, event.user, place.channel, event.question, place.thread
        )
        scope = Scope(paper_ids=(event.paper_id,))
        answer = functools.partial(self._assistant.ask, message, scope)
        reply, live = await self._streamed(event, place, asked, answer)
        if not reply.private:
            await live.finish(self.renderer.reply(reply, asked=asked, feedback=True))
        return reply

    async def open_form(self, event: AskClick) -> None:
        """ "Ask about this paper": the form, opened within the platform's 3 s (the paper
        lookup runs in the quick lane, never behind answers)."""
        paper = await self._quick(event, self._store.get_paper, event.paper_id)
        title = paper.title if paper else event.paper_id
        await self.platform.open_form(event, AskForm(event.paper_id, title, event.place))

    async def share(self, event: ShareClick) -> Reply | None:
        """ "Share in channel" on private results: the command run again, for everyone."""
        if not self._allowed_here(event):
            await self._notice(event, texts.not_enabled(event.platform))
            return None
        await self.platform.acknowledge(event, "public")
        command = parse_command(event.command)
        origin = Origin(event.platform, event.user, event.place.channel, event.place.thread)
        reply = await self.queue.run(
            lane_for(command), event.user, self._assistant.run, command, origin
        )
        if reply.kind == "error":
            await self.platform.post_privately(event, self.renderer.reply(reply))
            return reply
        shared = replace(reply, visibility="public", share=None)
        await self._deliver(event, shared, self.renderer.reply(shared, shared_by=event.user))
        return shared

    async def vote(self, event: VoteClick) -> None:
        """Helpful / not helpful on an answer: stored (each user's last vote counts)."""
        await self.platform.acknowledge(event, None)
        if event.verdict not in ("helpful", "unhelpful"):
            return
        feedback = Feedback(
            event.platform,
            event.place.channel,
            event.place.thread or event.message_id,
            event.message_id,
            event.user,
            "helpful" if event.verdict == "helpful" else "unhelpful",
        )
        await self._quick(event, self._feedback.record, feedback)
        await self._notice(event, texts.THANKS)

    async def all_qa(self, event: AllQAClick) -> None:
        """ "All Q&A": every Q&A pair of the card, in the card's thread, once per thread."""
        await self.platform.acknowledge(event, None)
        found = await self._quick(event, self._stored_card, event.week, event.paper_id)
        if found is None:
            await self._notice(event, texts.DIGEST_GONE)
            return
        place = event.place
        key = f"{event.platform}:all_qa:{place.channel}:{place.thread}"
        if not await self._quick(event, self._store.first_time, key):
            await self._notice(event, texts.QA_ALREADY)
            return
        for message in self.renderer.qa(*found):
            await self.platform.post(place, message)

    # -- helpers -------------------------------------------------------------------------

    async def _streamed(
        self,
        event: Event,
        place: Place,
        asked: Asked | None,
        answer: Callable[[Callable[[str], None]], Reply],
        root: Posted | None = None,
    ) -> tuple[Reply, LiveAnswer]:
        """`answer(on_delta)` in the answer lane, streamed into a live message in `place`
        (`root`, or one posted on the first update). A private reply (an error) removes the
        live message and goes to the user privately; the caller finishes a public one."""
        live = LiveAnswer(self.platform, self.renderer, place, asked, self._interval, root)
        try:
            reply = await self.queue.run("answer", event.user, answer, live.add)
        except Exception:  # no "Looking into it…" left behind; the boundary apologizes
            await live.close()
            with contextlib.suppress(Exception):
                await live.discard()
            raise
        await live.close()
        if reply.private:
            await live.discard()
            await self.platform.post_privately(event, self.renderer.reply(reply))
        return reply, live

    def _stored_card(self, week: str, paper_id: str) -> tuple[Digest, DigestCard] | None:
        try:
            day = date.fromisoformat(week)
        except ValueError:
            return None
        if self._load_digest is None:
            return None
        try:
            digest = self._load_digest(day, self._language)
        except NotFoundError:
            return None
        card = next((c for c in digest.cards if c.paper_id == paper_id), None)
        return (digest, card) if card is not None else None

    def _allowed_here(self, event: Event) -> bool:
        return not self._allowed or event.place.channel in self._allowed

    async def _deliver(self, event: Event, reply: Reply, messages: list[Message]) -> None:
        """A reply where it belongs: privately, or for everyone (the rest of a long
        public reply in the first message's thread)."""
        if reply.private:
            await self.platform.post_privately(event, messages)
            return
        first = await self.platform.post(event.place, messages[0], event)
        target = event.place
        if len(messages) > 1 and target.thread is None:
            with contextlib.suppress(Refused):  # no thread: the rest follows in the channel
                title = reply.text.strip().split("\n", 1)[0] or reply.kind
                target = Place(target.channel, await self.platform.open_thread(first, title))
        for message in messages[1:]:
            await self.platform.post(target, message)

    async def _notice(self, event: Event, text: RichText) -> None:
        await self.platform.post_privately(event, self.renderer.notice(text))

    async def _quick(self, event: Event, fn: Callable[..., T], *args: Any) -> T:
        return await self.queue.run("quick", event.user, fn, *args)


def _log_failure(sent: Any) -> None:
    """A notice that could not be delivered is logged; the command goes on."""
    if not sent.cancelled() and sent.exception() is not None:
        log.warning("a notice could not be delivered: %s", sent.exception())
