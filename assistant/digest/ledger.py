"""Posting messages exactly once: claimed in SQLite before they go out, recorded after.

A crash, a retry, a restart or a second publisher resumes where the first stopped:
- a message recorded as posted is never posted again;
- a claim belongs to one publishing run (see `assistant.digest.runs`), not to a process: two
  runs in one process exclude each other as two replicas do;
- a claim held by a live run makes the others wait for it (they say so through `notify`);
- a claim left by a dead run (ended, its process gone, or silent for `claim_seconds`) is
  taken over once it settled, and the new owner first asks the platform whether the
  message went out (each post carries its key as platform metadata) before posting it.
Posts are recorded per channel and `Slot` (a digest's week and language). The recorded
message ids are how a reply in a card's thread maps back to its paper.

>>> async with ledger.run(notify) as run:
...     await ledger.publish_one(run, Slot("2024-07-08", "en"), slack, "C1", post)
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from assistant.conversations import ConversationStore, Scope
from assistant.digest.model import Digest, DigestCard, VersionNote
from assistant.digest.runs import PublisherRuns
from assistant.errors import UserError
from assistant.metrics import Metrics, PostOutcome
from assistant.state import StateStore

log = logging.getLogger(__name__)

ClaimState = Literal["owned", "taken_over", "posted", "busy"]
Notify = Callable[[str], None]
"""Told, once each, when a run starts waiting for another one and when it resumes a dead
one's work (connectors show it to the admin who asked for the post)."""

_WAITING = (
    "Another post of this digest is running in this channel; waiting for it to finish "
    "(nothing is posted twice)."
)
_RESUMING = (
    "A post of this digest here was interrupted; resuming it where it stopped (messages "
    "that already went out are found, not posted again)."
)


class DigestBusyError(UserError):
    """Another run kept posting this digest here for longer than a publisher waits."""


@dataclass(frozen=True)
class Slot:
    """Where posts are recorded in a channel: a digest's week and language."""

    week: str
    language: str

    @classmethod
    def of(cls, digest: Digest) -> Slot:
        return cls(digest.week.isoformat(), digest.language)


@dataclass(frozen=True)
class PostedRef:
    """Where a message landed: its id, and the id replies use to join its thread."""

    message_id: str
    thread_id: str | None = None

    @property
    def thread(self) -> str:
        return self.thread_id or self.message_id


class DigestChannel(Protocol):
    """A connector's side of digest posting: render for its platform, post, find, link.

    >>> ref = await channel.post("C123", payload, key="2024-07-08/en/header#0", thread=None)
    """

    platform: str

    def render_header(self, digest: Digest) -> list[Any]:
        """The header as one or more messages (the rest go in the first one's thread)."""
        ...

    def render_card(self, digest: Digest, card: DigestCard) -> list[Any]:
        """A card as one or more messages (the rest go in the first one's thread)."""
        ...

    async def post(self, channel: str, payload: Any, key: str, thread: str | None) -> PostedRef:
        """Post one message, carrying `key` as metadata; `thread` is a thread to reply in."""
        ...

    def render_update(self, note: VersionNote) -> list[Any]:
        """A version note for a card's thread, as one or more messages."""
        ...

    async def find(self, channel: str, key: str, thread: str | None = None) -> PostedRef | None:
        """The message posted with `key`, if the platform has it (crash recovery);
        `thread`: the thread it was posted in, when the post is a reply."""
        ...

    async def link(self, channel: str, ref: PostedRef) -> str | None:
        """A URL that opens this message and its thread (None: the platform has none)."""
        ...


@dataclass(frozen=True)
class PlannedPost:
    """One message of a digest, in posting order. `parent` is the key of the message
    whose thread it goes in (a continuation); `thread`, a thread given outright (a
    version note in a card's thread)."""

    key: str
    seq: int
    payload: Any
    parent: str | None = None
    paper_id: str | None = None
    scope: Scope | None = None
    thread: str | None = None


@dataclass
class PublishReport:
    """What one publishing run did."""

    posted: int = 0
    already_posted: int = 0
    recovered: int = 0
    waited_seconds: float = 0.0
    resumed: int = 0  # claims of a dead run taken over (its posts found or made)
    keys: list[str] = field(default_factory=list)


@dataclass
class Run:
    """One publishing call: its owner id, its report, and what it told the user."""

    owner: str
    report: PublishReport
    notify: Notify | None
    told: set[str] = field(default_factory=set)

    def tell(self, kind: str, text: str) -> None:
        if kind in self.told:
            return
        self.told.add(kind)
        log.info("%s", text)
        if self.notify is not None:
            self.notify(text)


