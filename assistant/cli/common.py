"""What every `paperbot` command shares: the consoles, the Typer apps, progress bars,
JSON output and the Runtime (the composition root) built from settings."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from assistant.core import find_paper
from assistant.errors import InvalidInputError
from assistant.ingest import IngestReport
from assistant.models import SearchHit
from assistant.runtime import Runtime
from assistant.settings import load_settings

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
        shown = [t for t in self._progress.tasks if t.id == self._task]
        if shown and not shown[0].finished:  # a finished stage stays shown
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
    with Runtime(settings, process=command_name()) as rt:
        rt.store  # noqa: B018  (open the state first: an unusable data dir stops here)
        yield rt


COMMAND: ContextVar[str] = ContextVar("paperbot_command", default="paperbot")
"""The running command, e.g. "paperbot chat", set by `main` (recorded with the embedded
index's lock, so that another command finding it in use can say which one holds it)."""

GROUPS = ("ingest", "index", "eval", "digest")  # commands with subcommands


def command_words(argv: Sequence[str]) -> str:
    """The words naming a command, e.g. "paperbot index rebuild" for ["index", "rebuild",
    "--json"]; never its arguments (a query or a file name may be private)."""
    words = ["paperbot"]
    for arg in argv:
        if arg.startswith("-"):
            break
        words.append(arg)
        if arg not in GROUPS or len(words) > 2:
            break
    return " ".join(words)


def command_name() -> str:
    return COMMAND.get()


def optimize_index(rt: Runtime, bar: RichProgress, report: IngestReport) -> None:
    """After a run that wrote passages: let the index merge segments and build its search
    graphs (a no-op when little changed, and on a Qdrant server)."""
    if report.indexed_chunks:
        bar.begin("optimizing the index", None)
        rt.index.optimize()


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def show_report(report: IngestReport, as_json: bool, seconds: float) -> None:
    if as_json:
        emit_json({**report.as_dict(), "seconds": round(seconds, 2)})
    else:
        print_report(report, seconds)
    usable = report.records or report.enriched or report.fulltext
    if not usable and report.problems:  # something read or checked: exit 0 with the rest
        count = len(report.problems)
        raise InvalidInputError(
            f"Nothing usable was read ({count:,} problem{'s' * (count > 1)}; the first: "
            f"{report.problems[0]})."
        )


def print_report(report: IngestReport, seconds: float) -> None:
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
        out.print(f"[yellow]skipped[/] {escape(str(problem))}")
    for note in report.notes:
        out.print(f"[cyan]note[/] {escape(note)}")


def resolve_paper_id(rt: Runtime, text: str) -> str:
    """A stored paper's key from an arXiv ID, a URL, a key or `#n` (see `find_paper`)."""
    return find_paper(rt.store, text).paper_id


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
