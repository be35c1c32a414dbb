"""The `/paper` application-command group: the shared verbs as Discord subcommands.

Each subcommand's typed options become the core's typed command (`translate.typed_command`
over `assistant.commands.command_from_options`): `search <query>`, `show <paper>`,
`ask <question> [paper]`, `digest [week] [post]`, ... Nothing is turned back into text for
the core to parse again. Paper and week options autocomplete from the stored weeks.

    tree.add_command(build_command_group(connector))
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Protocol

import discord
from discord import app_commands

from assistant.commands import Command
from assistant.digest.split import shorten
from assistant.ids import find_arxiv_id
from assistant.models import Paper
from assistant.state import StateStore
from connectors.discord.translate import typed_command

CHOICES = 25  # Discord shows at most 25 autocomplete choices
CHOICE_NAME = 100
OLDER_WEEKS = 3  # weeks before the latest whose arXiv papers are offered too


class CommandHandler(Protocol):
    """What the group calls: start a used command, and autocomplete its options."""

    def start_command(self, interaction: discord.Interaction[Any], command: Command) -> None:
        """Handle a used subcommand (it defers within Discord's 3 s, then answers)."""
        ...

    async def paper_choices(self, current: str) -> list[app_commands.Choice[str]]:
        """Choices for a paper option, given what has been typed so far."""
        ...

    async def week_choices(self, current: str) -> list[app_commands.Choice[str]]:
        """Choices for a week option, given what has been typed so far."""
        ...


def build_command_group(handler: CommandHandler) -> app_commands.Group:
    """`/paper` with a subcommand per verb (guilds only: answers open threads)."""
    group = app_commands.Group(
        name="paper",
        description="Find ML papers, read the weekly digest, ask questions with citations",
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
    )

    async def papers(
        interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return await handler.paper_choices(current)

    async def weeks(
        interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return await handler.week_choices(current)

    @group.command(name="search", description="Find papers (titles, abstracts, full text)")
    @app_commands.describe(query="What to look for, e.g. flash attention")
    async def search(interaction: discord.Interaction[Any], query: str) -> None:
        handler.start_command(interaction, typed_command("search", {"query": query}))

    @group.command(name="show", description="A paper's card: metadata and summary")
    @app_commands.describe(paper="An arXiv ID or URL, or #n for the latest week's n-th paper")
    @app_commands.autocomplete(paper=papers)
    async def show(interaction: discord.Interaction[Any], paper: str) -> None:
        handler.start_command(interaction, typed_command("show", {"paper": paper}))

    @group.command(name="ask", description="An answer from the papers, with citations")
    @app_commands.describe(
        question="Your question",
        paper="Only this paper (an arXiv ID or #n); default: every paper",
    )
    @app_commands.autocomplete(paper=papers)
    async def ask(
        interaction: discord.Interaction[Any], question: str, paper: str | None = None
    ) -> None:
        command = typed_command("ask", {"question": question, "paper": paper})
        handler.start_command(interaction, command)

    @group.command(name="digest", description="A week's top papers (default: the latest week)")
    @app_commands.describe(
        week="Any day of the week, YYYY-MM-DD",
        post="Post the week's full digest in this channel now, with a thread per card (admins)",
    )
    @app_commands.autocomplete(week=weeks)
    async def digest(
        interaction: discord.Interaction[Any], week: str | None = None, post: bool = False
    ) -> None:
        handler.start_command(interaction, typed_command("digest", {"week": week, "post": post}))

    @group.command(name="subscribe", description="Post the weekly digest here (admins)")
    async def subscribe(interaction: discord.Interaction[Any]) -> None:
        handler.start_command(interaction, typed_command("subscribe", {}))

    @group.command(name="unsubscribe", description="Stop the weekly digest here (admins)")
    async def unsubscribe(interaction: discord.Interaction[Any]) -> None:
        handler.start_command(interaction, typed_command("unsubscribe", {}))

    @group.command(name="help", description="How to use /paper")
    async def help_(interaction: discord.Interaction[Any]) -> None:
        handler.start_command(interaction, typed_command("help", {}))

    return group


def paper_choices(store: StateStore, current: str) -> list[tuple[str, str]]:
    """(name, value) choices for a paper option: the latest week's papers (value `#n`, or
    the arXiv ID), arXiv papers of the weeks before, and an exact ID match."""
    weeks = [w for w, _ in store.weeks()][: OLDER_WEEKS + 1]
    found: list[tuple[str, str]] = []
    if current.strip():
        exact = store.get_paper(current.strip())
        if exact is not None and find_arxiv_id(exact.paper_id):
            found.append(_choice(exact, exact.paper_id))
    for index, week in enumerate(weeks):
        for rank, paper in enumerate(store.papers(week=week), start=1):
            if find_arxiv_id(paper.paper_id):
                found.append(_choice(paper, paper.paper_id, rank if index == 0 else None))
            elif index == 0:  # `#n` names it while it is in the latest week
                found.append(_choice(paper, f"#{rank}", rank))
    return _matching(found, current)


def week_choices(weeks: Sequence[tuple[date, int]], current: str) -> list[tuple[str, str]]:
    """(name, value) choices for a week option, newest first."""
    found = [(f"{week.isoformat()} ({count} papers)", week.isoformat()) for week, count in weeks]
    return _matching(found, current)


def _choice(paper: Paper, value: str, rank: int | None = None) -> tuple[str, str]:
    title = " ".join(paper.title.split())
    prefix = f"#{rank} " if rank else ""
    suffix = f" ({paper.paper_id})"
    room = CHOICE_NAME - len(prefix) - len(suffix)
    return f"{prefix}{shorten(title, max(room, 10))}{suffix}"[:CHOICE_NAME], value


def _matching(choices: list[tuple[str, str]], current: str) -> list[tuple[str, str]]:
    needle = current.strip().casefold()
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for name, value in choices:
        if value in seen or (needle and needle not in f"{name} {value}".casefold()):
            continue
        seen.add(value)
        out.append((name, value))
    return out[:CHOICES]
