"""New arXiv versions of papers: what changed, remembered until every thread heard of it.

When arXiv enrichment sees a paper at a newer version than it had seen before, the store
records a `paper_updates` row with both abstracts; when the new version's full text comes
in, the size of the change is added. The digest publisher turns each row into one short
note in the thread of every card of that paper posted before it.

>>> change = fulltext_change(old_passages, new_passages)
>>> change.changed_words, change.words_after
(1240, 10150)
"""

from __future__ import annotations

import difflib
import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

from assistant.state import StateStore

_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+")


@dataclass(frozen=True)
class FulltextChange:
    """How much of the full text differs between two versions, in words."""

    words_before: int
    words_after: int
    changed_words: int

    @property
    def share(self) -> float:
        return self.changed_words / max(self.words_before, self.words_after, 1)


@dataclass(frozen=True)
class PaperUpdate:
    """A new version of a paper, as recorded."""

    paper_id: str
    version: int
    previous_version: int
    updated: date | None
    previous_abstract: str | None
    abstract: str | None
    fulltext: FulltextChange | None
    detected_at: str

    def abstract_changes(self) -> tuple[list[str], list[str]]:
        """(sentences of the old abstract no longer there, new sentences)."""
        return changed_sentences(self.previous_abstract or "", self.abstract or "")


def sentences(text: str) -> list[str]:
    return [s for s in (" ".join(p.split()) for p in _SENTENCE.split(text.strip())) if s]


def changed_sentences(before: str, after: str) -> tuple[list[str], list[str]]:
    """The sentences only in `before` and only in `after`, in order (whitespace aside)."""
    old, new = sentences(before), sentences(after)
    removed: list[str] = []
    added: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += old[i1:i2]
            added += new[j1:j2]
    return removed, added


def fulltext_change(before: Sequence[str], after: Sequence[str]) -> FulltextChange:
    """Compare two versions' passages word by word."""
    old = " ".join(before).split()
    new = " ".join(after).split()
    matcher = difflib.SequenceMatcher(a=old, b=new)
    changed = sum(
        max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
    )
    return FulltextChange(len(old), len(new), changed)


class VersionLog:
    """The `paper_updates` rows: new versions seen, and which papers to keep watching."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def get(self, paper_id: str, version: int) -> PaperUpdate | None:
        rows = self._store.query(
            "SELECT * FROM paper_updates WHERE paper_id = ? AND version = ?", (paper_id, version)
        )
        return update_from_row(rows[0]) if rows else None

    def updates(self, since: str | None = None) -> list[PaperUpdate]:
        """Every recorded new version (detected at or after `since`), oldest first."""
        rows = self._store.query(
            "SELECT * FROM paper_updates WHERE (? IS NULL OR detected_at >= ?) "
            "ORDER BY detected_at, paper_id, version",
            (since, since),
        )
        return [update_from_row(r) for r in rows]

    def record_fulltext_change(self, paper_id: str, version: int, change: FulltextChange) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE paper_updates SET fulltext_change = ? WHERE paper_id = ? AND version = ?",
                (json.dumps(asdict(change)), paper_id, version),
            )

    def watched(self, days: float) -> list[str]:
        """arXiv papers whose card went out to a channel in the last `days` days: the
        ones whose new versions are news."""
        since = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        rows = self._store.query(
            "SELECT DISTINCT paper_id FROM digest_posts WHERE status = 'posted' AND "
            "item LIKE '%/card:%#0' AND posted_at >= ? AND paper_id NOT LIKE 'web:%' "
            "ORDER BY paper_id",
            (since,),
        )
        return [r[0] for r in rows]


def update_from_row(row: sqlite3.Row) -> PaperUpdate:
    change = json.loads(row["fulltext_change"]) if row["fulltext_change"] else None
    return PaperUpdate(
        paper_id=row["paper_id"],
        version=int(row["version"]),
        previous_version=int(row["previous_version"]),
        updated=date.fromisoformat(row["updated"]) if row["updated"] else None,
        previous_abstract=row["previous_abstract"],
        abstract=row["abstract"],
        fulltext=FulltextChange(**change) if change else None,
        detected_at=row["detected_at"],
    )
