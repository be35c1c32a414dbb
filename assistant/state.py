"""SQLite state: papers, listings, passages and ingest status, with schema migrations.

The database is the source of truth; the vector index can always be rebuilt from it.

>>> store = StateStore.open(Path("data/paperbot.sqlite3"))
>>> store.upsert_record(record)
"""

from __future__ import annotations

import errno
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from assistant.errors import DataDirError
from assistant.ids import is_arxiv_key
from assistant.models import Chunk, Link, Listing, Paper, PaperRecord

# Each entry moves the schema one version up. Never edit a released entry: append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE papers (
        paper_id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        authors TEXT NOT NULL DEFAULT '[]',
        published TEXT,
        updated TEXT,
        version INTEGER,
        url TEXT,
        pdf_url TEXT,
        categories TEXT NOT NULL DEFAULT '[]',
        abstract TEXT,
        sources TEXT NOT NULL DEFAULT '[]',
        needs_enrichment INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE listings (
        source TEXT NOT NULL,
        week TEXT NOT NULL,
        rank INTEGER NOT NULL,
        paper_id TEXT NOT NULL REFERENCES papers(paper_id),
        title TEXT NOT NULL,
        description TEXT NOT NULL,
        links TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (source, week, paper_id)
    );
    CREATE INDEX listings_by_week ON listings (week, source, rank);
    CREATE INDEX listings_by_paper ON listings (paper_id);
    CREATE TABLE paper_versions (
        paper_id TEXT NOT NULL REFERENCES papers(paper_id),
        version INTEGER NOT NULL,
        seen_at TEXT NOT NULL,
        PRIMARY KEY (paper_id, version)
    );
    CREATE TABLE fulltext_chunks (
        paper_id TEXT NOT NULL REFERENCES papers(paper_id),
        ordinal INTEGER NOT NULL,
        section TEXT,
        page INTEGER,
        text TEXT NOT NULL,
        PRIMARY KEY (paper_id, ordinal)
    );
    CREATE TABLE ingest_status (
        paper_id TEXT PRIMARY KEY REFERENCES papers(paper_id),
        fulltext TEXT NOT NULL DEFAULT 'none',
        fulltext_version INTEGER,
        fulltext_error TEXT,
        content_hash TEXT,
        embed_model TEXT,
        chunk_count INTEGER NOT NULL DEFAULT 0,
        indexed_at TEXT
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        thread TEXT NOT NULL,
        scope_papers TEXT NOT NULL DEFAULT '[]',
        scope_week TEXT,
        focus_papers TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (platform, channel, thread)
    );
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id),
        role TEXT NOT NULL,
        user TEXT,
        text TEXT NOT NULL,
        standalone TEXT,
        mode TEXT,
        language TEXT,
        citations TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL
    );
    CREATE INDEX turns_by_conversation ON turns (conversation_id, id);
    CREATE TABLE subscriptions (
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        subscribed_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (platform, channel)
    );
    CREATE TABLE llm_usage (
        day TEXT PRIMARY KEY,
        tokens INTEGER NOT NULL DEFAULT 0,
        calls INTEGER NOT NULL DEFAULT 0
    );
    """,
    """
    ALTER TABLE ingest_status ADD COLUMN pending_hash TEXT;
    """,
    """
    CREATE TABLE cards (
        paper_id TEXT NOT NULL,
        language TEXT NOT NULL,
        generator TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        card TEXT NOT NULL,
        llm_calls INTEGER NOT NULL DEFAULT 0,
        llm_tokens INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        PRIMARY KEY (paper_id, language, generator)
    );
    CREATE TABLE digests (
        week TEXT NOT NULL,
        language TEXT NOT NULL,
        source TEXT NOT NULL,
        digest TEXT NOT NULL,
        built_at TEXT NOT NULL,
        PRIMARY KEY (week, language)
    );
    CREATE TABLE digest_posts (
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        week TEXT NOT NULL,
        language TEXT NOT NULL,
        item TEXT NOT NULL,
        seq INTEGER NOT NULL,
        paper_id TEXT,
        status TEXT NOT NULL,
        owner TEXT NOT NULL,
        claimed_at REAL NOT NULL,
        message_id TEXT,
        thread_id TEXT,
        posted_at TEXT,
        PRIMARY KEY (platform, channel, week, language, item)
    );
    CREATE INDEX digest_posts_by_message ON digest_posts (platform, channel, thread_id);
    CREATE TABLE schedule_runs (
        job TEXT NOT NULL,
        slot TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        detail TEXT,
        PRIMARY KEY (job, slot)
    );
    """,
    """
    CREATE TABLE seen_events (
        key TEXT PRIMARY KEY,
        seen_at REAL NOT NULL
    );
    CREATE INDEX seen_events_by_time ON seen_events (seen_at);
    """,
    """
    CREATE TABLE answer_feedback (
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        thread TEXT NOT NULL,
        message_ts TEXT NOT NULL,
        user TEXT NOT NULL,
        verdict TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (platform, channel, message_ts, user)
    );
    """,
    """
    CREATE TABLE publisher_runs (
        owner TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        process_start TEXT,
        started_at REAL NOT NULL,
        beat_at REAL NOT NULL,
        ended_at REAL
    );
    """,
    """
    CREATE TABLE http_cache (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        body TEXT NOT NULL,
        fetched_at TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE digests_by_source (
        week TEXT NOT NULL,
        language TEXT NOT NULL,
        source TEXT NOT NULL,
        digest TEXT NOT NULL,
        built_at TEXT NOT NULL,
        PRIMARY KEY (week, language, source)
    );
    INSERT INTO digests_by_source SELECT week, language, source, digest, built_at FROM digests;
    DROP TABLE digests;
    ALTER TABLE digests_by_source RENAME TO digests;
    CREATE TABLE digest_plans (
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        digest TEXT NOT NULL,
        repeats TEXT NOT NULL,
        planned_at TEXT NOT NULL,
        PRIMARY KEY (platform, channel, digest)
    );
    CREATE INDEX digest_posts_by_paper ON digest_posts (platform, channel, paper_id);
    """,
    """
    ALTER TABLE papers ADD COLUMN arxiv_version INTEGER;
    UPDATE papers SET arxiv_version = version WHERE version IS NOT NULL AND (
        sources LIKE '%"arxiv"%' OR sources LIKE '%"arxiv-dump"%'
        OR sources LIKE '%"arxiv-listing"%');
    CREATE TABLE paper_updates (
        paper_id TEXT NOT NULL REFERENCES papers(paper_id),
        version INTEGER NOT NULL,
        previous_version INTEGER NOT NULL,
        updated TEXT,
        previous_abstract TEXT,
        abstract TEXT,
        fulltext_change TEXT,
        detected_at TEXT NOT NULL,
        PRIMARY KEY (paper_id, version)
    );
    """,
)

_AUTHORITATIVE = {"arxiv", "arxiv-dump", "arxiv-listing"}


class _Rows:
    """Rows read under the lock, with the cursor methods callers use."""

    def __init__(self, rows: list[sqlite3.Row]) -> None:
        self._rows = rows

    def fetchone(self) -> sqlite3.Row | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[sqlite3.Row]:
        return self._rows

    def __iter__(self) -> Iterator[sqlite3.Row]:
        return iter(self._rows)


@dataclass(frozen=True)
class UpsertResult:
    """What storing one record did."""

    paper_id: str
    created: bool
    changed: bool


@dataclass(frozen=True)
class IndexStatus:
    """What the index holds for one paper, as last recorded.

    `pending_hash` is set while new passages are being written: if a run died there,
    the next one knows the index may hold leftovers to clean up.
    """

    paper_id: str
    content_hash: str | None
    embed_model: str | None
    chunk_count: int
    fulltext: str
    fulltext_version: int | None
    pending_hash: str | None = None

    @property
    def may_have_points(self) -> bool:
        return self.content_hash is not None or self.pending_hash is not None


_SQLITE_FAILURES = (
    ("SQLITE_FULL", "the disk is full", "free some space"),
    ("SQLITE_READONLY", "it is read-only", "make it writable"),
    ("SQLITE_PERM", "it is read-only", "make it writable"),
    ("SQLITE_CANTOPEN", "the state file cannot be opened", "check that it is writable"),
    ("SQLITE_NOTADB", "the state file is not a SQLite database", "restore it from a backup"),
    ("SQLITE_CORRUPT", "the state file is corrupt", "restore it from a backup"),
    ("SQLITE_IOERR", "reading or writing it failed", "check the disk"),
)
_OS_FAILURES = {
    errno.ENOSPC: ("the disk is full", "free some space"),
    errno.EDQUOT: ("the disk quota is used up", "free some space"),
    errno.EROFS: ("it is on a read-only file system", "use a writable place"),
    errno.EACCES: ("it is not writable", "make it writable"),
    errno.EPERM: ("it is not writable", "make it writable"),
    errno.ENOTDIR: ("part of its path is a file", "fix the path"),
}


def storage_failure(exc: BaseException, data_dir: Path) -> str | None:
    """One line naming the data dir, when `exc` says it cannot be used (disk full,
    read-only, corrupt); None for any other error."""
    found: tuple[str, str] | None = None
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        found = next((f[1:] for f in _SQLITE_FAILURES if name.startswith(f[0])), None)
    elif isinstance(exc, OSError) and exc.errno in _OS_FAILURES:
        if exc.errno in (errno.EACCES, errno.EPERM) and not _within(exc.filename, data_dir):
            return None
        found = _OS_FAILURES[exc.errno]
    if found is None:
        return None
    what, fix = found
    return (
        f"Cannot use the data dir {data_dir}: {what} ({exc}). {fix.capitalize()}, or point "
        "PAPERBOT_DATA_DIR at another directory."
    )


def _within(filename: object, directory: Path) -> bool:
    if not isinstance(filename, str | Path):
        return False
    try:
        return Path(filename).resolve().is_relative_to(directory.resolve())
    except OSError:
        return False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


class StateStore:
    """The SQLite database under the data dir. Safe to share between threads."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: Path) -> StateStore:
        """Open (or create) the database and apply migrations. Raises DataDirError when
        the file or its directory cannot be used, and for a 0-byte file: SQLite would
        silently start an empty database there while the index still holds the papers."""
        if path.is_file() and path.stat().st_size == 0:
            raise DataDirError(
                f"The state file {path} is empty (0 bytes): it was truncated or replaced. "
                "Restore it from a backup (`paperbot backup`), or delete it to start over "
                "and then run `paperbot index rebuild`."
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            store = cls(conn)
            store.migrate()
        except (sqlite3.Error, OSError) as exc:
            raise DataDirError(
                storage_failure(exc, path.parent) or f"Cannot open {path}: {exc}"
            ) from exc
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @property
    def schema_version(self) -> int:
        return self._count("PRAGMA user_version")

    def migrate(self) -> None:
        """Apply every migration newer than the database, each in its own transaction."""
        with self._lock:
            for version, script in enumerate(MIGRATIONS, start=1):
                if version <= self.schema_version:
                    continue
                statements = [s for s in script.split(";") if s.strip()]
                with self.transaction() as conn:
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {version}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:  # SQLite already rolled back on a full disk
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def backup(self, destination: Path) -> int:
        """A consistent copy of the database at `destination` (SQLite's online backup, safe
        while other threads and processes use it); returns the size in bytes."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(destination.name + ".partial")
        partial.unlink(missing_ok=True)
        try:
            target = sqlite3.connect(partial)
            try:
                with self._lock:
                    self._conn.backup(target)
            finally:
                target.close()
            partial.replace(destination)  # never a half-written copy under the real name
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return destination.stat().st_size

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read-only statement (for the stores built on this database)."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _read(self, sql: str, params: Sequence[Any] = ()) -> _Rows:
        """Reads share the connection with writes from other threads: take the lock."""
        with self._lock:
            return _Rows(self._conn.execute(sql, params).fetchall())

    # -- papers -------------------------------------------------------------

    def upsert_record(self, record: PaperRecord) -> UpsertResult:
        """Merge what a source says about a paper into the stored paper."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM papers WHERE paper_id = ?", (record.paper_id,)
            ).fetchone()
            created = row is None
            values = _merged_values(row, record)
            if row is not None:
                _note_new_version(conn, row, record)
            changed = created or any(values[k] != row[k] for k in values)
            if created:
                cols = ", ".join(values)
                marks = ", ".join("?" for _ in values)
                conn.execute(
                    f"INSERT INTO papers (paper_id, {cols}, created_at, updated_at) "
                    f"VALUES (?, {marks}, ?, ?)",
                    (record.paper_id, *values.values(), _now(), _now()),
                )
            elif changed:
                sets = ", ".join(f"{k} = ?" for k in values)
                conn.execute(
                    f"UPDATE papers SET {sets}, updated_at = ? WHERE paper_id = ?",
                    (*values.values(), _now(), record.paper_id),
                )
            if record.version:
                conn.execute(
                    "INSERT OR IGNORE INTO paper_versions VALUES (?, ?, ?)",
                    (record.paper_id, record.version, _now()),
                )
            if record.listing and _insert_listing(conn, record):
                changed = True
        return UpsertResult(record.paper_id, created, changed)

    def get_paper(self, paper_id: str) -> Paper | None:
        row = self._read("SELECT * FROM papers WHERE paper_id = ?", (paper_id,))
        found = row.fetchone()
        return self._paper(found) if found else None

    def papers(
        self,
        week: date | None = None,
        paper_ids: Iterable[str] | None = None,
        source: str | None = None,
    ) -> list[Paper]:
        """Papers, optionally those listed in one week (in list order, by one source if
        given) or with given ids."""
        if week is not None:
            rows = self._read(
                "SELECT p.* FROM papers p JOIN listings l ON l.paper_id = p.paper_id "
                "WHERE l.week = ? AND (? IS NULL OR l.source = ?) "
                "GROUP BY p.paper_id ORDER BY MIN(l.rank), p.paper_id",
                (week.isoformat(), source, source),
            ).fetchall()
        elif paper_ids is not None:
            ids = list(paper_ids)
            rows = []
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ", ".join("?" for _ in part)
                rows += self._read(
                    f"SELECT * FROM papers WHERE paper_id IN ({marks})", part
                ).fetchall()
        else:
            rows = self._read("SELECT * FROM papers ORDER BY paper_id").fetchall()
        return self._papers(rows)

    def needing_enrichment(self) -> list[str]:
        rows = self._read(
            "SELECT paper_id FROM papers WHERE needs_enrichment = 1 ORDER BY paper_id"
        )
        return [r[0] for r in rows]

    def weeks(self, source: str | None = None) -> list[tuple[date, int]]:
        """Every listed week (by one source if given), newest first, with its paper count."""
        rows = self._read(
            "SELECT week, COUNT(DISTINCT paper_id) FROM listings WHERE (? IS NULL OR source = ?) "
            "GROUP BY week ORDER BY week DESC",
            (source, source),
        )
        return [(date.fromisoformat(w), n) for w, n in rows]

    def week_containing(self, day: date, source: str | None = None) -> date | None:
        """The start of the listed week (by one source if given) that contains `day`."""
        return next((w for w, _ in self.weeks(source) if 0 <= (day - w).days < 7), None)

    def versions(self, paper_id: str) -> list[int]:
        rows = self._read(
            "SELECT version FROM paper_versions WHERE paper_id = ? ORDER BY version", (paper_id,)
        )
        return [r[0] for r in rows]

    def _papers(self, rows: Sequence[sqlite3.Row]) -> list[Paper]:
        listings = self._listings([r["paper_id"] for r in rows])
        return [self._paper(r, listings.get(r["paper_id"], ())) for r in rows]

    def _paper(self, row: sqlite3.Row, listings: Sequence[Listing] | None = None) -> Paper:
        if listings is None:
            listings = self._listings([row["paper_id"]]).get(row["paper_id"], ())
        return Paper(
            paper_id=row["paper_id"],
            title=row["title"],
            authors=tuple(json.loads(row["authors"])),
            published=_date(row["published"]),
            updated=_date(row["updated"]),
            version=row["version"],
            url=row["url"],
            pdf_url=row["pdf_url"],
            categories=tuple(json.loads(row["categories"])),
            abstract=row["abstract"],
            description=listings[-1].description if listings else None,
            sources=tuple(json.loads(row["sources"])),
            weeks=tuple(sorted({x.week for x in listings})),
            needs_enrichment=bool(row["needs_enrichment"]),
            listings=tuple(listings),
        )

    def _listings(self, paper_ids: Sequence[str]) -> dict[str, tuple[Listing, ...]]:
        found: dict[str, list[Listing]] = {}
        for start in range(0, len(paper_ids), 500):
            part = list(paper_ids[start : start + 500])
            marks = ", ".join("?" for _ in part)
            rows = self._read(
                f"SELECT * FROM listings WHERE paper_id IN ({marks}) ORDER BY week, rank", part
            )
            for r in rows:
                links = tuple(Link(x["label"], x["url"]) for x in json.loads(r["links"]))
                found.setdefault(r["paper_id"], []).append(
                    Listing(
                        date.fromisoformat(r["week"]),
                        r["rank"],
                        r["title"],
                        r["description"],
                        links,
                    )
                )
        return {k: tuple(v) for k, v in found.items()}

    # -- full text and index status ------------------------------------------

    def replace_fulltext(self, paper_id: str, version: int | None, chunks: Sequence[Chunk]) -> None:
        """Store a paper's full-text passages, replacing those of any earlier version."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM fulltext_chunks WHERE paper_id = ?", (paper_id,))
            conn.executemany(
                "INSERT INTO fulltext_chunks VALUES (?, ?, ?, ?, ?)",
                [(paper_id, c.ordinal, c.section, c.page, c.text) for c in chunks],
            )
            self._set_status(
                conn, paper_id, fulltext="indexed", fulltext_version=version, fulltext_error=None
            )

    def record_fulltext_failure(self, paper_id: str, version: int | None, error: str) -> None:
        """Remember that this version's PDF failed, so it is not fetched again and again."""
        with self.transaction() as conn:
            self._set_status(
                conn,
                paper_id,
                fulltext="failed",
                fulltext_version=version,
                fulltext_error=error[:500],
            )

    def fulltext_chunks(self, paper_id: str) -> list[Chunk]:
        rows = self._read(
            "SELECT * FROM fulltext_chunks WHERE paper_id = ? ORDER BY ordinal", (paper_id,)
        )
        return [
            Chunk(paper_id, r["ordinal"], "body", r["text"], r["section"], r["page"]) for r in rows
        ]

    def index_status(self, paper_id: str) -> IndexStatus:
        row = self._read("SELECT * FROM ingest_status WHERE paper_id = ?", (paper_id,)).fetchone()
        if row is None:
            return IndexStatus(paper_id, None, None, 0, "none", None)
        return IndexStatus(
            paper_id,
            row["content_hash"],
            row["embed_model"],
            row["chunk_count"],
            row["fulltext"],
            row["fulltext_version"],
            row["pending_hash"],
        )

    def mark_pending(self, hashes: dict[str, str]) -> None:
        """Record that these papers' passages (paper id -> new hash) are being written."""
        with self.transaction() as conn:
            for paper_id, digest in hashes.items():
                self._set_status(conn, paper_id, pending_hash=digest)

    def record_indexed(self, indexed: Sequence[tuple[str, str, str, int]]) -> None:
        """Record (paper id, content hash, model, passage count) for papers just indexed."""
        with self.transaction() as conn:
            for paper_id, content_hash, model, chunks in indexed:
                self._set_status(
                    conn,
                    paper_id,
                    content_hash=content_hash,
                    embed_model=model,
                    chunk_count=chunks,
                    indexed_at=_now(),
                    pending_hash=None,
                )

    def forget_index(self) -> None:
        """Mark every paper as not indexed (before a rebuild)."""
        with self.transaction() as conn:
            conn.execute("UPDATE ingest_status SET content_hash = NULL, chunk_count = 0")

    def _set_status(self, conn: sqlite3.Connection, paper_id: str, **values: Any) -> None:
        conn.execute("INSERT OR IGNORE INTO ingest_status (paper_id) VALUES (?)", (paper_id,))
        sets = ", ".join(f"{k} = ?" for k in values)
        conn.execute(
            f"UPDATE ingest_status SET {sets} WHERE paper_id = ?", (*values.values(), paper_id)
        )

    # -- counts and settings -------------------------------------------------

    def catalog_version(self) -> tuple[object, ...]:
        """A value that changes when papers or list descriptions are added or edited, cheap
        to read (for caches of the catalog such as the search's name index)."""
        row = self._read(
            "SELECT (SELECT COUNT(*) FROM papers), (SELECT MAX(updated_at) FROM papers), "
            "(SELECT COUNT(*) FROM listings), (SELECT TOTAL(LENGTH(description)) FROM listings)"
        ).fetchone()
        return tuple(row) if row is not None else ()

    def indexed_models(self) -> dict[str, int]:
        """How many papers the index holds per embedding model that embedded them."""
        rows = self._read(
            "SELECT embed_model, COUNT(*) FROM ingest_status "
            "WHERE content_hash IS NOT NULL AND embed_model IS NOT NULL GROUP BY embed_model"
        )
        return {str(model): int(count) for model, count in rows}

    def stats(self) -> dict[str, int]:
        queries = {
            "papers": "SELECT COUNT(*) FROM papers",
            "arxiv_papers": "SELECT COUNT(*) FROM papers WHERE paper_id NOT LIKE 'web:%'",
            "weeks": "SELECT COUNT(DISTINCT week) FROM listings",
            "listings": "SELECT COUNT(*) FROM listings",
            "needs_enrichment": "SELECT COUNT(*) FROM papers WHERE needs_enrichment = 1",
            "with_fulltext": "SELECT COUNT(*) FROM ingest_status WHERE fulltext = 'indexed'",
            "indexed_papers": "SELECT COUNT(*) FROM ingest_status WHERE content_hash IS NOT NULL",
            "indexed_chunks": "SELECT COALESCE(SUM(chunk_count), 0) FROM ingest_status",
        }
        return {name: self._count(sql) for name, sql in queries.items()}

    def _count(self, sql: str) -> int:
        return int(self.query(sql)[0][0])

    def first_time(self, key: str, keep_seconds: float = 7 * 24 * 3600) -> bool:
        """True the first time `key` is seen (e.g. a platform's event id), False on a retry.

        Old keys are forgotten after `keep_seconds` so the table stays small.
        """
        now = time.time()
        with self.transaction() as conn:
            conn.execute("DELETE FROM seen_events WHERE seen_at < ?", (now - keep_seconds,))
            cursor = conn.execute(
                "INSERT OR IGNORE INTO seen_events (key, seen_at) VALUES (?, ?)", (key, now)
            )
            return cursor.rowcount > 0

    def get_meta(self, key: str) -> str | None:
        row = self._read("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def _merged_values(row: sqlite3.Row | None, record: PaperRecord) -> dict[str, Any]:
    """Column values after merging `record` into `row`: authoritative sources win, and
    a known value is never replaced by an unknown one."""
    authoritative = record.source in _AUTHORITATIVE
    old: dict[str, Any] = dict(row) if row is not None else {}
    new: dict[str, Any] = {
        "title": record.title,
        "authors": json.dumps(list(record.authors)) if record.authors else None,
        "published": _iso(record.published),
        "updated": _iso(record.updated),
        "url": record.url,
        "pdf_url": record.pdf_url,
        "categories": json.dumps(list(record.categories)) if record.categories else None,
        "abstract": record.abstract,
    }
    values: dict[str, Any] = {}
    for key, value in new.items():
        current = old.get(key)
        empty = current in (None, "", "[]")
        values[key] = value if value and (authoritative or empty) else current
    values["title"] = values["title"] or record.paper_id
    values["authors"] = values["authors"] or "[]"
    values["categories"] = values["categories"] or "[]"
    versions = [v for v in (old.get("version"), record.version) if v]
    values["version"] = max(versions) if versions else None
    confirmed = [v for v in (old.get("arxiv_version"), authoritative and record.version) if v]
    values["arxiv_version"] = max(confirmed) if confirmed else None  # newest arXiv has shown
    sources = json.loads(old.get("sources") or "[]")
    values["sources"] = json.dumps(sorted({*sources, record.source}))
    enriched = authoritative or (old and not old["needs_enrichment"])
    values["needs_enrichment"] = int(is_arxiv_key(record.paper_id) and not enriched)
    return values


def _note_new_version(conn: sqlite3.Connection, row: sqlite3.Row, record: PaperRecord) -> None:
    """Record a newer version than arXiv showed before (with both abstracts): news for
    the threads of the paper's cards (`assistant.versions`)."""
    previous = row["arxiv_version"]
    if record.source not in _AUTHORITATIVE or not record.version or not previous:
        return
    if record.version <= previous:
        return
    conn.execute(
        "INSERT OR IGNORE INTO paper_updates (paper_id, version, previous_version, updated, "
        "previous_abstract, abstract, detected_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            record.paper_id,
            record.version,
            previous,
            _iso(record.updated),
            row["abstract"],
            record.abstract,
            datetime.now(UTC).isoformat(timespec="microseconds"),  # vs. cards' posted_at
        ),
    )


def _insert_listing(conn: sqlite3.Connection, record: PaperRecord) -> bool:
    listing = record.listing
    assert listing is not None
    links = json.dumps([{"label": x.label, "url": x.url} for x in listing.links])
    before = conn.total_changes
    conn.execute(
        "INSERT INTO listings VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (source, week, paper_id) DO UPDATE SET rank = excluded.rank, "
        "title = excluded.title, description = excluded.description, links = excluded.links "
        "WHERE rank != excluded.rank OR title != excluded.title "
        "OR description != excluded.description OR links != excluded.links",
        (
            record.source,
            listing.week.isoformat(),
            listing.rank,
            record.paper_id,
            listing.title,
            listing.description,
            links,
        ),
    )
    return conn.total_changes > before
