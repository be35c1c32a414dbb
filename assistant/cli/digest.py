"""`paperbot digest ...`: build, show and post weekly digests."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from assistant.cli.common import (
    JsonOpt,
    OfflineOpt,
    app,
    emit_json,
    err,
    out,
    parse_week,
    progress_bar,
    runtime,
)
from assistant.digest.markdown import render_markdown
from assistant.digest.model import Digest, digest_to_dict
from assistant.errors import InvalidInputError, NotFoundError
from assistant.runtime import Runtime
from connectors.console.digest import ConsoleDigestChannel

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
    file: Annotated[
        Path | None,
        typer.Option(help="A local copy of the list (potw): README.md, a year file or a clone."),
    ] = None,
    offline: OfflineOpt = False,
    language: Annotated[str | None, typer.Option(help="Digest language, e.g. ja.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest the week's list and write a card (takeaway, summary, Q&A) per top paper."""
    if file is not None and not file.exists():
        raise NotFoundError(f"No such file or folder: {file}")
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


def load_digest(
    rt: Runtime, week: str | None, language: str | None, source: DigestSource | None = None
) -> Digest:
    day = parse_week(week)
    lang = language or rt.settings.digest.language
    named = source.value if source else None
    if day is None:
        return rt.digest_builder.load(None, lang, named)
    for start in (day - timedelta(days=i) for i in range(7)):
        try:
            return rt.digest_builder.load(start, lang, named)
        except NotFoundError:
            continue
    return rt.digest_builder.load(day, lang, named)  # raises with the message


SourceOpt = Annotated[
    DigestSource | None,
    typer.Option(help="Whose digest, when several sources built one that week: potw, hf, arxiv."),
]


@digest_app.command("show")
def digest_show(
    week: Annotated[str | None, typer.Option(help="Any day of the week (default: newest).")] = None,
    fmt: Annotated[DigestFormat, typer.Option("--format", help="Output format.")] = (
        DigestFormat.MARKDOWN
    ),
    language: Annotated[str | None, typer.Option(help="Digest language.")] = None,
    source: SourceOpt = None,
) -> None:
    """Print a built digest as Markdown, Slack blocks, Discord embeds or JSON."""
    with runtime() as rt:
        digest = load_digest(rt, week, language, source)
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
    source: SourceOpt = None,
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
        digest = load_digest(rt, week, language, source)
        posts = ConsoleDigestChannel(out, rt.settings.data_dir / "console_posts.jsonl")
        if dry_run:
            done = rt.publisher.posted(posts.platform, target, digest)
            planned = asyncio.run(rt.publisher.plan(digest, posts, target, dry_run=True))
            for post in planned:
                state = "already posted" if post.key in done else "would post"
                out.print(f"{state:>14}  {post.key}")
            view = asyncio.run(rt.publisher.channel_view(digest, posts, target, persist=False))
            for card in view.cards:
                if card.already_posted is not None:
                    when = card.already_posted.posted_on
                    out.print(f"{'one line':>14}  {card.paper_id}: its card went out on {when}")
            return
        report = asyncio.run(rt.digest_service.publish(digest, posts, target))
        err.print(
            f"{report.posted} posted, {report.already_posted} already posted, "
            f"{report.recovered} recovered."
        )


@digest_app.command("updates")
def digest_updates(
    channel: Annotated[str, typer.Option(help="console or console:NAME.")] = "console",
) -> None:
    """Post the due notes about new versions of posted papers, each in its card's thread,
    exactly once (`paperbot serve` does this on its own for Slack and Discord)."""
    platform, _, name = channel.partition(":")
    if platform != "console":
        raise InvalidInputError(
            f"Unknown channel {channel!r}: `paperbot digest updates` posts to `console` or "
            "`console:NAME`; `paperbot serve` posts Slack and Discord notes."
        )
    with runtime() as rt:
        posts = ConsoleDigestChannel(out, rt.settings.data_dir / "console_posts.jsonl")
        report = asyncio.run(rt.publisher.publish_updates(posts, name or "local"))
        err.print(f"{report.posted} version note(s) posted, {report.recovered} recovered.")
