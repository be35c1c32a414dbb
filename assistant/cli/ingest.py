"""`paperbot ingest ...`: bring papers in from a source."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from assistant.cli.common import (
    JsonOpt,
    OfflineOpt,
    ingest_app,
    optimize_index,
    parse_week,
    progress_bar,
    resolve_paper_id,
    runtime,
    show_report,
)
from assistant.errors import InvalidInputError, NotFoundError
from assistant.ids import parse_arxiv_id
from assistant.sources.arxiv_api import ArxivSource
from assistant.sources.arxiv_dump import ArxivDumpSource
from assistant.sources.idlist import IdListSource
from assistant.sources.potw_list import PotwList


@ingest_app.command("potw")
def ingest_potw(
    file: Annotated[
        Path | None,
        typer.Option(
            help="A local copy: the list's README.md, a year file (years/2026.md), or the "
            "folder of a clone holding both."
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="The list's README (or a year file) URL (default: the public list)."),
    ] = None,
    week: Annotated[str | None, typer.Option(help="Only this week (YYYY-MM-DD).")] = None,
    all_weeks: Annotated[bool, typer.Option("--all", help="Every week in the list.")] = False,
    offline: OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest the AI-Papers-of-the-Week list (default: its newest week). Online, unchanged
    files cost a conditional request each (HTTP 304), nothing more."""
    if file and url:
        raise InvalidInputError("Give --file or --url, not both.")
    if week and all_weeks:
        raise InvalidInputError("Give --week or --all, not both.")
    with runtime() as rt:
        rt.check_index_first()
        location = str(file) if file else (url or rt.settings.ingest.potw_url)
        source = PotwList.open(location, rt.list_documents)
        chosen = parse_week(week)
        if chosen is None and not all_weeks:
            weeks = source.weeks()
            if not weeks:
                raise InvalidInputError(
                    f"{location} lists no weeks: no 'Top AI Papers of the Week' sections, "
                    "and no index lines linking to them."
                )
            chosen = weeks[0]
        source.week = chosen
        total = sum(1 for _ in source.read())
        started = time.perf_counter()
        with progress_bar() as bar:
            report = rt.ingestor.ingest(source, offline=offline, progress=bar, total=total)
            optimize_index(rt, bar, report)
        report.notes[:0] = source.notes
        show_report(report, as_json, time.perf_counter() - started)


@ingest_app.command("arxiv")
def ingest_arxiv(
    ids: Annotated[list[str], typer.Argument(help="arXiv IDs or URLs (abs, pdf, versioned).")],
    as_json: JsonOpt = False,
) -> None:
    """Ingest papers from the arXiv API by ID or URL (with full text)."""
    for text in ids:
        parse_arxiv_id(text)  # a malformed ID stops the command before anything changes
    with runtime() as rt:
        rt.check_index_first()
        started = time.perf_counter()
        with progress_bar() as bar:
            report = rt.ingestor.ingest(ArxivSource(rt.arxiv, ids), progress=bar, total=len(ids))
            optimize_index(rt, bar, report)
        show_report(report, as_json, time.perf_counter() - started)


@ingest_app.command("arxiv-dump")
def ingest_arxiv_dump(
    file: Annotated[Path, typer.Argument(help="arXiv metadata snapshot (JSON lines, or .gz).")],
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after N papers.")] = None,
    category: Annotated[
        list[str] | None, typer.Option(help="Keep papers in this category (repeatable; cs.).")
    ] = None,
    fulltext: Annotated[bool, typer.Option(help="Also download PDFs (slow, 3 s each).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Backfill from an arXiv metadata dump, streamed (metadata is already complete)."""
    if not file.is_file():
        raise NotFoundError(f"No such file: {file}")
    with runtime() as rt:
        rt.check_index_first()
        source = ArxivDumpSource(file, limit=limit, categories=set(category or ()) or None)
        started = time.perf_counter()
        with progress_bar() as bar:
            report = rt.ingestor.ingest(source, offline=not fulltext, progress=bar, total=limit)
            optimize_index(rt, bar, report)
        show_report(report, as_json, time.perf_counter() - started)


@ingest_app.command("list")
def ingest_list(
    file: Annotated[str, typer.Argument(help="A file (or URL) with one ID or URL per line.")],
    offline: OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest a plain list of arXiv IDs / paper URLs."""
    with runtime() as rt:
        rt.check_index_first()
        source = IdListSource.from_location(file, http=rt.http)
        total = sum(1 for _ in source.read())
        started = time.perf_counter()
        with progress_bar() as bar:
            report = rt.ingestor.ingest(source, offline=offline, progress=bar, total=total)
            optimize_index(rt, bar, report)
        show_report(report, as_json, time.perf_counter() - started)


@ingest_app.command("enrich")
def ingest_enrich(as_json: JsonOpt = False) -> None:
    """Fetch arXiv metadata and full text for papers ingested offline."""
    with runtime() as rt:
        rt.check_index_first()
        started = time.perf_counter()
        with progress_bar() as bar:
            report = rt.ingestor.enrich_pending(progress=bar)
            optimize_index(rt, bar, report)
        show_report(report, as_json, time.perf_counter() - started)


@ingest_app.command("versions")
def ingest_versions(
    days: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Papers posted in the last N days (default PAPERBOT_DIGEST_VERSION_WATCH_DAYS).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check arXiv for new versions of the papers whose cards went out lately; each new
    version gets a note in its cards' threads (`paperbot serve` posts them, or
    `paperbot digest updates` in a terminal)."""
    with runtime() as rt:
        if days is not None:
            rt.settings.digest.version_watch_days = days
        started = time.perf_counter()
        with progress_bar() as bar:
            report = rt.digest_service.check_versions(progress=bar)
        show_report(report, as_json, time.perf_counter() - started)


@ingest_app.command("pdf")
def ingest_pdf(
    paper: Annotated[str, typer.Argument(help="A stored paper's ID or URL.")],
    file: Annotated[Path, typer.Argument(help="The paper's PDF.")],
    as_json: JsonOpt = False,
) -> None:
    """Index the full text of a PDF you have (e.g. a paper that is not on arXiv)."""
    if not file.is_file():
        raise NotFoundError(f"No such file: {file}")
    with runtime() as rt:
        rt.check_index_first()
        started = time.perf_counter()
        report = rt.ingestor.attach_pdf(resolve_paper_id(rt, paper), file.read_bytes())
        show_report(report, as_json, time.perf_counter() - started)
