"""Which version notes are due: for each new arXiv version of a paper, the channels whose
card of that paper went out before the version was seen, and the card's thread.

>>> for pending in pending_notes(store, "slack"):
...     print(pending.channel, pending.thread, pending.note.version)
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.digest.ledger import Slot
from assistant.digest.model import VersionNote
from assistant.digest.notes import version_note
from assistant.state import StateStore
from assistant.versions import update_from_row


@dataclass(frozen=True)
class PendingNote:
    """A version note to post: where (channel, the card's thread, the card's slot) and
    under which key (without the `#n` of its messages)."""

    note: VersionNote
    channel: str
    slot: Slot
    thread: str
    key: str


def update_key(card_item: str, paper_id: str, version: int) -> str:
    """The key of a version note: next to its card's (`.../card:ID#0` -> `.../version:ID:v2`)."""
    prefix = card_item.removesuffix(f"/card:{paper_id}#0")
    return f"{prefix}/version:{paper_id}:v{version}"


def pending_notes(store: StateStore, platform: str, target: str | None = None) -> list[PendingNote]:
    """The version notes not yet (completely) posted on `platform` (in `target` only, if
    given), oldest version first. A channel with several cards of the paper hears it in
    the thread of the first one."""
    rows = store.query(
        "SELECT u.*, p.channel, p.week, p.language, p.item, p.thread_id, p.message_id, "
        "MIN(p.posted_at) AS first_posted FROM paper_updates u "
        "JOIN digest_posts p ON p.paper_id = u.paper_id "
        "WHERE p.platform = ? AND (? IS NULL OR p.channel = ?) AND p.status = 'posted' "
        "AND p.item LIKE '%/card:%#0' AND p.posted_at < u.detected_at "
        "GROUP BY u.paper_id, u.version, p.channel ORDER BY u.detected_at, p.channel",
        (platform, target, target),
    )
    if not rows:
        return []
    done, open_ = _note_states(store, platform)
    pending = []
    for row in rows:
        key = update_key(row["item"], row["paper_id"], int(row["version"]))
        where = (row["channel"], row["week"], row["language"])
        if (*where, f"{key}#0") in done and (*where, key) not in open_:
            continue
        paper = store.get_paper(row["paper_id"])
        note = version_note(update_from_row(row), paper, row["language"])
        thread = row["thread_id"] or row["message_id"]
        pending.append(
            PendingNote(note, row["channel"], Slot(row["week"], row["language"]), thread, key)
        )
    return pending


def _note_states(
    store: StateStore, platform: str
) -> tuple[set[tuple[str, str, str, str]], set[tuple[str, str, str, str]]]:
    """(notes' messages recorded as posted; notes with a message still only claimed)."""
    rows = store.query(
        "SELECT channel, week, language, item, status FROM digest_posts WHERE platform = ? "
        "AND item LIKE '%/version:%'",
        (platform,),
    )
    done = {
        (r["channel"], r["week"], r["language"], r["item"]) for r in rows if r["status"] == "posted"
    }
    open_ = {
        (r["channel"], r["week"], r["language"], r["item"].rsplit("#", 1)[0])
        for r in rows
        if r["status"] != "posted"
    }
    return done, open_
