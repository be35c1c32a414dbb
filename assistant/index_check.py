"""Is the index what SQLite (the source of truth) says it is?

SQLite records, per paper, which version of its passages was indexed and how many there
are. A deleted, damaged or replaced index folder, or a state database restored from an
older backup, shows as a difference: in the total, or in the passages of a sample of
papers. Papers being written right now (marked pending in SQLite before their passages
are written, cleared after) are left out of both sides, so a check during an ingest is
still exact.

>>> check_index(store, index)
IndexCheck(ok=False, reason='The index holds 0 passages; the stored papers have 12,345 ...')
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.errors import IndexDamagedError
from assistant.index import SearchFilter, VectorIndex
from assistant.state import StateStore

SAMPLE = 5  # papers whose passages are counted one by one
MAX_EXCLUDED = 1000  # more pending papers than this: the total is not compared
ATTEMPTS = 3
_INDEXED = "content_hash IS NOT NULL AND pending_hash IS NULL"


@dataclass(frozen=True)
class IndexCheck:
    """The verdict, and the counts it rests on."""

    ok: bool
    reason: str
    expected: int  # passages SQLite records as indexed (papers not being written)
    found: int | None  # passages the index holds for those papers (None: not compared)
    sampled: int

    def raise_if_bad(self) -> None:
        if not self.ok:
            raise IndexDamagedError(self.reason)


def check_index(store: StateStore, index: VectorIndex, sample: int = SAMPLE) -> IndexCheck:
    """Compare the index with what SQLite recorded: the total, then `sample` random papers'
    passages. Retried if an ingest changed SQLite meanwhile."""
    for _ in range(ATTEMPTS):
        before = _recorded(store)
        expected, pending = before
        found = None
        if len(pending) <= MAX_EXCLUDED:
            found = index.count(SearchFilter(exclude_paper_ids=pending))
        samples = store.query(
            f"SELECT paper_id, content_hash, chunk_count FROM ingest_status WHERE {_INDEXED} "
            "ORDER BY RANDOM() LIMIT ?",
            (sample,),
        )
        missing = []
        for row in samples:
            has = index.count(SearchFilter(paper_ids=(row[0],), content_hash=row[1]))
            if has != row[2]:
                missing.append((str(row[0]), has, int(row[2])))
        if _recorded(store) == before:
            return _verdict(expected, found, missing, len(samples))
    return IndexCheck(True, "ok (ingest in progress)", expected, None, 0)


def _recorded(store: StateStore) -> tuple[int, tuple[str, ...]]:
    expected = store.query(
        f"SELECT COALESCE(SUM(chunk_count), 0) FROM ingest_status WHERE {_INDEXED}"
    )[0][0]
    pending = store.query(
        "SELECT paper_id FROM ingest_status WHERE pending_hash IS NOT NULL ORDER BY paper_id"
    )
    return int(expected), tuple(str(r[0]) for r in pending)


def _verdict(
    expected: int, found: int | None, missing: list[tuple[str, int, int]], sampled: int
) -> IndexCheck:
    fix = "Run `paperbot index rebuild` to rebuild it from the stored papers (SQLite)."
    if found is not None and found < expected:
        reason = (
            f"The index holds {found:,} passages; the stored papers have {expected:,} "
            f"indexed (was the index folder deleted or damaged?). {fix}"
        )
    elif found is not None and found > expected:
        reason = (
            f"The index holds {found:,} passages, more than the {expected:,} the stored "
            "papers account for (was the state database replaced, or restored from an "
            "older backup?). If the state is right, `paperbot index rebuild` makes the "
            "index match it; if not, restore the newest backup first."
        )
    elif missing:
        paper, has, want = missing[0]
        reason = (
            f"The index holds {has} of the {want} passages of paper {paper} (and "
            f"{len(missing) - 1} more of {sampled} sampled papers differ). {fix}"
        )
    else:
        return IndexCheck(True, "ok", expected, found, sampled)
    return IndexCheck(False, reason, expected, found, sampled)
