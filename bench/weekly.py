"""Benchmarks for issue 11 (and 15's publisher part): following the weekly list, and how
fast an interrupted digest post is resumed.

1. The list at its real size (~2,500 papers over four year files and an index README, made
   from `bench/make_potw.py` rows) on a fake of GitHub's raw host on 127.0.0.1: the weekly
   check of the newest week, cold and unchanged (conditional requests), and `--all`; the
   baseline is what the old layout cost every week: downloading the whole single-file README.
2. A publisher process killed with SIGKILL in the middle of a digest post, then the same
   post re-issued: how long the re-issued post takes to finish, with the default settings
   (the old fixed claim timeout was 120 s).

Run: `python bench/weekly.py` (writes its section of docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.digest.model import digest_to_dict  # noqa: E402
from assistant.models import PaperRecord  # noqa: E402
from assistant.sources.conditional import ConditionalFetcher  # noqa: E402
from assistant.sources.potw import PotwSource, parse_week_heading  # noqa: E402
from assistant.sources.potw_list import ListDocuments, PotwList  # noqa: E402
from assistant.state import StateStore  # noqa: E402
from bench.make_potw import make_potw  # noqa: E402
from bench.run import write_doc  # noqa: E402
from tests.digests import hand_digest  # noqa: E402
from tests.fakes.github_raw import FakeGitHubRaw  # noqa: E402

BEGIN, END = "<!-- bench:weekly:begin -->", "<!-- bench:weekly:end -->"
BASELINE_WEEK = "baseline, old layout: the whole README for one week"
BASELINE_ALL = "baseline, old layout: the whole README, every week"
WEEKS, ROWS = 180, 14  # ~2,500 papers, like the real list
_HEADING = re.compile(
    r"^#+\s*Top (?:ML|AI) Papers of the Week \((?P<span>[^)]*)\)\s*-\s*(?P<year>\d{4})\s*$"
)


def split_by_year(readme: str) -> dict[str, str]:
    """The old single-file README as the new layout: year files and an index README."""
    years: dict[str, list[str]] = defaultdict(list)
    index: dict[str, list[str]] = defaultdict(list)
    year = None
    for line in readme.splitlines():
        heading = _HEADING.match(line)
        if heading is not None:
            year = heading["year"]
            span = heading["span"]
            start = parse_week_heading(line)
            anchor = re.sub(r"[^a-z0-9 -]", "", f"top ai papers of the week {span} {year}".lower())
            link = f"years/{year}.md#{anchor.replace(' ', '-')}"
            index[str(start.year if start else year)].append(
                f"- [Top AI Papers of the Week ({span})]({link})"
            )
        if year is not None:
            years[year].append(line)
    files = {
        f"years/{y}.md": f"# AI Papers of the Week — {y}\n\n---\n\n" + "\n".join(lines) + "\n"
        for y, lines in years.items()
    }
    sections = [f"## {y}\n" + "\n".join(index[y]) for y in sorted(index, reverse=True)]
    files["README.md"] = "# AI Papers of the Week\n\n" + "\n\n".join(sections) + "\n"
    return files


def check(url: str, store: StateStore, http: httpx.Client, which: str) -> tuple[int, float]:
    """Read the list as `ingest potw` does: the newest week, a week of a full year's file
    (the real newest file holds up to a year), or every week."""
    started = time.perf_counter()
    source = PotwList.open(url, ListDocuments(ConditionalFetcher(store, http)))
    if which == "newest":
        source.week = source.weeks()[0]
    elif which == "full year":
        source.week = next(w for w in source.weeks() if w.year == 2024 and w.month == 6)
    records = sum(isinstance(item, PaperRecord) for item in source.read())
    return records, time.perf_counter() - started


def list_figures(rounds: int) -> dict[str, object]:
    readme = make_potw(weeks=WEEKS, rows_per_week=ROWS, seed=11)
    files = split_by_year(readme)
    rows: dict[str, list[float]] = defaultdict(list)
    shown: dict[str, tuple[int, int, int]] = {}
    with FakeGitHubRaw(files=files) as github, httpx.Client(timeout=30) as http:
        url = github.url("README.md")
        for _ in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                store = StateStore.open(Path(tmp) / "s.sqlite3")
                for name, which in (
                    ("newest week, first check", "newest"),
                    ("newest week, unchanged", "newest"),
                    ("a week of a full year's file, first check", "full year"),
                    ("a week of a full year's file, unchanged", "full year"),
                    ("every week (--all), first check", "all"),
                    ("every week (--all), unchanged", "all"),
                ):
                    if "first" in name:  # nothing remembered: a cold check
                        with store.transaction() as conn:
                            conn.execute("DELETE FROM http_cache")
                    github.requests.clear()
                    records, seconds = check(url, store, http, which)
                    downloaded = sum(
                        len(files[r.path].encode()) for r in github.requests if r.status == 200
                    )
                    rows[name].append(seconds)
                    shown[name] = (records, len(github.requests), downloaded)
                store.close()
        with FakeGitHubRaw(files={"README.md": readme}) as old:
            for _ in range(rounds):
                for name, every in ((BASELINE_WEEK, False), (BASELINE_ALL, True)):
                    started = time.perf_counter()
                    text = http.get(old.url("README.md")).text
                    single = PotwSource(text, old.url("README.md"))
                    single.week = None if every else max(single.weeks())
                    records = sum(isinstance(item, PaperRecord) for item in single.read())
                    rows[name].append(time.perf_counter() - started)
                    shown[name] = (records, 1, len(readme.encode()))
    return {
        "papers": WEEKS * ROWS,
        "sizes": {name: len(text.encode()) for name, text in sorted(files.items())},
        "rows": {
            name: {
                "records": shown[name][0],
                "requests": shown[name][1],
                "bytes": shown[name][2],
                "seconds": statistics.median(times),
            }
            for name, times in rows.items()
        },
    }


def resume_figures(rounds: int) -> dict[str, object]:
    """A publisher killed mid-post, then the post re-issued: seconds to finish."""
    times = []
    posted_before = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            StateStore.open(data / "paperbot.sqlite3").close()
            digest_file = Path(tmp) / "digest.json"
            digest_file.write_text(json.dumps(digest_to_dict(hand_digest())))
            victim = _worker(data, digest_file, runs=1, delay=0.3)
            log = data / "console_posts.jsonl"
            while not log.exists() or len(log.read_text().splitlines()) < 3:
                time.sleep(0.01)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            posted_before.append(len(log.read_text().splitlines()))
            started = time.perf_counter()
            again = _worker(data, digest_file, runs=1, delay=0.0)
            _, err = again.communicate(timeout=300)
            assert again.returncode == 0, err
            times.append(time.perf_counter() - started)
            keys = [json.loads(line)["key"] for line in log.read_text().splitlines()]
            assert len(keys) == len(set(keys)) == 6, keys
    return {"seconds": statistics.median(times), "all": times, "posted_before": posted_before}


def _worker(data: Path, digest_file: Path, runs: int, delay: float) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.publish_worker", str(data), str(digest_file)]
    return subprocess.Popen(
        [*command, "team", str(runs), str(delay)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def markdown(results: dict[str, object]) -> str:
    listing = results["list"]
    assert isinstance(listing, dict)
    rows = listing["rows"]
    lines = [
        BEGIN,
        "## Issue 11: following the weekly list; issue 15: resuming an interrupted post",
        "",
        f"Measured {results['date']} on {results['machine']} (a busy machine: five helpers "
        "shared its 2 cores); reproduce with `python bench/weekly.py`. Medians of "
        f"{results['rounds']} runs.",
        "",
        f"The list at its real size: {listing['papers']:,} synthetic papers "
        "(`bench/make_potw.py` rows) in the new layout, an index README and one file per year "
        f"({', '.join(f'{k} {v / 1e6:.2f} MB' for k, v in listing['sizes'].items())}), served "
        "by a fake of GitHub's raw host on 127.0.0.1 (ETag, 304 on If-None-Match). The "
        "baselines are what the old layout cost: the whole single-file README each time. "
        "The synthetic rows are shorter than the real ones (the real year files are "
        "0.37-0.77 MB), and here the newest year file holds one week; a first check "
        "downloads the README and that one file, whatever its size.",
        "",
        "| check | papers read | requests | downloaded | seconds | vs baseline |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        baseline = rows[BASELINE_ALL if "every week" in name else BASELINE_WEEK]
        lines.append(
            f"| {name} | {row['records']:,} | {row['requests']} | "
            f"{row['bytes'] / 1e6:.2f} MB | {row['seconds']:.3f} | "
            f"{row['seconds'] / baseline['seconds']:.2f}x |"
        )
    resume = results["resume"]
    assert isinstance(resume, dict)
    lines += [
        "",
        "An unchanged weekly check downloads nothing: two conditional requests answered 304, "
        "and the week is parsed from the copy kept in SQLite.",
        "",
        "A digest post (a header and five cards to the console channel, 0.3 s a post) killed "
        "with SIGKILL after its third post, then re-issued in a new process with the default "
        f"settings: the re-issued post finished in {resume['seconds']:.1f} s (median; runs: "
        + ", ".join(f"{t:.1f}" for t in resume["all"])
        + " s), every message posted once. The dead publisher's claim is noticed from its "
        "process at once and taken over after the 5 s settle time; before, a stale claim "
        "held for a fixed 120 s.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    rounds = 3
    results: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}",
        "rounds": rounds,
        "list": list_figures(rounds),
        "resume": resume_figures(rounds),
    }
    print(json.dumps(results, indent=2))
    write_doc(markdown(results), BEGIN, END)


if __name__ == "__main__":
    main()
