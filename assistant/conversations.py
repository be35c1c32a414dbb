"""Conversations (one per platform + channel + thread), their turns, subscriptions and the
daily LLM token budget, all in the SQLite state database.

>>> conv = conversations.open("slack", "C1", "1719.0001", scope=Scope(paper_ids=("2407.08608",)))
>>> conversations.add_turn(conv, Turn("user", "what is new?", user="U1"))
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from assistant.messages import Citation
from assistant.state import StateStore


@dataclass(frozen=True)
class Scope:
    """What a question is about: some papers, a listed week, or (both empty) the corpus."""

    paper_ids: tuple[str, ...] = ()
    week: date | None = None

    @property
    def is_corpus(self) -> bool:
        return not self.paper_ids and self.week is None


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    role: str  # "user" or "assistant"
    text: str
    user: str | None = None
    standalone: str | None = None
    mode: str | None = None
    language: str | None = None
    citations: tuple[Citation, ...] = ()


@dataclass(frozen=True)
class Conversation:
    """A thread's conversation: its fixed scope (e.g. a digest card's paper) and its focus
    (the papers the last answer was about, which follow-ups stay on)."""

    id: int
    platform: str
    channel: str
    thread: str
    scope: Scope
    focus: tuple[str, ...] = ()
    turns: tuple[Turn, ...] = field(default=(), compare=False)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ConversationStore:
    """Reads and writes conversations in the state database."""

    def __init__(self, store: StateStore, history_turns: int = 8) -> None:
        self._store = store
        self._history_turns = history_turns

    def get(self, platform: str, channel: str, thread: str) -> Conversation | None:
        rows = self._store.query(
            "SELECT * FROM conversations WHERE platform = ? AND channel = ? AND thread = ?",
            (platform, channel, thread),
        )
        return self._conversation(rows[0]) if rows else None

    def open(
        self, platform: str, channel: str, thread: str, scope: Scope | None = None
    ) -> Conversation:
        """The thread's conversation, created with `scope` if it does not exist yet."""
        scope = scope or Scope()
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO conversations (platform, channel, thread, scope_papers, "
                "scope_week, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    platform,
                    channel,
                    thread,
                    json.dumps(list(scope.paper_ids)),
                    scope.week.isoformat() if scope.week else None,
                    _now(),
                    _now(),
                ),
            )
        found = self.get(platform, channel, thread)
        assert found is not None
        return found

    def add_turn(self, conversation: Conversation, turn: Turn) -> None:
        citations = json.dumps(
            [c.as_dict() | {"number": c.number} for c in turn.citations], ensure_ascii=False
        )
        with self._store.transaction() as conn:
            conn.execute(
                "INSERT INTO turns (conversation_id, role, user, text, standalone, mode, "
                "language, citations, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation.id,
                    turn.role,
                    turn.user,
                    turn.text,
                    turn.standalone,
                    turn.mode,
                    turn.language,
                    citations,
                    _now(),
                ),
            )
            conn.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (_now(), conversation.id)
            )

    def set_focus(self, conversation: Conversation, paper_ids: tuple[str, ...]) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE conversations SET focus_papers = ? WHERE id = ?",
                (json.dumps(list(paper_ids)), conversation.id),
            )

    def count_turns(self, conversation: Conversation) -> int:
        rows = self._store.query(
            "SELECT COUNT(*) FROM turns WHERE conversation_id = ?", (conversation.id,)
        )
        return int(rows[0][0])

    def _conversation(self, r: sqlite3.Row) -> Conversation:
        turns = self._store.query(
            "SELECT * FROM (SELECT * FROM turns WHERE conversation_id = ? ORDER BY id DESC "
            "LIMIT ?) ORDER BY id",
            (r["id"], self._history_turns),
        )
        scope = Scope(
            tuple(json.loads(r["scope_papers"])),
            date.fromisoformat(r["scope_week"]) if r["scope_week"] else None,
        )
        return Conversation(
            id=r["id"],
            platform=r["platform"],
            channel=r["channel"],
            thread=r["thread"],
            scope=scope,
            focus=tuple(json.loads(r["focus_papers"])),
            turns=tuple(_turn(t) for t in turns),
        )

    # -- subscriptions and budget -------------------------------------------------------

    def subscribe(self, platform: str, channel: str, user: str) -> bool:
        """Subscribe a channel to the weekly digest; False if it already was."""
        with self._store.transaction() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO subscriptions VALUES (?, ?, ?, ?)",
                (platform, channel, user, _now()),
            )
            return cursor.rowcount > 0

    def unsubscribe(self, platform: str, channel: str) -> bool:
        with self._store.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM subscriptions WHERE platform = ? AND channel = ?",
                (platform, channel),
            )
            return cursor.rowcount > 0

    def subscriptions(self, platform: str | None = None) -> list[tuple[str, str]]:
        rows = self._store.query(
            "SELECT platform, channel FROM subscriptions "
            + ("WHERE platform = ? " if platform else "")
            + "ORDER BY platform, channel",
            (platform,) if platform else (),
        )
        return [(r[0], r[1]) for r in rows]

    def reserve_llm_tokens(self, tokens: int, budget: int, day: date | None = None) -> bool:
        """Count `tokens` (a call's estimate) against the day's `budget` before the call,
        if they fit: False when they do not. One transaction, so concurrent calls cannot
        all pass the check and overrun the budget together; `settle_llm_tokens` corrects
        the count to what the call really used."""
        day = day or datetime.now(UTC).date()
        with self._store.transaction() as conn:
            row = conn.execute(
                "SELECT tokens FROM llm_usage WHERE day = ?", (day.isoformat(),)
            ).fetchone()
            if (int(row[0]) if row else 0) + tokens > budget:
                return False
            conn.execute(
                "INSERT INTO llm_usage (day, tokens, calls) VALUES (?, ?, 1) ON CONFLICT(day) "
                "DO UPDATE SET tokens = tokens + excluded.tokens, calls = calls + 1",
                (day.isoformat(), tokens),
            )
        return True

    def settle_llm_tokens(self, reserved: int, used: int, day: date) -> None:
        """Replace a reservation made on `day` by what the call used (0 if it failed)."""
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE llm_usage SET tokens = MAX(0, tokens + ?) WHERE day = ?",
                (used - reserved, day.isoformat()),
            )

    def llm_tokens_used(self, day: date | None = None) -> int:
        day = day or datetime.now(UTC).date()
        rows = self._store.query("SELECT tokens FROM llm_usage WHERE day = ?", (day.isoformat(),))
        return int(rows[0][0]) if rows else 0


def _turn(r: sqlite3.Row) -> Turn:
    citations = tuple(
        Citation(
            c["number"], c["paper_id"], c["title"], c["url"], c["section"], c["page"], c["quote"]
        )
        for c in json.loads(r["citations"])
    )
    return Turn(
        role=r["role"],
        text=r["text"],
        user=r["user"],
        standalone=r["standalone"],
        mode=r["mode"],
        language=r["language"],
        citations=citations,
    )
