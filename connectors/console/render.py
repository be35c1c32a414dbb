"""Turning core replies into rich renderables for the terminal (pure functions)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from assistant.messages import Citation, PaperCard, Reply, ResultList

UNKNOWN = "unknown"


def render_reply(reply: Reply, streamed: bool = False) -> RenderableType:
    """The whole reply: its text (unless it was already streamed) and its parts."""
    blocks: list[RenderableType] = []
    if not streamed:
        style = "red" if reply.kind == "error" else ""
        blocks.append(Text(reply.text, style=style) if reply.kind == "error" else _text(reply))
    cards = [p for p in reply.parts if isinstance(p, PaperCard)]
    lists = [p for p in reply.parts if isinstance(p, ResultList)]
    blocks += [render_card(c) for c in cards]
    blocks += [render_results(r) for r in lists if reply.kind != "search" or streamed]
    if reply.citations:
        # extractive answers already show their quotes in the text
        blocks.append(render_citations(reply.citations, quotes=reply.mode == "llm"))
    if reply.mode:
        blocks.append(Text(f"({reply.mode} answer, language: {reply.language})", style="dim"))
    return Group(*blocks)


def _text(reply: Reply) -> RenderableType:
    if reply.kind == "answer":
        return Text(reply.text)
    return Markdown(reply.text.replace("•", "-"))


def render_card(card: PaperCard) -> Panel:
    lines = [
        f"[bold]Authors:[/] {', '.join(card.authors) or UNKNOWN}",
        f"[bold]Published:[/] {card.published or UNKNOWN}   "
        f"[bold]Updated:[/] {card.updated or UNKNOWN}",
        f"[bold]Link:[/] {card.url or UNKNOWN}",
        f"[bold]Categories:[/] {', '.join(card.categories) or UNKNOWN}",
    ]
    if card.summary:
        lines += ["", card.summary]
    title = f"{'#' + str(card.rank) + ' ' if card.rank else ''}{card.title} ({card.paper_id})"
    return Panel("\n".join(lines), title=title, title_align="left")


def render_results(results: ResultList) -> Table:
    table = Table(title=results.heading, show_lines=True, expand=True)
    table.add_column("#", justify="right", width=3)
    table.add_column("paper", ratio=2)
    table.add_column("", ratio=3)
    for i, item in enumerate(results.items, start=1):
        table.add_row(str(i), f"[bold]{item.title}[/]\n[cyan]{item.paper_id}[/]", item.snippet)
    return table


def render_citations(citations: tuple[Citation, ...], quotes: bool = True) -> Table:
    table = Table(title="Sources", show_lines=quotes, expand=True, title_justify="left")
    table.add_column("", width=4)
    table.add_column("paper", ratio=2)
    table.add_column("where", ratio=1)
    if quotes:
        table.add_column("quoted passage", ratio=3)
    for c in citations:
        where = ", ".join(x for x in (c.section, f"p. {c.page}" if c.page else None) if x)
        paper = f"[bold]{c.title}[/] ({c.paper_id})" + (f"\n{c.url}" if c.url else "")
        row = [f"[{c.number}]", paper, where or "abstract / list"]
        if quotes:
            row.append(f"“{c.quote}”")
        table.add_row(*row)
    return table
