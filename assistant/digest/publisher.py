"""Posting a digest to a channel exactly once: header, then a card per paper; and notes
about new versions in the threads of the cards already posted.

What goes out is decided here (a paper the channel already got a card for is one line of
the header, see `assistant.digest.repeats`); how each message goes out exactly once, across
crashes, restarts and concurrent posts, is `assistant.digest.ledger`'s.

>>> report = await DigestPublisher(store, conversations, settings).publish(digest, slack, "C1")
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from assistant.conversations import ConversationStore, Scope
from assistant.digest.ledger import (
    DigestBusyError,
    DigestChannel,
    Notify,
    PlannedPost,
    PostedRef,
    PostLedger,
    PublishReport,
    Slot,
)
from assistant.digest.model import Digest, EarlierCard
from assistant.digest.repeats import RepeatBook
from assistant.digest.runs import PublisherRuns
from assistant.digest.updates import pending_notes
from assistant.errors import ConfigError
from assistant.metrics import Metrics, process_metrics
from assistant.state import StateStore

__all__ = [
    "DigestBusyError",
    "DigestChannel",
    "DigestPublisher",
    "Notify",
    "PlannedPost",
    "PostedRef",
    "PublishReport",
    "card_key",
    "digest_key",
    "plan_posts",
]

log = logging.getLogger(__name__)


def digest_key(digest: Digest) -> str:
    """What the keys of a digest's posts start with: week and language, and the source
    for digests not from the weekly list (an HF and a list digest of the same week are
    two digests)."""
    base = f"{digest.week.isoformat()}/{digest.language}"
    return base if digest.source == "potw" else f"{base}/{digest.source}"


def card_key(digest: Digest, paper_id: str) -> str:
    """The key of the message that roots a paper's card (and its thread) in a digest."""
    return f"{digest_key(digest)}/card:{paper_id}#0"


def plan_posts(
    digest: Digest, channel: DigestChannel, empty_week: str = "post"
) -> list[PlannedPost]:
    """Every message of the digest for this channel's platform, in order. A card the
    channel already got (`already_posted`) is only a line of the header."""
    if not digest.cards and empty_week == "skip":
        return []
    prefix = digest_key(digest)
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
        if card.already_posted is not None:
            continue
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
    """Posts digests through `DigestChannel`s, exactly once per channel and week.

    `claim_seconds`: a run that has not beaten for this long is taken for dead (runs beat
    every 2 s, or a sixth of it); on this host a dead run is noticed at once from its process.
    Either way its claims are taken over `settle_seconds` (at most `claim_seconds`) after
    it died. `max_wait_seconds`: how long a run waits for another one before giving up.
    `timezone` dates "already posted here on <date>" lines.
    """

    def __init__(
        self,
        store: StateStore,
        conversations: ConversationStore,
        claim_seconds: float = 30.0,
        poll_seconds: float = 0.5,
        empty_week: str = "post",
        metrics: Metrics | None = None,
        max_wait_seconds: float = 600.0,
        settle_seconds: float = 5.0,
        timezone: str = "UTC",
    ) -> None:
        self._store = store
        self._empty_week = empty_week
        runs = PublisherRuns(store, claim_seconds, settle_seconds)
        metrics = metrics or process_metrics()
        self._ledger = PostLedger(
            store, conversations, runs, metrics, poll_seconds, max_wait_seconds
        )
        self._repeats = RepeatBook(store)
        try:
            self._zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"PAPERBOT_DIGEST_TIMEZONE={timezone!r} is not a time zone (e.g. Asia/Tokyo)."
            ) from exc

    async def publish(
        self,
        digest: Digest,
        channel: DigestChannel,
        target: str,
        notify: Notify | None = None,
    ) -> PublishReport:
        """Post whatever of `digest` is not yet in `target`, in order. Papers `target`
        already got a card for, in another digest, are a line of the header linking there."""
        async with self._ledger.run(notify) as run:
            for post in await self.plan(digest, channel, target):
                await self._ledger.publish_one(run, Slot.of(digest), channel, target, post)
            return run.report

    async def plan(
        self, digest: Digest, channel: DigestChannel, target: str, dry_run: bool = False
    ) -> list[PlannedPost]:
        """The messages of `digest` for `target`, in order (`dry_run`: decide nothing)."""
        view = await self.channel_view(digest, channel, target, persist=not dry_run)
        return plan_posts(view, channel, self._empty_week)

    async def channel_view(
        self, digest: Digest, channel: DigestChannel, target: str, persist: bool = True
    ) -> Digest:
        """`digest` as `target` gets it: the papers it already got a card for (in another
        digest) marked `already_posted`, with a link to that card's thread."""
        cards = {c.paper_id: card_key(digest, c.paper_id) for c in digest.cards}
        earlier = await asyncio.to_thread(
            self._repeats.decide, channel.platform, target, digest_key(digest), cards, persist
        )
        if not earlier:
            return digest
        marked = []
        for card in digest.cards:
            post = earlier.get(card.paper_id)
            if post is not None:
                ref = PostedRef(post.message_id, post.thread)
                card = replace(
                    card,
                    already_posted=EarlierCard(
                        self._local_day(post.posted_at),
                        ref.thread,
                        await self._link(channel, target, ref),
                    ),
                )
            marked.append(card)
        return replace(digest, cards=tuple(marked))

    async def _link(self, channel: DigestChannel, target: str, ref: PostedRef) -> str | None:
        try:
            return await channel.link(target, ref)
        except Exception:  # a missing link only makes the line less handy
            log.warning("no link to message %s in %s", ref.message_id, target, exc_info=True)
            return None

    def _local_day(self, posted_at: str) -> date:
        return datetime.fromisoformat(posted_at).astimezone(self._zone).date()

    def posted(self, platform: str, target: str, digest: Digest) -> dict[str, PostedRef]:
        """The messages of this digest already recorded in `target`, by key."""
        return self._ledger.posted(platform, target, Slot.of(digest))

    async def publish_updates(
        self, channel: DigestChannel, target: str | None = None, notify: Notify | None = None
    ) -> PublishReport:
        """A note about each new arXiv version of a paper in the thread of its card, in
        every channel of this platform (or only `target`) that got the card before the
        version was seen: exactly once per channel and version."""
        notes = await asyncio.to_thread(pending_notes, self._store, channel.platform, target)
        async with self._ledger.run(notify) as run:
            for pending in notes:
                payloads = channel.render_update(pending.note)
                posts = [
                    PlannedPost(
                        f"{pending.key}#{i}",
                        i,
                        payload,
                        paper_id=pending.note.paper_id,
                        thread=pending.thread,
                    )
                    for i, payload in enumerate(payloads)
                ]
                for post in posts:
                    await self._ledger.publish_one(
                        run, pending.slot, channel, pending.channel, post
                    )
            return run.report
