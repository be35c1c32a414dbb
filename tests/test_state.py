from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

from assistant.models import Link, Listing, PaperRecord
from assistant.state import MIGRATIONS, StateStore

WEEK = date(2024, 7, 8)


def listed(paper_id: str = "2407.08608", rank: int = 1, description: str = "faster attention"):
    return PaperRecord(
        paper_id=paper_id,
        source="potw",
        title="FlashAttention-3",
        url=f"https://arxiv.org/abs/{paper_id}",
        listing=Listing(WEEK, rank, "FlashAttention-3", description, (Link("Paper", "u"),)),
    )


def from_arxiv(version: int = 1, title: str = "FlashAttention-3: Fast and Accurate Attention"):
    return PaperRecord(
        paper_id="2407.08608",
        source="arxiv",
        title=title,
        authors=("Jay Shah", "Tri Dao"),
        published=date(2024, 7, 11),
        updated=date(2024, 7, 12),
        version=version,
        url="https://arxiv.org/abs/2407.08608",
        pdf_url=f"https://arxiv.org/pdf/2407.08608v{version}",
        categories=("cs.LG", "cs.AI"),
        abstract="Our own words: an abstract.",
    )


def test_a_new_database_is_migrated_to_the_latest_schema(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "s.sqlite3")
    assert store.schema_version == len(MIGRATIONS)
    store.close()
    again = StateStore.open(tmp_path / "s.sqlite3")  # re-opening applies nothing twice
    assert again.schema_version == len(MIGRATIONS)
    again.close()


def test_migrations_run_on_an_existing_older_database(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE unrelated (x)")
    conn.close()
    store = StateStore.open(path)
    assert store.schema_version == len(MIGRATIONS)
    assert store.stats()["papers"] == 0


def test_the_same_listing_twice_changes_nothing(store: StateStore) -> None:
    first = store.upsert_record(listed())
    second = store.upsert_record(listed())
    assert first.created and first.changed
    assert not second.created and not second.changed
    assert store.stats()["listings"] == 1


def test_a_listed_arxiv_paper_needs_enrichment_until_arxiv_describes_it(store: StateStore) -> None:
    store.upsert_record(listed())
    assert store.needing_enrichment() == ["2407.08608"]
    store.upsert_record(from_arxiv())
    paper = store.get_paper("2407.08608")
    assert paper is not None
    assert not paper.needs_enrichment
    assert paper.title.startswith("FlashAttention-3: Fast")  # arXiv's title wins
    assert paper.authors == ("Jay Shah", "Tri Dao")
    assert paper.description == "faster attention"  # the list's words are kept
    assert paper.sources == ("arxiv", "potw")
    store.upsert_record(listed())  # listing again does not undo enrichment
    assert store.needing_enrichment() == []


def test_unknown_values_never_replace_known_ones(store: StateStore) -> None:
    store.upsert_record(from_arxiv())
    store.upsert_record(PaperRecord("2407.08608", "potw", title="FA3"))
    paper = store.get_paper("2407.08608")
    assert paper is not None
    assert paper.abstract == "Our own words: an abstract."
    assert paper.categories == ("cs.LG", "cs.AI")
    assert paper.title.startswith("FlashAttention-3: Fast")


def test_versions_are_recorded_and_the_newest_kept(store: StateStore) -> None:
    store.upsert_record(from_arxiv(version=1))
    store.upsert_record(from_arxiv(version=3))
    store.upsert_record(from_arxiv(version=2))
    paper = store.get_paper("2407.08608")
    assert paper is not None and paper.version == 3
    assert store.versions("2407.08608") == [1, 2, 3]


def test_papers_of_a_week_come_in_list_order(store: StateStore) -> None:
    store.upsert_record(listed("2401.00002", rank=2))
    store.upsert_record(listed("2401.00001", rank=3))
    store.upsert_record(listed("2401.00003", rank=1))
    ids = [p.paper_id for p in store.papers(week=WEEK)]
    assert ids == ["2401.00003", "2401.00002", "2401.00001"]
    assert store.weeks() == [(WEEK, 3)]


def test_a_changed_description_updates_the_listing(store: StateStore) -> None:
    store.upsert_record(listed())
    result = store.upsert_record(listed(description="a corrected description"))
    assert result.changed
    paper = store.get_paper("2407.08608")
    assert paper is not None and paper.description == "a corrected description"


def test_papers_not_on_arxiv_never_wait_for_enrichment(store: StateStore) -> None:
    store.upsert_record(PaperRecord("web:nature.com:abc", "potw", title="A Nature paper"))
    assert store.needing_enrichment() == []


def test_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = StateStore.open(path)
    store.upsert_record(listed())
    store.record_indexed([("2407.08608", "hash", "model", 3)])
    store.close()
    again = StateStore.open(path)
    assert again.get_paper("2407.08608") is not None
    assert again.index_status("2407.08608").chunk_count == 3


def test_event_ids_are_seen_once_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = StateStore.open(path)
    assert store.first_time("slack:Ev123")
    assert not store.first_time("slack:Ev123")
    store.close()
    again = StateStore.open(path)
    assert not again.first_time("slack:Ev123")
    assert again.first_time("slack:Ev124")


def test_a_backup_is_a_consistent_copy_taken_while_the_store_is_open(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "live.sqlite3")
    store.upsert_record(listed())
    store.upsert_record(from_arxiv())
    with store.transaction() as conn:  # another writer, mid-way: not in the copy
        conn.execute("INSERT INTO meta (key, value) VALUES ('late', 'x')")
        other = StateStore.open(tmp_path / "live.sqlite3")
        size = other.backup(tmp_path / "backups" / "copy.sqlite3")
        other.close()
    assert size > 0
    assert not list((tmp_path / "backups").glob("*.partial"))
    copy = StateStore.open(tmp_path / "backups" / "copy.sqlite3")
    paper = copy.get_paper("2407.08608")
    assert paper is not None and paper.authors == ("Jay Shah", "Tri Dao")
    assert copy.get_meta("late") is None
    assert copy.schema_version == len(MIGRATIONS)
    copy.close()
    store.close()
