"""`paperbot index ...` and `paperbot eval ...`: the vector index and retrieval quality."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr
from rich.table import Table

from assistant.cli.common import (
    JsonOpt,
    command_name,
    emit_json,
    err,
    eval_app,
    index_app,
    out,
    progress_bar,
    runtime,
    show_report,
)
from assistant.errors import ConfigError, NotFoundError
from assistant.evaluation import evaluate, load_qrels
from assistant.index import SearchMode
from assistant.index_edge import EdgeIndex
from assistant.index_folder import IndexFolder, legacy_error, legacy_index
from assistant.index_migration import MigrationReport, migrate_index
from assistant.index_server import connect
from assistant.settings import load_settings


@index_app.command("rebuild")
def index_rebuild(as_json: JsonOpt = False) -> None:
    """Rebuild the vector index from the stored papers (SQLite), whatever state it is in:
    after a model change, a damaged or deleted index, or an index of an older paperbot."""
    with runtime() as rt:
        started = time.perf_counter()
        with progress_bar() as bar:
            report = rt.rebuild_index(progress=bar)
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
    legacy = legacy_index(settings.data_dir)
    if not IndexFolder(settings.index_path).has_shard():
        if legacy is not None:
            raise legacy_error(legacy)
        raise NotFoundError(
            f"There is no embedded index at {settings.index_path} to migrate "
            "(check PAPERBOT_DATA_DIR)."
        )
    key = qdrant.api_key
    if api_key_env is not None:
        value = os.environ.get(api_key_env)
        if not value:
            raise ConfigError(f"--api-key-env {api_key_env}: that variable is not set.")
        key = SecretStr(value)
    source = EdgeIndex.open_as_recorded(settings.index_path, command_name())
    try:
        destination = connect(qdrant.model_copy(update={"url": to_url, "api_key": key}))
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
