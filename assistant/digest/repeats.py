"""One paper, one card per channel.

The same paper often reaches a channel twice a few days apart: HF daily papers on Tuesday,
the weekly list on Monday, an arXiv listing. The first digest that brings it gets the full
card; a later digest in the same channel lists it on one line, "already posted here on
<date>", linking to that card's thread, which keeps answering questions about it. Another
channel still gets the full card.

Which papers a digest repeats in a channel is decided once, when the digest is first posted
there, and stored (`digest_plans`): a crash, a restart or a concurrent post of the same
digest later makes the same decision, so the header that already went out stays true.

>>> earlier = RepeatBook(store).decide("slack", "C1", "2024-07-08/en", {"2407.08608": key})
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from assistant.state import StateStore


@dataclass(frozen=True)
class EarlierPost:
    """A card this channel already got: when, and the message that roots its thread."""

    posted_at: str  # ISO 8601, UTC
    message_id: str
    thread: str


class RepeatBook:
    """Decides, once per (channel, digest), which of a digest's papers the channel already
    got as a card in another digest."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def decide(
        self,
        platform: str,
        channel: str,
        digest_key: str,
        card_keys: Mapping[str, str],
        persist: bool = True,
    ) -> dict[str, EarlierPost]:
        """Paper id -> its earlier card, for the papers of this digest (`card_keys`: paper
        id -> this digest's key for its card) already posted here by another digest. The
        first decision is stored and returned ever after (unless `persist` is False: a
        dry run)."""
        with self._store.transaction() as conn:
            row = conn.execute(
                "SELECT repeats FROM digest_plans WHERE platform = ? AND channel = ? AND "
                "digest = ?",
                (platform, channel, digest_key),
            ).fetchone()
            if row is not None:
                stored = json.loads(row["repeats"])
                return {paper_id: EarlierPost(**value) for paper_id, value in stored.items()}
            found = _earlier_cards(conn, platform, channel, card_keys)
            if persist:
                conn.execute(
                    "INSERT INTO digest_plans (platform, channel, digest, repeats, planned_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        platform,
                        channel,
                        digest_key,
                        json.dumps({p: asdict(e) for p, e in found.items()}),
                        datetime.now(UTC).isoformat(timespec="seconds"),
                    ),
                )
            return found


def _earlier_cards(
    conn: sqlite3.Connection, platform: str, channel: str, card_keys: Mapping[str, str]
) -> dict[str, EarlierPost]:
    """The first card posted in this channel for each paper, other than this digest's."""
    ids = list(card_keys)
    found: dict[str, EarlierPost] = {}
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        marks = ", ".join("?" for _ in part)
        rows = conn.execute(
            "SELECT paper_id, item, message_id, thread_id, posted_at FROM digest_posts "
            f"WHERE platform = ? AND channel = ? AND status = 'posted' AND paper_id IN ({marks}) "
            "AND item LIKE '%/card:%#0' ORDER BY posted_at, rowid",
            (platform, channel, *part),
        ).fetchall()
        for row in rows:
            paper_id = row["paper_id"]
            if paper_id in found or row["item"] == card_keys[paper_id]:
                continue
            found[paper_id] = EarlierPost(
                row["posted_at"], row["message_id"], row["thread_id"] or row["message_id"]
            )
    return found