class PostLedger:
    """Claims, posts and records messages exactly once (see the module docstring)."""

    def __init__(
        self,
        store: StateStore,
        conversations: ConversationStore,
        runs: PublisherRuns,
        metrics: Metrics,
        poll_seconds: float = 0.5,
        max_wait_seconds: float = 600.0,
    ) -> None:
        self._store = store
        self._conversations = conversations
        self._runs = runs
        self._metrics = metrics
        self._poll_seconds = poll_seconds
        self._max_wait = max_wait_seconds

    def posted(self, platform: str, target: str, slot: Slot) -> dict[str, PostedRef]:
        """The messages recorded as posted in `target` for `slot`, by key."""
        rows = self._store.query(
            "SELECT item, message_id, thread_id FROM digest_posts WHERE platform = ? AND "
            "channel = ? AND week = ? AND language = ? AND status = 'posted'",
            (platform, target, slot.week, slot.language),
        )
        return {r["item"]: PostedRef(r["message_id"], r["thread_id"]) for r in rows}

    @asynccontextmanager
    async def run(self, notify: Notify | None = None) -> AsyncIterator[Run]:
        """A registered run that beats until it ends (its claims are then free)."""
        owner = await asyncio.to_thread(self._runs.start)
        beating = asyncio.create_task(self._beat(owner))
        try:
            yield Run(owner, PublishReport(), notify)
        finally:
            beating.cancel()
            self._runs.end(owner)  # quick, and must happen even when cancelled
            with suppress(asyncio.CancelledError):
                await beating

    async def _beat(self, owner: str) -> None:
        while True:
            await asyncio.sleep(self._runs.beat_seconds)
            try:
                await asyncio.to_thread(self._runs.beat, owner)
            except sqlite3.Error:  # a busy or full disk: the next beat may pass
                log.warning("a publisher heartbeat failed", exc_info=True)

    async def publish_one(
        self,
        run: Run,
        slot: Slot,
        channel: DigestChannel,
        target: str,
        post: PlannedPost,
    ) -> None:
        """Post `post` in `target` unless it is recorded there already; wait for a live
        run holding it; take a dead run's claim over, finding its post first."""
        state = await self._await_claim(run, slot, channel.platform, target, post)
        if state == "posted":
            run.report.already_posted += 1
            self._metrics.count_digest_post(channel.platform, "already_posted")
            return
        ref = None
        if state == "taken_over":
            run.report.resumed += 1
            run.tell("resuming", _RESUMING)
            ref = await channel.find(target, post.key, post.thread)
        outcome: PostOutcome = "recovered"
        if ref is not None:
            run.report.recovered += 1
        else:
            thread = post.thread or self._parent_thread(slot, channel.platform, target, post)
            ref = await channel.post(target, post.payload, post.key, thread)
            run.report.posted += 1
            run.report.keys.append(post.key)
            outcome = "posted"
        await asyncio.to_thread(self._record, slot, channel.platform, target, post, ref)
        self._metrics.count_digest_post(channel.platform, outcome)

    async def _await_claim(
        self, run: Run, slot: Slot, platform: str, target: str, post: PlannedPost
    ) -> ClaimState:
        """Claim `post`, waiting while another run holds it (alive, or dead but settling)."""
        waited = 0.0
        while True:
            state, holder_dead = await asyncio.to_thread(
                self._claim, run, slot, platform, target, post
            )
            if state != "busy":
                return state
            if waited >= self._max_wait:
                raise DigestBusyError(
                    f"Another post of this digest has been posting {post.key} here for over "
                    f"{self._max_wait:.0f} s; try again later."
                )
            if holder_dead:
                run.tell("resuming", _RESUMING)
            else:
                run.tell("waiting", _WAITING)
            await asyncio.sleep(self._poll_seconds)
            waited += self._poll_seconds
            run.report.waited_seconds += self._poll_seconds

    def _parent_thread(
        self, slot: Slot, platform: str, target: str, post: PlannedPost
    ) -> str | None:
        if post.parent is None:
            return None
        parent = self.posted(platform, target, slot).get(post.parent)
        return parent.thread if parent else None

    def _claim(
        self, run: Run, slot: Slot, platform: str, target: str, post: PlannedPost
    ) -> tuple[ClaimState, bool]:
        """(what the claim gave, whether a "busy" holder is a dead run still settling)."""
        now = time.time()
        key = (platform, target, slot.week, slot.language, post.key)
        with self._store.transaction() as conn:  # BEGIN IMMEDIATE: one claimer at a time
            row = conn.execute(
                "SELECT status, owner, claimed_at FROM digest_posts WHERE platform = ? AND "
                "channel = ? AND week = ? AND language = ? AND item = ?",
                key,
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO digest_posts (platform, channel, week, language, item, seq, "
                    "paper_id, status, owner, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
                    "'claimed', ?, ?)",
                    (*key, post.seq, post.paper_id, run.owner, now),
                )
                return "owned", False
            if row["status"] == "posted":
                return "posted", False
            if row["owner"] == run.owner:
                return "owned", False
            holder = self._runs.free_at(row["owner"], float(row["claimed_at"]))
            if now < holder.free_at:
                return "busy", holder.dead
            conn.execute(
                "UPDATE digest_posts SET owner = ?, claimed_at = ? WHERE platform = ? AND "
                "channel = ? AND week = ? AND language = ? AND item = ?",
                (run.owner, now, *key),
            )
            log.warning(
                "taking over the claim of a dead publisher run on %s in %s:%s",
                post.key,
                platform,
                target,
            )
            return "taken_over", True

    def _record(
        self, slot: Slot, platform: str, target: str, post: PlannedPost, ref: PostedRef
    ) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE digest_posts SET status = 'posted', message_id = ?, thread_id = ?, "
                "posted_at = ? WHERE platform = ? AND channel = ? AND week = ? AND "
                "language = ? AND item = ?",
                (
                    ref.message_id,
                    ref.thread,
                    datetime.now(UTC).isoformat(timespec="microseconds"),  # before or after news
                    platform,
                    target,
                    slot.week,
                    slot.language,
                    post.key,
                ),
            )
        if post.scope is not None:  # replies in this message's thread are about its papers
            self._conversations.open(platform, target, ref.thread, post.scope)
