"""The `paperbot` command line: the composition root of every command.

Read commands take `--json`; long work shows a progress bar on stderr, so stdout
stays clean for scripts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from assistant.conversations import Scope
from assistant.core import find_paper
from assistant.digest.markdown import (
    render_card_markdown,
    render_header_markdown,
    render_markdown,
)
from assistant.digest.model import Digest, digest_to_dict
from assistant.digest.publisher import DigestChannel, plan_posts
from assistant.digest.schedule import ScheduleRunner, WeeklySchedule
from assistant.errors import (
    ConfigError,
    IndexUnavailableError,
    InvalidInputError,
    NotFoundError,
    UserError,
)
from assistant.evaluation import evaluate, load_qrels
from assistant.ids import parse_arxiv_id
from assistant.index import SearchFilter, SearchMode, connect, drop_collection
from assistant.index_migration import MigrationReport, migrate_index
from assistant.ingest import IngestReport
from assistant.messages import Citation, IncomingMessage
from assistant.models import Paper, SearchHit
from assistant.runtime import Runtime
from assistant.settings import load_settings
from assistant.sources.arxiv_api import ArxivSource
from assistant.sources.arxiv_dump import ArxivDumpSource
from assistant.sources.idlist import IdListSource
from assistant.sources.potw import PotwSource
from connectors.console.chat import ConsoleChat
from connectors.console.digest import ConsoleDigestChannel
from connectors.console.render import render_reply

if TYPE_CHECKING:
    from assistant.serving import RunningConnector

log = logging.getLogger(__name__)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

app = typer.Typer(
    help="paperbot: weekly ML paper digests, paper search and grounded answers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ingest_app = typer.Typer(help="Bring papers in from a source.", no_args_is_help=True)
index_app = typer.Typer(help="Manage the vector index.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure retrieval quality.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(index_app, name="index")
app.add_typer(eval_app, name="eval")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
OfflineOpt = Annotated[
    bool, typer.Option("--offline", help="Do not contact arXiv: use what the source gives.")
]


class RichProgress:
    """`assistant.ingest.Progress` as a rich progress bar on stderr."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: Any = None

    def begin(self, stage: str, total: int | None) -> None:
        if self._task is not None:
            self._progress.update(self._task, visible=False)
        self._task = self._progress.add_task(stage, total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)


@contextmanager
def progress_bar() -> Iterator[RichProgress]:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        yield RichProgress(progress)


