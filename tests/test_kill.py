"""A real `paperbot ingest` process killed with SIGKILL inside a write to the embedded
index (Qdrant Edge): nothing half-indexed is left for search to serve, and the next run
completes the job without duplicates (Edge's write-ahead log, and SQLite's pending marks).

The reference is the same list ingested by an undisturbed run into another data dir: point
ids are derived from (paper, content hash, passage number), so each paper's set of point ids
is the same in both whenever it is completely indexed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import qdrant_edge as edge

from bench.make_potw import make_potw
from tests.conftest import ROOT

ROWS_PER_WEEK = 10
WEEKS = 40  # 400 papers of one passage each
EMBED_BATCH = 128  # passages embedded and written together: 4 writes
KILL_AT_WRITE = 2  # inside the second passage write (creating the index is not announced)


def ingest_command(readme: Path) -> list[str]:
    return [sys.executable, "-m", "assistant", "ingest", "potw", "--file", str(readme)]


def environment(data: Path) -> dict[str, str]:
    return {**os.environ, "PAPERBOT_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}


def indexed_papers(data: Path) -> int:
    """Papers the state records as indexed (read while the ingest runs)."""
    path = data / "paperbot.sqlite3"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM ingest_status WHERE content_hash IS NOT NULL "
                "AND pending_hash IS NULL"
            ).fetchone()
            return int(row[0])
    except sqlite3.OperationalError:  # not created yet, or busy
        return 0


def points_by_paper(data: Path) -> dict[str, set[str]]:
    """Every point id in the embedded index, grouped by paper (loading the index as the
    next run would: Edge replays its write-ahead log)."""
    shard = edge.EdgeShard.load(str(data / "index" / "shard"))
    try:
        found: dict[str, set[str]] = defaultdict(set)
        offset = None
        while True:
            request = edge.ScrollRequest(offset=offset, limit=500, with_payload=["paper_id"])
            points, offset = shard.scroll(request)
            for point in points:
                assert point.payload is not None
                found[str(point.payload["paper_id"])].add(str(point.id))
            if offset is None:
                return dict(found)
    finally:
        shard.close()


@pytest.mark.slow
def test_an_ingest_killed_mid_index_leaves_no_half_indexed_paper_and_resumes(
    tmp_path: Path,
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(make_potw(weeks=WEEKS, rows_per_week=ROWS_PER_WEEK, seed=11))
    total = WEEKS * ROWS_PER_WEEK
    command = [*ingest_command(readme), "--all", "--offline", "--json"]

    reference = tmp_path / "reference"
    clean = subprocess.run(
        command, env=environment(reference), capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert clean.returncode == 0, clean.stderr
    expected = points_by_paper(reference)
    assert len(expected) == total

    killed = tmp_path / "killed"
    announce, announced = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.announced_writes", *command[3:]],
        env={
            **environment(killed),
            "PAPERBOT_TEST_WRITE_FD": str(announced),
            "PAPERBOT_TEST_EMBED_BATCH": str(EMBED_BATCH),
        },
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(announced,),
    )
    os.close(announced)
    writes = 0
    while writes < KILL_AT_WRITE:
        byte = os.read(announce, 1)
        assert byte, "the ingest ended before its write to be killed in"
        writes += 1
    process.send_signal(signal.SIGKILL)  # it is inside Edge's update now
    os.close(announce)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "killed while it was still working"
    assert indexed_papers(killed) < total, "killed before SQLite recorded the last papers"

    left = points_by_paper(killed)
    assert len(left) > 0, "the papers of earlier writes made it before the kill"
    half_indexed = [p for p, ids in left.items() if ids != expected[p]]
    assert half_indexed == [], f"papers with some but not all of their passages: {half_indexed}"

    again = subprocess.run(
        command, env=environment(killed), capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["records"] == total and report["problems"] == []
    assert points_by_paper(killed) == expected  # every paper complete, nothing twice
    assert indexed_papers(killed) == total
