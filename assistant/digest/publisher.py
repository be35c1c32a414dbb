"""Posting a digest to a channel exactly once: header, then a card per paper.

Every message is claimed in SQLite before it is posted and recorded right after, so a crash,
a retry, a restart or a second publisher resumes where the first stopped:
- a message recorded as posted is never posted again;
- a claim held by a live publisher makes the others wait for it;
- a claim left by a dead publisher (older than the claim time) is taken over, and the new
  owner first asks the platform whether the message went out (each post carries its key as
  platform metadata) before posting it.
The recorded message ids are how a reply in a card's thread maps back to its paper.

>>> report = await DigestPublisher(store, conversations, settings).publish(digest, slack, "C1")
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from assistant.conversations import ConversationStore, Scope
from assistant.digest.model import Digest, DigestCard
from assistant.metrics import Metrics, PostOutcome, process_metrics
from assistant.state import StateStore

log = logging.getLogger(__name__)

ClaimState = Literal["owned", "taken_over", "posted", "busy"]


@dataclass(frozen=True)
class PostedRef:
    """Where a message landed: its id, and the id replies use to join its thread."""

    message_id: str
    thread_id: str | None = None

    @property
    def thread(self) -> str:
        return self.thread_id or self.message_id


class DigestChannel(Protocol):
    """A connector's side of digest posting: render for its platform, post, and find.

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

    async def find(self, channel: str, key: str) -> PostedRef | None:
        """The message posted with `key`, if the platform has it (crash recovery)."""
        ...


@dataclass(frozen=True)
class PlannedPost:
    """One message of a digest, in posting order."""

    key: str
    seq: int
    payload: Any
    parent: str | None = None
    paper_id: str | None = None
    scope: Scope | None = None


@dataclass
class PublishReport:
    """What one publishing run did."""

    posted: int = 0
    already_posted: int = 0
    recovered: int = 0
    waited_seconds: float = 0.0
    keys: list[str] = field(default_factory=list)


def plan_posts(
    digest: Digest, channel: DigestChannel, empty_week: str = "post"
) -> list[PlannedPost]:
    """Every message of the digest for this channel's platform, in order."""
    if not digest.cards and empty_week == "skip":
        return []
    prefix = f"{digest.week.isoformat()}/{digest.language}"
    posts: list[PlannedPost] = []
    header_scope = Scope(paper_ids=tuple(c.paper_id for c in digest.cards))
    posts += _parts(
        f"{prefix}/header",
        channel.render_header(digest),
        len(posts),
        None,
        header_scope if digest.cards else None,
    )
    for card in digest.cards:
        posts += _parts(
            f"{prefix}/card:{card.paper_id}",
            channel.render_card(digest, card),
            len(posts),
            card.paper_id,
            Scope(paper_ids=(card.paper_id,)),
        )
    return posts


def _parts(
    base: str, payloads: Sequence[Any], start: int, paper_id: str | None, scope: Scope | None
) -> list[PlannedPost]:
    first = f"{base}#0"
    return [
        PlannedPost(
            f"{base}#{i}",
            start + i,
            payload,
            None if i == 0 else first,
            paper_id,
            scope if i == 0 else None,
        )
        for i, payload in enumerate(payloads)
    ]


class DigestPublisher:
    """Posts digests through `DigestChannel`s, exactly once per channel and week."""

    def __init__(
        self,
        store: StateStore,
        conversations: ConversationStore,
        claim_seconds: float = 120.0,
        poll_seconds: float = 0.5,
        empty_week: str = "post",
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics or process_metrics()
        self._conversations = conversations
        self._claim_seconds = claim_seconds
        self._poll_seconds = poll_seconds
        self._empty_week = empty_week
        self.owner = f"{uuid.uuid4().hex[:12]}"

    async def publish(self, digest: Digest, channel: DigestChannel, target: str) -> PublishReport:
        """Post whatever of `digest` is not yet in `target`, in order."""
        report = PublishReport()
        for post in plan_posts(digest, channel, self._empty_week):
            await self._publish_one(digest, channel, target, post, report)
        return report

    def posted(self, platform: str, target: str, digest: Digest) -> dict[str, PostedRef]:
        """The messages of this digest already recorded in `target`, by key."""
        rows = self._store.query(
            "SELECT item, message_id, thread_id FROM digest_posts WHERE platform = ? AND "
            "channel = ? AND week = ? AND language = ? AND status = 'posted'",
            (platform, target, digest.week.isoformat(), digest.language),
        )
        return {r["item"]: PostedRef(r["message_id"], r["thread_id"]) for r in rows}

    async def _publish_one(
        self,
        digest: Digest,
        channel: DigestChannel,
        target: str,
        post: PlannedPost,
        report: PublishReport,
    ) -> None:
        while True:
            state = await asyncio.to_thread(self._claim, digest, channel.platform, target, post)
            if state == "posted":
                report.already_posted += 1
                self._metrics.count_digest_post(channel.platform, "already_posted")
                return
            if state == "busy":  # another publisher is posting it right now
                await asyncio.sleep(self._poll_seconds)
                report.waited_seconds += self._poll_seconds
                continue
            break
        ref = await channel.find(target, post.key) if state == "taken_over" else None
        outcome: PostOutcome = "recovered"
        if ref is not None:
            report.recovered += 1
        else:
            thread = self._parent_thread(digest, channel.platform, target, post)
            ref = await channel.post(target, post.payload, post.key, thread)
            report.posted += 1
            report.keys.append(post.key)
            outcome = "posted"
        await asyncio.to_thread(self._record, digest, channel.platform, target, post, ref)
        self._metrics.count_digest_post(channel.platform, outcome)

    def _parent_thread(
        self, digest: Digest, platform: str, target: str, post: PlannedPost
    ) -> str | None:
        if post.parent is None:
            return None
        parent = self.posted(platform, target, digest).get(post.parent)
        return parent.thread if parent else None

    def _claim(self, digest: Digest, platform: str, target: str, post: PlannedPost) -> ClaimState:
        now = time.time()
        key = (platform, target, digest.week.isoformat(), digest.language, post.key)
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
                    (*key, post.seq, post.paper_id, self.owner, now),
                )
                return "owned"
            if row["status"] == "posted":
                return "posted"
            if row["owner"] == self.owner:
                return "owned"
            if now - row["claimed_at"] < self._claim_seconds:
                return "busy"
            conn.execute(
                "UPDATE digest_posts SET owner = ?, claimed_at = ? WHERE platform = ? AND "
                "channel = ? AND week = ? AND language = ? AND item = ?",
                (self.owner, now, *key),
            )
            log.warning("taking over the stale claim on %s in %s:%s", post.key, platform, target)
            return "taken_over"

    def _record(
        self, digest: Digest, platform: str, target: str, post: PlannedPost, ref: PostedRef
    ) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE digest_posts SET status = 'posted', message_id = ?, thread_id = ?, "
                "posted_at = ? WHERE platform = ? AND channel = ? AND week = ? AND "
                "language = ? AND item = ?",
                (
                    ref.message_id,
                    ref.thread,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    platform,
                    target,
                    digest.week.isoformat(),
                    digest.language,
                    post.key,
                ),
            )
        if post.scope is not None:  # replies in this message's thread are about its papers
            self._conversations.open(platform, target, ref.thread, post.scope)
