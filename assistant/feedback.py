"""Helpful / not helpful votes on answers, from any connector, kept in the state database.

One vote per user and answer message: a second click replaces the first.

>>> FeedbackStore(store).record(Feedback("slack", "C1", "171.1", "171.2", "U1", "helpful"))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from assistant.state import StateStore

Verdict = Literal["helpful", "unhelpful"]


@dataclass(frozen=True)
class Feedback:
    """A helpful / not helpful click on an answer message."""

    platform: str
    channel: str
    thread: str
    message_ts: str
    user: str
    verdict: Verdict


class FeedbackStore:
    """Writes and counts answer feedback in the `answer_feedback` table."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def record(self, feedback: Feedback) -> None:
        """Store a vote, replacing the user's earlier vote on the same message."""
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO answer_feedback (platform, channel, thread, message_ts, user, "
                "verdict, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (platform, "
                "channel, message_ts, user) DO UPDATE SET verdict = excluded.verdict, "
                "created_at = excluded.created_at",
                (
                    feedback.platform,
                    feedback.channel,
                    feedback.thread,
                    feedback.message_ts,
                    feedback.user,
                    feedback.verdict,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )

    def votes(self, platform: str, channel: str, message_ts: str) -> dict[str, str]:
        """Each user's verdict on one answer message."""
        rows = self._store.query(
            "SELECT user, verdict FROM answer_feedback WHERE platform = ? AND channel = ? "
            "AND message_ts = ?",
            (platform, channel, message_ts),
        )
        return {r["user"]: r["verdict"] for r in rows}