def parse_week(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(f"--week takes a date like 2024-07-08, not {value!r}.") from exc


@contextmanager
def runtime() -> Iterator[Runtime]:
    settings = load_settings()
    with Runtime(settings) as rt:
        yield rt


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


# -- ingest ---------------------------------------------------------------------------


def show_report(report: IngestReport, as_json: bool, seconds: float) -> None:
    if as_json:
        emit_json({**report.as_dict(), "seconds": round(seconds, 2)})
        return
    table = Table(show_header=False, box=None)
    rows = [
        ("records read", report.records),
        ("new papers", report.new_papers),
        ("updated papers", report.updated_papers),
        ("unchanged papers", report.unchanged_papers),
        ("enriched from arXiv", report.enriched),
        ("full texts indexed", report.fulltext),
        ("papers (re)indexed", report.indexed_papers),
        ("passages embedded", report.indexed_chunks),
    ]
    for label, value in rows:
        table.add_row(label, f"[bold]{value:,}[/]")
    table.add_row("time", f"{seconds:.1f} s")
    out.print(table)
    for problem in report.problems:
        out.print(f"[yellow]skipped[/] {problem}")
    for note in report.notes:
        out.print(f"[cyan]note[/] {note}")


@ingest_app.command("potw")
def ingest_potw(
    file: Annotated[Path | None, typer.Option(help="A local copy of the README.")] = None,
    url: Annotated[str | None, typer.Option(help="README URL (default: the public list).")] = None,
    week: Annotated[str | None, typer.Option(help="Only this week (YYYY-MM-DD).")] = None,
    all_weeks: Annotated[bool, typer.Option("--all", help="Every week in the list.")] = False,
    offline: OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest the ML-Papers-of-the-Week list (default: its newest week)."""
    if file and url:
        raise InvalidInputError("Give --file or --url, not both.")
    if week and all_weeks:
        raise InvalidInputError("Give --week or --all, not both.")
    with runtime() as rt:
        location = str(file) if file else (url or rt.settings.ingest.potw_url)
        source = PotwSource.from_location(location, http=None if file else rt.http)
        chosen = parse_week(week)
        if chosen is None and not all_weeks:
            weeks = source.weeks()
            if not weeks:
                raise InvalidInputError(f"{location} has no 'Top ML Papers of the Week' sections.")
            chosen = max(weeks)
        source.week = chosen
        total = sum(1 for _ in source.read())
        started = time.perf_counter()
        with progress_bar() as bar:
            report = rt.ingestor.ingest(source, offline=offline, progress=bar, total=total)
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
        started = time.perf_counter()
        with progress_bar() as bar:
            report = rt.ingestor.ingest(ArxivSource(rt.arxiv, ids), progress=bar, total=len(ids))
        show_report(report, as_json, time.perf_counter() - started)
        if report.records == 0 and report.problems:
            raise typer.Exit(2)


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
        source = ArxivDumpSource(file, limit=limit, categories=set(category or ()) or None)
        started = time.perf_counter()
        with progress_bar() as bar:
            report = rt.ingestor.ingest(source, offline=not fulltext, progress=bar, total=limit)
        show_report(report, as_json, time.perf_counter() - started)


@ingest_app.command("list")
def ingest_list(
    file: Annotated[str, typer.Argument(help="A file (or URL) with one ID or URL per line.")],
    offline: OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest a plain list of arXiv IDs / paper URLs."""
    with runtime() as rt:
        source = IdListSource.from_location(file, http=rt.http)
        total = sum(1 for _ in source.read())
        started = time.perf_counter()
        with progress_bar() as bar:
            report = rt.ingestor.ingest(source, offline=offline, progress=bar, total=total)
        show_report(report, as_json, time.perf_counter() - started)


@ingest_app.command("enrich")
def ingest_enrich(as_json: JsonOpt = False) -> None:
    """Fetch arXiv metadata and full text for papers ingested offline."""
    with runtime() as rt:
        started = time.perf_counter()
        with progress_bar() as bar:
            report = rt.ingestor.enrich_pending(progress=bar)
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
        started = time.perf_counter()
        report = rt.ingestor.attach_pdf(resolve_paper_id(rt, paper), file.read_bytes())
        show_report(report, as_json, time.perf_counter() - started)


# -- read commands ----------------------------------------------------------------------


def resolve_paper_id(rt: Runtime, text: str) -> str:
    """A stored paper's key from an arXiv ID, a URL, a key or `#n` (see `find_paper`)."""
    return find_paper(rt.store, text).paper_id


def resolve_week(rt: Runtime, value: str | None) -> date | None:
    """The listed week (its start date) that contains the given day."""
    day = parse_week(value)
    if day is None:
        return None
    found = rt.store.week_containing(day)
    if found is not None:
        return found
    shown = ", ".join(w.isoformat() for w, _ in rt.store.weeks()[:5]) or "none yet"
    raise NotFoundError(f"No listed week contains {day}. Newest weeks: {shown}.")


def hit_dict(hit: SearchHit) -> dict[str, Any]:
    return {
        "paper_id": hit.paper_id,
        "title": hit.title,
        "score": hit.score,
        "url": hit.url,
        "snippet": hit.snippet,
        "section": hit.section,
        "page": hit.page,
    }


def print_hits(query: str, hits: Sequence[SearchHit]) -> None:
    if not hits:
        out.print(f"No papers match [bold]{query}[/].")
        return
    table = Table(title=f"Results for: {query}", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("paper")
    table.add_column("best passage")
    table.add_column("score", justify="right")
    for i, hit in enumerate(hits, start=1):
        where = f" [dim]({hit.section or hit.kind}{f', p.{hit.page}' if hit.page else ''})[/]"
        table.add_row(
            str(i),
            f"[bold]{hit.title}[/]\n[cyan]{hit.paper_id}[/]\n{hit.url or ''}",
            hit.snippet + where,
            f"{hit.score:.3f}",
        )
    out.print(table)


@app.command("search")
def search(
    query: Annotated[str | None, typer.Argument(help="What to look for.")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Number of papers.")] = 10,
    paper: Annotated[str | None, typer.Option(help="Only within this paper.")] = None,
    week: Annotated[str | None, typer.Option(help="Only papers listed that week.")] = None,
    category: Annotated[str | None, typer.Option(help="Only this arXiv category.")] = None,
    mode: Annotated[SearchMode, typer.Option(help="hybrid, dense or sparse.")] = SearchMode.HYBRID,
    queries: Annotated[
        Path | None, typer.Option(help="JSON lines of {'query': ...}; one JSON line out each.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search papers (hybrid dense + sparse retrieval)."""
    if (query is None) == (queries is None):
        raise InvalidInputError("Give a QUERY or --queries FILE (one of them).")
    with runtime() as rt:
        where = SearchFilter(
            paper_ids=(resolve_paper_id(rt, paper),) if paper else (),
            week=resolve_week(rt, week),
            categories=(category,) if category else (),
        )
        if queries is not None:
            search_many(rt, queries, k, where, mode)
            return
        assert query is not None
        hits = rt.searcher.search(query, k=k, where=where, mode=mode)
        if as_json:
            emit_json({"query": query, "results": [hit_dict(h) for h in hits]})
        else:
            print_hits(query, hits)


def search_many(rt: Runtime, path: Path, k: int, where: SearchFilter, mode: SearchMode) -> None:
    """One JSON line out per JSON line in; a bad line gets an error object, in order."""
    if not path.is_file():
        raise NotFoundError(f"No such file: {path}")
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                query = json.loads(line)["query"]
                if not isinstance(query, str):
                    raise TypeError("'query' must be a string")
                hits = rt.searcher.search(query, k=k, where=where, mode=mode)
            except (ValueError, KeyError, TypeError, UserError) as exc:
                emit_json({"line": number, "error": str(exc)})
                continue
            emit_json({"query": query, "results": [hit_dict(h) for h in hits]})


def paper_dict(paper: Paper) -> dict[str, Any]:
    data = asdict(paper)
    data["weeks"] = [w.isoformat() for w in paper.weeks]
    data["listings"] = [
        {
            "week": x.week.isoformat(),
            "rank": x.rank,
            "title": x.title,
            "description": x.description,
            "links": [asdict(link) for link in x.links],
        }
        for x in paper.listings
    ]
    return data


@app.command("show")
def show(
    paper: Annotated[str, typer.Argument(help="arXiv ID, URL or paper key.")],
    as_json: JsonOpt = False,
) -> None:
    """Show one paper's metadata and ingest status."""
    with runtime() as rt:
        found = rt.store.get_paper(resolve_paper_id(rt, paper))
        assert found is not None
        status = rt.store.index_status(found.paper_id)
        if as_json:
            data = paper_dict(found)
            data["versions"] = rt.store.versions(found.paper_id)
            data["index"] = {"passages": status.chunk_count, "fulltext": status.fulltext}
            emit_json(data)
            return
        unknown = "[dim]unknown[/]"
        out.print(f"[bold]{found.title}[/]  [cyan]{found.paper_id}[/]")
        fields = [
            ("authors", ", ".join(found.authors) or unknown),
            ("published", found.published or unknown),
            ("updated", found.updated or unknown),
            ("version", f"v{found.version}" if found.version else unknown),
            ("link", found.url or unknown),
            ("pdf", found.pdf_url or unknown),
            ("categories", ", ".join(found.categories) or unknown),
            ("listed", ", ".join(f"{x.week} #{x.rank}" for x in found.listings) or "never"),
            ("indexed", f"{status.chunk_count} passages, full text: {status.fulltext}"),
        ]
        if found.needs_enrichment:
            fields.append(("note", "metadata pending: run `paperbot ingest enrich`"))
        for label, value in fields:
            out.print(f"  [dim]{label:>10}[/]  {value}")
        if found.abstract:
            out.print(f"\n[bold]Abstract[/]\n{found.abstract}")
        if found.description:
            out.print(f"\n[bold]In the list[/]\n{found.description}")


@app.command("papers")
def papers(
    week: Annotated[str | None, typer.Option(help="Only papers listed that week.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List stored papers (one week's in list order)."""
    with runtime() as rt:
        chosen = resolve_week(rt, week)
        found = rt.store.papers(week=chosen)
        if as_json:
            emit_json({"week": chosen, "papers": [paper_dict(p) for p in found]})
            return
        table = Table(title=f"Papers of the week of {chosen}" if chosen else "Papers")
        for column in ("#", "paper", "title", "published", "weeks"):
            table.add_column(column)
        for i, paper in enumerate(found, start=1):
            rank = next((x.rank for x in paper.listings if x.week == chosen), i)
            table.add_row(
                str(rank),
                paper.paper_id,
                paper.title,
                str(paper.published or "unknown"),
                ", ".join(w.isoformat() for w in paper.weeks),
            )
        out.print(table)


@app.command("stats")
def stats(as_json: JsonOpt = False) -> None:
    """Counts of papers, weeks, passages and what is pending."""
    with runtime() as rt:
        data: dict[str, Any] = dict(rt.store.stats())
        data["schema_version"] = rt.store.schema_version
        data["data_dir"] = str(rt.settings.data_dir)
        data["index"] = rt.settings.qdrant.url or str(rt.settings.qdrant_path)
        data["embedding_model"] = rt.settings.embedding.model
        if as_json:
            emit_json(data)
            return
        table = Table(show_header=False, box=None)
        for key, value in data.items():
            table.add_row(key.replace("_", " "), f"[bold]{value}[/]")
        out.print(table)


@app.command("backup")
def backup(
    destination: Annotated[Path, typer.Argument(help="File to write the copy to.")],
    as_json: JsonOpt = False,
) -> None:
    """A consistent copy of the SQLite state, safe while `paperbot serve` runs.

    The vector index is not copied: `paperbot index rebuild` recreates it from this state.
    """
    with runtime() as rt:
        if destination.resolve() == rt.settings.state_path.resolve():
            raise InvalidInputError("The backup must go to another file than the live state.")
        size = rt.store.backup(destination)
    if as_json:
        emit_json({"backup": str(destination), "bytes": size})
        return
    err.print(f"backed up {rt.settings.state_path} to {destination} ({size / 1e6:.1f} MB)")


# -- questions ----------------------------------------------------------------------------


def citation_dict(c: Citation) -> dict[str, Any]:
    return c.as_dict()


@app.command("ask")
def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    paper: Annotated[str | None, typer.Option(help="Only this paper (ID, URL or #n).")] = None,
    week: Annotated[str | None, typer.Option(help="Only papers listed that week.")] = None,
    thread: Annotated[
        str | None, typer.Option(help="Continue this conversation (any name you like).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from the papers, with citations (extractive without an LLM)."""
    with runtime() as rt:
        scope = None
        if paper or week:
            paper_ids = (find_paper(rt.store, paper).paper_id,) if paper else ()
            scope = Scope(paper_ids=paper_ids, week=resolve_week(rt, week))
        conversation = thread or uuid.uuid4().hex[:8]
        message = IncomingMessage("cli", "cli", "cli", question, thread=conversation)
        streamed: list[str] = []

        def on_delta(piece: str) -> None:
            if not as_json:
                streamed.append(piece)
                out.print(piece, end="", markup=False, highlight=False)

        reply = rt.assistant.ask(message, scope, on_delta)
        if reply.kind == "error":
            raise InvalidInputError(reply.text)
        if as_json:
            emit_json(
                {
                    "answer": reply.text,
                    "mode": reply.mode,
                    "language": reply.language,
                    "citations": [citation_dict(c) for c in reply.citations],
                    "thread": conversation,
                }
            )
            return
        if streamed:
            out.print()
        out.print(render_reply(reply, streamed=bool(streamed) and reply.mode == "llm"))
        out.print(f"[dim]thread {conversation}: continue with --thread {conversation}[/]")


@app.command("chat")
def chat() -> None:
    """A terminal chat: `/paper` commands, and plain lines as follow-ups in a thread."""
    with runtime() as rt:
        posts = ConsoleDigestChannel(out, rt.settings.data_dir / "console_posts.jsonl")
        rt.digest_service.register_channel(posts.platform, posts)  # `/paper digest post`
        session = ConsoleChat(rt.assistant, out)

        def lines() -> Iterator[str]:
            while True:
                try:
                    yield out.input(f"[bold cyan]{session.thread}>[/] ")
                except (EOFError, KeyboardInterrupt):
                    return

        session.run(lines())


# -- digest -------------------------------------------------------------------------------

digest_app = typer.Typer(help="Build, show and post weekly digests.", no_args_is_help=True)
app.add_typer(digest_app, name="digest")


class DigestSource(StrEnum):
    POTW = "potw"
    HF = "hf"
    ARXIV = "arxiv"


class DigestFormat(StrEnum):
    MARKDOWN = "markdown"
    SLACK = "slack"
    DISCORD = "discord"
    JSON = "json"


@digest_app.command("build")
def digest_build(
    week: Annotated[str | None, typer.Option(help="Any day of the week (default: newest).")] = None,
    source: Annotated[DigestSource | None, typer.Option(help="potw, hf or arxiv.")] = None,
    file: Annotated[Path | None, typer.Option(help="A local copy of the list (potw).")] = None,
    offline: OfflineOpt = False,
    language: Annotated[str | None, typer.Option(help="Digest language, e.g. ja.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest the week's list and write a card (takeaway, summary, Q&A) per top paper."""
    if file is not None and not file.is_file():
        raise NotFoundError(f"No such file: {file}")
    with runtime() as rt:
        with progress_bar() as bar:
            prepared = rt.digest_service.prepare(
                parse_week(week),
                source.value if source else None,
                language,
                location=str(file) if file else None,
                offline=offline,
                progress=bar,
            )
        digest, build = prepared.digest, prepared.build
        summary = {
            "week": digest.week.isoformat(),
            "language": digest.language,
            "source": digest.source,
            "generator": digest.generator,
            "papers": build.cards,
            "from_cache": build.from_cache,
            "llm_calls": build.llm_calls,
            "llm_tokens": build.llm_tokens,
            "seconds": round(build.seconds, 2),
            "notes": build.notes,
        }
        if as_json:
            emit_json(summary)
            return
        out.print(
            f"Built the {digest.language} digest of the week of [bold]{digest.week}[/] "
            f"({digest.source}, {digest.generator}): {build.cards} papers, "
            f"{build.from_cache} from cache, {build.llm_calls} LLM calls, "
            f"{build.seconds:.1f} s."
        )
        for note in build.notes:
            out.print(f"[cyan]note[/] {note}")
        out.print(f"Show it with `paperbot digest show --week {digest.week}`.")


def load_digest(rt: Runtime, week: str | None, language: str | None) -> Digest:
    day = parse_week(week)
    lang = language or rt.settings.digest.language
    if day is None:
        return rt.digest_builder.load(None, lang)
    for start in (day - timedelta(days=i) for i in range(7)):
        try:
            return rt.digest_builder.load(start, lang)
        except NotFoundError:
            continue
    return rt.digest_builder.load(day, lang)  # raises with the message


@digest_app.command("show")
def digest_show(
    week: Annotated[str | None, typer.Option(help="Any day of the week (default: newest).")] = None,
    fmt: Annotated[DigestFormat, typer.Option("--format", help="Output format.")] = (
        DigestFormat.MARKDOWN
    ),
    language: Annotated[str | None, typer.Option(help="Digest language.")] = None,
) -> None:
    """Print a built digest as Markdown, Slack blocks, Discord embeds or JSON."""
    with runtime() as rt:
        digest = load_digest(rt, week, language)
    if fmt is DigestFormat.JSON:
        emit_json(digest_to_dict(digest))
    elif fmt is DigestFormat.MARKDOWN:
        sys.stdout.write(render_markdown(digest) + "\n")
    else:
        emit_json(platform_payloads(digest, fmt))


def platform_payloads(digest: Digest, fmt: DigestFormat) -> dict[str, Any]:
    import connectors.discord.render as discord_render
    import connectors.slack.render as slack_render

    module: Any = slack_render if fmt is DigestFormat.SLACK else discord_render
    return {
        "header": module.header_messages(digest),
        "cards": [
            {"paper_id": c.paper_id, "messages": module.card_messages(digest, c)}
            for c in digest.cards
        ],
    }


@digest_app.command("post")
def digest_post(
    week: Annotated[str | None, typer.Option(help="Any day of the week (default: newest).")] = None,
    channel: Annotated[str, typer.Option(help="console or console:NAME.")] = "console",
    language: Annotated[str | None, typer.Option(help="Digest language.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be posted.")] = False,
) -> None:
    """Post a built digest (header, then a card per paper), never twice to a channel."""
    platform, _, name = channel.partition(":")
    if platform != "console":
        raise InvalidInputError(
            f"Unknown channel {channel!r}: `paperbot digest post` posts to `console` or "
            "`console:NAME`; Slack and Discord channels get digests from `paperbot serve`."
        )
    target = name or "local"
    with runtime() as rt:
        digest = load_digest(rt, week, language)
        posts = ConsoleDigestChannel(out, rt.settings.data_dir / "console_posts.jsonl")
        if dry_run:
            done = rt.publisher.posted(posts.platform, target, digest)
            for post in plan_posts(digest, posts, rt.settings.digest.empty_week):
                state = "already posted" if post.key in done else "would post"
                out.print(f"{state:>14}  {post.key}")
            return
        report = asyncio.run(rt.digest_service.publish(digest, posts, target))
        err.print(
            f"{report.posted} posted, {report.already_posted} already posted, "
            f"{report.recovered} recovered."
        )


# -- serve -----------------------------------------------------------------------------


@app.command("serve")
def serve(
    catch_up_only: Annotated[
        bool, typer.Option("--catch-up-only", help="Run a missed digest slot, then exit.")
    ] = False,
    slack: Annotated[
        bool, typer.Option("--slack", help="Run the Slack connector (Socket Mode by default).")
    ] = False,
    discord: Annotated[
        bool, typer.Option("--discord", help="Run the Discord connector (the gateway).")
    ] = False,
    http: Annotated[
        bool, typer.Option("--http", help="With --slack: receive Slack's requests over HTTP.")
    ] = False,
    host: Annotated[str, typer.Option(help="With --http: the address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="With --http: the port to listen on.")] = 3000,
) -> None:
    """Run the weekly digest schedule, the enabled connectors and the health and metrics
    endpoint (PAPERBOT_HTTP_HOST:PAPERBOT_HTTP_PORT) until SIGTERM or Ctrl-C."""
    # Imported here: the endpoint's aiohttp is not worth loading for the other commands.
    from assistant.serving import start_connectors

    if http and not slack:
        raise InvalidInputError("--http is a Slack option: use `paperbot serve --slack --http`.")
    with runtime() as rt:
        d = rt.settings.digest
        schedule = WeeklySchedule(d.schedule, d.timezone)
        listen = not catch_up_only
        starters: list[Callable[[], RunningConnector]] = []
        if slack:
            starters.append(lambda: start_slack(rt, http, host, port, listen))
        if discord:
            starters.append(lambda: start_discord(rt, listen))
        connectors = start_connectors(starters)
        try:
            run_service(rt, schedule, connectors, catch_up_only)
        finally:
            for connector in connectors:
                connector.stop()  # a connector the service stopped already returns at once


def run_service(
    rt: Runtime,
    schedule: WeeklySchedule,
    connectors: Sequence[RunningConnector],
    catch_up_only: bool,
) -> None:
    """Catch up a missed digest slot; then, unless `catch_up_only`, serve until a signal."""
    from assistant.health import OpsEndpoint, Readiness, state_check
    from assistant.metrics import process_metrics
    from assistant.serving import DigestJobs, Service

    channels: dict[str, DigestChannel] = {
        "console": ConsoleDigestChannel(out, rt.settings.data_dir / "console_posts.jsonl")
    }
    for connector in connectors:
        if connector.digest_channel is not None:
            channels[connector.name] = connector.digest_channel
    for platform, channel in channels.items():  # for `/paper digest post` from chat
        rt.digest_service.register_channel(platform, channel)
    jobs = DigestJobs(lambda slot: rt.digest_service.run_slot(slot, channels))
    runner = ScheduleRunner(rt.store, schedule, jobs)
    if catch_up_only:
        caught = asyncio.run(runner.catch_up())
        if caught:
            announce(f"caught up the digest slot of {caught.isoformat()}")
        return
    open_index(rt)
    warm_up(rt)
    metrics = process_metrics()
    checks = [("index", rt.index_ready), ("state", state_check(rt.store))]
    readiness = Readiness(checks + [(c.name, c.ready) for c in connectors], metrics)
    endpoint = OpsEndpoint(readiness, metrics, rt.settings.http_host, rt.settings.http_port)
    service = Service(
        runner, jobs, connectors, readiness, endpoint, rt.settings.shutdown_seconds, announce
    )
    asyncio.run(service.run())


def open_index(rt: Runtime) -> None:
    """Open the index before serving: the embedded one is this process's from now on, or
    serve stops with the reason (another process holds it). A Qdrant server that does not
    answer yet is no reason to stop: /readyz reports it until it does."""
    ok, reason = rt.index_ready()
    if ok:
        return
    if not rt.settings.qdrant.url:
        raise IndexUnavailableError(reason)
    announce(f"the index is not ready yet ({reason}); /readyz says so until it is")


def warm_up(rt: Runtime) -> None:
    """Load the embedding model in the background, so the first question after a start
    does not wait for it."""

    def load() -> None:
        try:
            rt.embedder.embed(["warm up"])
        except Exception:  # the first real request reports the problem to its user
            log.warning("loading the embedding model at start failed", exc_info=True)

    threading.Thread(target=load, name="warm-up", daemon=True).start()


def announce(text: str) -> None:
    err.print(f"paperbot serve: {text}", soft_wrap=True, markup=False)


def start_discord(rt: Runtime, listen: bool) -> RunningConnector:
    """Build the Discord connector from settings and connect to the gateway (unless
    `listen` is False: `--catch-up-only` only posts digests, over REST)."""
    from connectors.discord.serve import start_discord as start

    running = start(rt.assistant, rt.store, rt.settings, rt.digest_builder.load, listen=listen)
    if listen:
        announce("Discord connector connected to the gateway")
    return running


def start_slack(rt: Runtime, http: bool, host: str, port: int, listen: bool) -> RunningConnector:
    """Build the Slack connector from settings and start receiving (unless `listen` is
    False: `--catch-up-only` only posts digests)."""
    from connectors.slack.app import SlackConnector, build_web_client
    from connectors.slack.digest import SlackDigestChannel
    from connectors.slack.serve import HttpRunner, RunningSlack, SlackRunner, SocketModeRunner

    bot_token, app_token, _ = rt.settings.slack.require(socket_mode=not http, receive=listen)
    client = build_web_client(rt.settings.slack, bot_token)
    channel = SlackDigestChannel(client)
    if not listen:
        return RunningSlack(channel)
    connector = SlackConnector(
        rt.assistant, rt.store, rt.settings, rt.digest_builder.load, client=client
    )
    app = connector.build_app()  # checks the token with auth.test
    receiver: SlackRunner = (
        HttpRunner(app, host, port) if http else SocketModeRunner(app, app_token or "")
    )
    receiver.start()
    announce(f"Slack connector on {receiver.description}")
    return RunningSlack(channel, receiver, connector, rt.settings.shutdown_seconds)


# -- index and evaluation ---------------------------------------------------------------


@index_app.command("rebuild")
def index_rebuild(as_json: JsonOpt = False) -> None:
    """Drop the vector index and re-embed every stored paper (after a model change)."""
    with runtime() as rt:
        drop_collection(rt.settings.qdrant, rt.settings.qdrant_path)
        started = time.perf_counter()
        with progress_bar() as bar:
            report = rt.ingestor.rebuild(progress=bar)
        show_report(report, as_json, time.perf_counter() - started)


@index_app.command("migrate")
def index_migrate(
    to_url: Annotated[str, typer.Option("--to-url", help="The Qdrant server to copy to.")],
    api_key_env: Annotated[
        str | None,
        typer.Option(help="Environment variable holding its API key (default QDRANT_API_KEY)."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Points per request.")] = 256,
    as_json: JsonOpt = False,
) -> None:
    """Copy the embedded index to a Qdrant server: same points, vectors and model, no
    re-embedding; safe to run again. Then set QDRANT_URL to use the server."""
    settings = load_settings()
    qdrant = settings.qdrant
    if not settings.qdrant_path.is_dir():
        raise NotFoundError(
            f"There is no embedded index at {settings.qdrant_path} to migrate "
            "(check PAPERBOT_DATA_DIR)."
        )
    key = qdrant.api_key
    if api_key_env is not None:
        value = os.environ.get(api_key_env)
        if not value:
            raise ConfigError(f"--api-key-env {api_key_env}: that variable is not set.")
        key = SecretStr(value)
    source = connect(qdrant.model_copy(update={"url": None}), settings.qdrant_path)
    try:
        destination = connect(
            qdrant.model_copy(update={"url": to_url, "api_key": key}), settings.qdrant_path
        )
        try:
            with progress_bar() as bar:
                report = migrate_index(
                    source, destination, qdrant.collection, to_url, batch, progress=bar
                )
        finally:
            destination.close()
    finally:
        source.close()
    show_migration(report, as_json)
    if not report.verified:
        raise typer.Exit(2)


def show_migration(report: MigrationReport, as_json: bool) -> None:
    if not report.verified:
        err.print(
            "[red]verification failed[/]: the server does not hold the same points as the "
            "embedded index; run the command again, or migrate into an empty collection."
        )
    if as_json:
        emit_json(report.as_dict())
        return
    table = Table(show_header=False, box=None)
    rows = [
        ("collection", report.collection),
        ("copied to", report.destination + (" (created)" if report.created else "")),
        ("points copied", f"{report.copied:,}"),
        ("points there", f"{report.destination_points:,} of {report.source_points:,}"),
        ("sample queries", f"{report.matching_queries} of {report.sample_queries} agree"),
        ("time", f"{report.seconds:.1f} s"),
    ]
    for label, value in rows:
        table.add_row(label, f"[bold]{value}[/]")
    out.print(table)
    if report.verified:
        out.print(f"Verified. Set QDRANT_URL={report.destination} to search the server.")


@eval_app.command("retrieval")
def eval_retrieval(
    qrels: Annotated[Path, typer.Option(help="JSON lines {'query', 'relevant': [ids]}.")],
    mode: Annotated[
        list[SearchMode] | None, typer.Option(help="Modes to compare (default: all three).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recall@1/5/10 and MRR@10 of search on a labelled query set."""
    labelled = load_qrels(qrels)
    modes = mode or list(SearchMode)
    results: dict[str, dict[str, float | int]] = {}
    with runtime() as rt:
        for chosen in modes:

            def rank(q: str, m: SearchMode = chosen) -> list[str]:
                return [h.paper_id for h in rt.searcher.search(q, k=10, mode=m)]

            results[chosen.value] = evaluate(labelled, rank).as_dict()
    if as_json:
        emit_json({"qrels": str(qrels), "results": results})
        return
    table = Table(title=f"Retrieval on {qrels} ({len(labelled)} queries)")
    table.add_column("mode")
    for metric in ("recall@1", "recall@5", "recall@10", "mrr@10"):
        table.add_column(metric, justify="right")
    for name, scores in results.items():
        table.add_row(
            name, *(f"{scores[m]:.3f}" for m in ("recall@1", "recall@5", "recall@10", "mrr@10"))
        )
    out.print(table)
    emit_json({"qrels": str(qrels), "results": results})


# -- demo -------------------------------------------------------------------------------

SAMPLE_WEEK = Path(__file__).parent / "data" / "sample_potw.md"
DEMO_QUESTION = "How does FlashAttention-3 keep FP8 attention accurate?"
DEMO_QUERIES = (
    "making exact attention faster on new GPUs",
    "FlashAttention-3の主な貢献は何ですか？",
)


@app.command("demo")
def demo() -> None:
    """Ingest the bundled sample week (offline, no keys), search it and ask about it."""
    with runtime() as rt:
        out.rule("[bold]paperbot demo[/]: embedded Qdrant, SQLite, local embeddings")
        out.print(f"data dir: {rt.settings.data_dir.resolve()}")
        source = PotwSource.from_location(SAMPLE_WEEK)
        total = sum(1 for _ in source.read())
        started = time.perf_counter()
        with progress_bar() as bar:
            report = rt.ingestor.ingest(source, offline=True, progress=bar, total=total)
        show_report(report, False, time.perf_counter() - started)
        for query in DEMO_QUERIES:
            started = time.perf_counter()
            hits = rt.searcher.search(query, k=3)
            print_hits(query, hits)
            out.print(f"[dim]{(time.perf_counter() - started) * 1000:.0f} ms[/]")
        source = PotwSource.from_location(SAMPLE_WEEK)
        week = max(source.weeks())
        digest, _ = rt.digest_builder.build_week(week, "potw", rt.settings.digest.language)
        out.rule(f"[bold]paperbot digest show[/] --week {week}")
        out.print(Markdown(render_header_markdown(digest)))
        out.print(Markdown(render_card_markdown(digest, digest.cards[0])))
        out.print(f"[dim]… and {len(digest.cards) - 1} more cards: `paperbot digest show`[/]")
        question = DEMO_QUESTION
        out.rule(f"[bold]paperbot ask[/] {question}")
        message = IncomingMessage("cli", "demo", "demo", question, thread="demo")
        reply = rt.assistant.ask(message)
        out.print(render_reply(reply))
        out.print(
            "Next: `paperbot chat` (a conversation with /paper commands and follow-ups), "
            "`paperbot ask QUESTION`, `paperbot search QUERY`, `paperbot show 2407.08608`, "
            "`paperbot ingest potw --all` (online). Set OPENAI_BASE_URL for generated answers."
        )


# -- entry point ---------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI: user errors print their message and exit 2; bugs exit 1 with a trace."""
    try:
        level = load_settings().log_level.upper()
        logging.basicConfig(
            level=getattr(logging, level, logging.WARNING),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        code = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except UserError as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(2)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and bugs
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        log.exception("paperbot failed")
        err.print("[red]paperbot failed unexpectedly[/]; the traceback is above.")
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)
