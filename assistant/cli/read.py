"""Read commands and questions: `search`, `show`, `papers`, `stats`, `backup`, `ask`, `chat`."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from assistant.cli.common import (
    JsonOpt,
    app,
    emit_json,
    err,
    hit_dict,
    out,
    parse_week,
    print_hits,
    resolve_paper_id,
    runtime,
)
from assistant.conversations import Scope
from assistant.core import find_paper
from assistant.embedding import configured_model
from assistant.errors import (
    InvalidInputError,
    NotFoundError,
    UserError,
)
from assistant.index import SearchFilter, SearchMode
from assistant.messages import Citation, IncomingMessage
from assistant.models import Paper
from assistant.runtime import Runtime
from assistant.settings import PACKAGED_MODEL
from connectors.console.chat import ConsoleChat
from connectors.console.digest import ConsoleDigestChannel
from connectors.console.render import render_reply


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
    """One JSON line out per JSON line in; a bad line gets an error object, in order.

    Each answer carries `ms`: that query's wall time from text to results (embedding
    included); loading the model and opening the index happen before the first line.
    """
    if not path.is_file():
        raise NotFoundError(f"No such file: {path}")
    rt.searcher.search("warm up", k=k, where=where, mode=mode)
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                query = json.loads(line)["query"]
                if not isinstance(query, str):
                    raise TypeError("'query' must be a string")
                started = time.perf_counter()
                hits = rt.searcher.search(query, k=k, where=where, mode=mode)
                ms = (time.perf_counter() - started) * 1000
            except (ValueError, KeyError, TypeError, UserError) as exc:
                emit_json({"line": number, "error": str(exc)})
                continue
            emit_json({"query": query, "ms": round(ms, 2), "results": [hit_dict(h) for h in hits]})


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
        data["index"] = rt.settings.qdrant.url or str(rt.settings.index_path)
        s = rt.settings
        data["embedding_model"] = configured_model(s.embedding, s.openai, s.digest.language)
        if s.embedding.wants_english_vector(s.digest.language):
            data["english_vector"] = PACKAGED_MODEL  # a second vector per passage
        data["index_passages"], data["index_status"] = index_status(rt)
        if as_json:
            emit_json(data)
            return
        table = Table(show_header=False, box=None)
        for key, value in data.items():
            table.add_row(key.replace("_", " "), f"[bold]{value}[/]")
        out.print(table)


def index_status(rt: Runtime) -> tuple[int | None, str]:
    """What the index itself holds, and whether it matches the stored papers (or why it
    cannot be asked: in use by another process, a server down, damaged)."""
    try:
        count = rt.index.count()
    except UserError as exc:
        return None, str(exc)
    ok, reason = rt.index.ready()
    return count, reason if ok else f"out of step: {reason}"


@app.command("backup")
def backup(
    destination: Annotated[
        Path, typer.Argument(help="File to write the copy to, or a directory to put it in.")
    ],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier backup at DESTINATION.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """A consistent copy of the SQLite state, safe while `paperbot serve` runs.

    The vector index is not copied: `paperbot index rebuild` recreates it from this state.
    """
    with runtime() as rt:
        target = backup_target(destination, rt.settings.state_path, overwrite)
        try:
            size = rt.store.backup(target)
        except (OSError, sqlite3.Error) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise InvalidInputError(f"Cannot write the backup to {target}: {why}.") from None
    if as_json:
        emit_json({"backup": str(target), "bytes": size})
        return
    err.print(f"backed up {rt.settings.state_path} to {target} ({size / 1e6:.1f} MB)")


def backup_target(destination: Path, live: Path, overwrite: bool) -> Path:
    """Where `paperbot backup DESTINATION` writes: a new timestamped file inside a
    directory; a file only if it is new, or an earlier backup with `--overwrite`. Never a
    live database (ours, or another data dir's: a -wal or -shm file beside it)."""
    if destination.is_dir():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        destination = destination / f"paperbot-{stamp}.sqlite3"
    if destination.resolve() == live.resolve():
        raise InvalidInputError("The backup must go to another file than the live state.")
    if not destination.exists():
        return destination
    if any(destination.with_name(destination.name + s).exists() for s in ("-wal", "-shm")):
        raise InvalidInputError(
            f"{destination} looks like a database in use (it has a -wal or -shm file beside "
            "it): back up to a new file instead."
        )
    if not destination.is_file() or not overwrite:
        raise InvalidInputError(
            f"{destination} already exists: pass --overwrite to replace an earlier backup, "
            "or give a new file name or a directory."
        )
    return destination


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
