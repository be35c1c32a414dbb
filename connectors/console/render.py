"""Core replies as rich renderables for the terminal: the console renderer (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from assistant.digest.markdown import render_card_markdown
from assistant.digest.model import Digest, DigestCard
from assistant.messages import Citation, PaperCard, Reply, ResultList
from assistant.rich import RichText
from connectors.flow.platform import Asked

UNKNOWN = "unknown"
_STYLES = {"plain": "", "bold": "bold", "italic": "italic", "code": "cyan"}


@dataclass(frozen=True)
class ConsoleMessage:
    """What the console prints: a renderable; or, for an answer being written, the text
    so far (`streamed`). `after_stream` replaces `renderable` once the text was streamed."""

    renderable: RenderableType | None = None
    streamed: str | None = None
    after_stream: RenderableType | None = None


class ConsoleRenderer:
    """The shared flows' `Renderer` for the terminal."""

    def reply(
        self,
        reply: Reply,
        *,
        asked: Asked | None = None,
        shared_by: str | None = None,
        feedback: bool = False,
    ) -> list[ConsoleMessage]:
        after = render_reply(reply, streamed=True) if reply.mode == "llm" else None
        return [ConsoleMessage(render_reply(reply), after_stream=after)]

    def notice(self, text: RichText) -> list[ConsoleMessage]:
        return [ConsoleMessage(rich_text(text))]

    def placeholder(self, asked: Asked) -> ConsoleMessage:
        return ConsoleMessage(Text(f"Looking into: {asked[1]}…", style="dim"))

    def streaming(self, text: str, asked: Asked | None) -> ConsoleMessage:
        return ConsoleMessage(streamed=text)

    def qa(self, digest: Digest, card: DigestCard) -> list[ConsoleMessage]:
        return [ConsoleMessage(Markdown(render_card_markdown(digest, card)))]


def rich_text(text: RichText, style: str = "") -> Text:
    """Neutral rich text as a styled terminal Text (spans are never parsed as markup)."""
    shown = Text(style=style)
    for span in text.spans:
        if span.style == "link" and span.url:
            shown.append(span.text, style=f"underline link {span.url}")
        else:
            shown.append(span.text, style=_STYLES.get(span.style, ""))
    return shown


def render_reply(reply: Reply, streamed: bool = False) -> RenderableType:
    """The whole reply: its text (unless it was already streamed) and its parts."""
    blocks: list[RenderableType] = []
    if not streamed:
        style = "red" if reply.kind == "error" else ""
        body = reply.rich if reply.rich is not None else RichText.literal(reply.text)
        blocks.append(rich_text(body, style))
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
