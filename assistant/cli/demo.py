"""`paperbot demo`: the bundled sample week, offline, end to end."""

from __future__ import annotations

import time
from pathlib import Path

from rich.markdown import Markdown

from assistant.cli.common import app, out, print_hits, progress_bar, runtime, show_report
from assistant.digest.markdown import render_card_markdown, render_header_markdown
from assistant.messages import IncomingMessage
from assistant.sources.potw import PotwSource
from connectors.console.render import render_reply

SAMPLE_WEEK = Path(__file__).parent.parent / "data" / "sample_potw.md"
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
