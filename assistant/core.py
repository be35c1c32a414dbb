"""The assistant's core: `/paper` commands and threaded follow-ups, for every connector.

Connectors translate platform events into `IncomingMessage`s, call `command` or
`follow_up`, and render the `Reply`. No platform library is imported here. Requests and
answer times are counted here, so every connector is measured the same way.

>>> reply = assistant.command(IncomingMessage("console", "me", "local", "search LoRA"))
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Protocol

from assistant.answering import Answerer
from assistant.commands import USAGE, Command, UsageError, parse_command
from assistant.conversations import ConversationStore, Scope, Turn
from assistant.digest.publisher import PublishReport
from assistant.errors import InvalidInputError, NotFoundError, UserError
from assistant.ids import find_arxiv_id, paper_key
from assistant.messages import IncomingMessage, PaperCard, Reply, ResultItem, ResultList
from assistant.metrics import Metrics, Outcome, process_metrics
from assistant.models import Paper
from assistant.ratelimit import RateLimiter
from assistant.search import Searcher
from assistant.settings import AnswerSettings
from assistant.state import StateStore

log = logging.getLogger(__name__)

Delta = Callable[[str], None]
_RANK = re.compile(r"^#?(\d{1,3})$")
# Errors that are the user's doing (bad input, unknown paper, a rate limit, not an admin):
# counted as "refused". Any other error means the assistant could not answer.
_REFUSALS = (InvalidInputError, NotFoundError, UsageError)


def find_paper(store: StateStore, text: str) -> Paper:
    """A stored paper from an arXiv ID or URL, a paper key, or `#n` (rank in the latest week)."""
    text = text.strip()
    rank = _RANK.match(text)
    if rank:
        weeks = store.weeks()
        if not weeks:
            raise NotFoundError("No week has been ingested yet, so there is no paper #n.")
        papers = store.papers(week=weeks[0][0])
        n = int(rank.group(1))
        if not 1 <= n <= len(papers):
            raise NotFoundError(f"The latest week lists {len(papers)} papers; there is no #{n}.")
        return papers[n - 1]
    found = store.get_paper(text)
    if found is None and (find_arxiv_id(text) or "://" in text):
        found = store.get_paper(paper_key(text))
    if found is None:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise NotFoundError(
            f"No paper {shown!r} is in the index. Search for it (`/paper search {shown}`, or "
            f"`paperbot search` in a terminal); an admin can add it with "
            f"`paperbot ingest arxiv {shown}`."
        )
    return found


def paper_card(paper: Paper, week: date | None = None) -> PaperCard:
    rank = next((x.rank for x in paper.listings if x.week == week), None) if week else None
    return PaperCard(
        paper_id=paper.paper_id,
        title=paper.title,
        url=paper.url,
        authors=paper.authors,
        published=paper.published,
        updated=paper.updated,
        categories=paper.categories,
        summary=paper.abstract or paper.description,
        rank=rank,
        week=week,
    )


def week_label(week: date) -> str:
    end = week + timedelta(days=6)
    return f"{week:%b} {week.day} – {end:%b} {end.day}, {end.year}"


class DigestPoster(Protocol):
    """Posts a week's digest to a chat channel now (`paperbot serve` provides it)."""

    def post_now(
        self, platform: str, channel: str, day: date | None, notify: Delta | None = None
    ) -> tuple[date, PublishReport]:
        """Post the digest of the week containing `day` (default: the latest week);
        `notify` hears when it waits for another post or resumes an interrupted one."""
        ...


class Assistant:
    """Runs commands and answers follow-ups; one instance serves every connector."""

    def __init__(
        self,
        store: StateStore,
        conversations: ConversationStore,
        searcher: Searcher,
        answerer: Answerer,
        settings: AnswerSettings,
        metrics: Metrics | None = None,
        digest_poster: DigestPoster | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics or process_metrics()
        self._digest_poster = digest_poster
        self._conversations = conversations
        self._searcher = searcher
        self._answerer = answerer
        self._per_user = RateLimiter(settings.user_per_minute)
        self._per_channel = RateLimiter(settings.channel_per_minute)

    @property
    def conversations(self) -> ConversationStore:
        return self._conversations

    def command(self, message: IncomingMessage, on_delta: Delta | None = None) -> Reply:
        """Run a `/paper` command; `message.text` is what follows `/paper`."""
        try:
            parsed = parse_command(message.text)
        except UserError as exc:
            self._metrics.count_request(message.platform, "unknown", "refused")
            return Reply(str(exc), ephemeral=True, kind="error")
        return self._counted(
            message.platform, parsed.verb, lambda: self._run(parsed, message, on_delta)
        )

    def follow_up(self, message: IncomingMessage, on_delta: Delta | None = None) -> Reply:
        """A message in a thread: a question in that thread's conversation."""
        return self._counted(
            message.platform,
            "follow_up",
            lambda: self._answer(message, message.text, None, on_delta),
        )

    def ask(
        self, message: IncomingMessage, scope: Scope | None = None, on_delta: Delta | None = None
    ) -> Reply:
        """A question in `message.thread`'s conversation, optionally limited to `scope`."""
        return self._counted(
            message.platform, "ask", lambda: self._answer(message, message.text, scope, on_delta)
        )

    def start_thread(self, platform: str, channel: str, thread: str, scope: Scope) -> None:
        """Give a thread its scope before anyone replies (a paper card, a week's header)."""
        self._conversations.open(platform, channel, thread, scope)

    def _counted(self, platform: str, kind: str, run: Callable[[], Reply]) -> Reply:
        """`run()`, counted by outcome; a `UserError` becomes a private error reply. Any
        other exception is counted and passes on to the connector's error boundary."""
        outcome: Outcome = "ok"
        try:
            return run()
        except UserError as exc:
            outcome = "refused" if isinstance(exc, _REFUSALS) else "error"
            return Reply(str(exc), ephemeral=True, kind="error")
        except Exception:
            outcome = "error"
            raise
        finally:
            self._metrics.count_request(platform, kind, outcome)
            if outcome == "error":
                self._metrics.count_error("core")

    # -- verbs ---------------------------------------------------------------------

    def _run(self, command: Command, message: IncomingMessage, on_delta: Delta | None) -> Reply:
        verb, arg = command.verb, command.argument
        if verb == "help":
            return Reply(USAGE, ephemeral=True, kind="help")
        if verb == "search":
            return self._search(message, arg)
        if verb == "show":
            return self._show(message, arg)
        if verb == "ask":
            scope, question = self._ask_scope(arg)
            return self._answer(message, question, scope, on_delta)
        if command.posts_digest:
            return self._post_digest(message, arg.partition(" ")[2].strip())
        if verb == "digest":
            return self._digest(arg)
        return self._subscription(message, subscribe=verb == "subscribe")

    def _limit(self, message: IncomingMessage) -> None:
        for limiter, key, who in (
            (self._per_user, f"{message.platform}:{message.user}", "You are"),
            (self._per_channel, f"{message.platform}:{message.channel}", "This channel is"),
        ):
            wait = limiter.check(key)
            if wait is not None:
                raise InvalidInputError(
                    f"{who} asking faster than the limit; try again in {max(1, round(wait))} s."
                )

    def _search(self, message: IncomingMessage, query: str) -> Reply:
        self._limit(message)
        hits = self._searcher.search(query, k=5)
        if not hits:
            return Reply(f"No papers match “{query}”.", ephemeral=True, kind="search")
        items = tuple(ResultItem(h.paper_id, h.title, h.url, h.snippet, h.score) for h in hits)
        lines = [f"*Papers for “{query}”*"]
        lines += [f"{i}. {h.title} ({h.paper_id}) — {h.snippet}" for i, h in enumerate(hits, 1)]
        return Reply(
            "\n".join(lines),
            (ResultList(f"Papers for “{query}”", items),),
            ephemeral=True,
            kind="search",
        )

    def _show(self, message: IncomingMessage, reference: str) -> Reply:
        paper = find_paper(self._store, reference)
        if message.thread:  # a follow-up in this thread is now about this paper
            conversation = self._conversations.open(
                message.platform, message.channel, message.thread
            )
            self._conversations.set_focus(conversation, (paper.paper_id,))
        week = paper.weeks[-1] if paper.weeks else None
        card = paper_card(paper, week)
        unknown = "unknown"
        text = "\n".join(
            [
                f"*{paper.title}* ({paper.paper_id})",
                f"Authors: {', '.join(paper.authors) or unknown}",
                f"Published: {paper.published or unknown} · Updated: {paper.updated or unknown}",
                f"Link: {paper.url or unknown}",
                f"Categories: {', '.join(paper.categories) or unknown}",
                "",
                card.summary or "No summary yet.",
            ]
        )
        return Reply(text, (card,), kind="paper", scope_paper_ids=(paper.paper_id,))

    def _ask_scope(self, argument: str) -> tuple[Scope | None, str]:
        first, _, rest = argument.partition(" ")
        names_paper = find_arxiv_id(first) or (first.startswith("#") and _RANK.match(first))
        if rest.strip() and names_paper:
            paper = find_paper(self._store, first)
            return Scope(paper_ids=(paper.paper_id,)), rest.strip()
        return None, argument

    def _answer(
        self,
        message: IncomingMessage,
        question: str,
        scope: Scope | None,
        on_delta: Delta | None,
    ) -> Reply:
        started = time.perf_counter()
        self._answerer.validate(question)
        self._limit(message)
        thread = message.thread or message.message_id or "main"
        conversation = self._conversations.open(message.platform, message.channel, thread, scope)
        effective = scope or conversation.scope
        answer = self._answerer.ask(
            question, effective, conversation.turns, conversation.focus, on_delta
        )
        self._conversations.add_turn(
            conversation,
            Turn(
                "user",
                question,
                user=message.user,
                standalone=answer.standalone,
                language=answer.language,
            ),
        )
        self._conversations.add_turn(
            conversation,
            Turn(
                "assistant",
                answer.text,
                mode=answer.mode,
                language=answer.language,
                citations=answer.citations,
            ),
        )
        if answer.paper_ids and not effective.paper_ids:
            self._conversations.set_focus(conversation, answer.paper_ids[:3])
        self._metrics.observe_answer(answer.mode, time.perf_counter() - started)
        return Reply(
            answer.text,
            answer.citations,
            kind="answer",
            mode=answer.mode,
            language=answer.language,
            scope_paper_ids=answer.paper_ids,
        )

    def _digest(self, argument: str) -> Reply:
        weeks = [w for w, _ in self._store.weeks()]
        if not weeks:
            return Reply(
                "No week has been ingested yet; an admin can run `paperbot ingest potw`.",
                ephemeral=True,
                kind="digest",
            )
        week = weeks[0]
        day = _day(argument)
        if day is not None:
            found = self._store.week_containing(day)
            if found is None:
                raise NotFoundError(f"No listed week contains {day}. Latest: {weeks[0]}.")
            week = found
        papers = self._store.papers(week=week)
        items = tuple(
            ResultItem(p.paper_id, p.title, p.url, _takeaway(p, week), 0.0) for p in papers
        )
        heading = f"Top ML papers of the week, {week_label(week)}"
        lines = [f"*{heading}*"] + [
            f"{i}. *{x.title}* — {x.snippet}" for i, x in enumerate(items, 1)
        ]
        return Reply("\n".join(lines), (ResultList(heading, items),), kind="digest")

    def _post_digest(
        self, message: IncomingMessage, argument: str, notify: Delta | None = None
    ) -> Reply:
        """`digest post [day]`: the week's full digest (header, cards, their threads) in
        this channel now, exactly once, like the scheduled post (admins only). `notify`
        hears at once when it must wait for another post or resume an interrupted one;
        the reply says so too."""
        if not message.is_admin:
            raise InvalidInputError("Only admins can post the digest in a channel.")
        if self._digest_poster is None:
            raise InvalidInputError(
                "Posting the digest from chat needs `paperbot serve` with this platform's "
                "connector; in a terminal, use `paperbot digest post`."
            )
        week, report = self._digest_poster.post_now(
            message.platform, message.channel, _day(argument), notify
        )
        return Reply(post_summary(week_label(week), report), ephemeral=True, kind="info")

    def _subscription(self, message: IncomingMessage, subscribe: bool) -> Reply:
        if not message.is_admin:
            raise InvalidInputError("Only admins can change this channel's digest subscription.")
        if subscribe:
            new = self._conversations.subscribe(message.platform, message.channel, message.user)
            text = (
                "This channel will get the weekly digest."
                if new
                else "This channel already gets the weekly digest."
            )
        else:
            gone = self._conversations.unsubscribe(message.platform, message.channel)
            text = (
                "This channel will no longer get the weekly digest."
                if gone
                else "This channel was not subscribed."
            )
        return Reply(text, kind="info")


def post_summary(label: str, report: PublishReport) -> str:
    """What a `digest post` did, in a sentence or three."""
    if report.posted == 0 and report.recovered == 0:
        text = f"The digest of {label} is already in this channel; nothing was posted again."
    else:
        text = f"Posted the digest of {label} here: {report.posted} messages."
        if report.already_posted:
            text += f" {report.already_posted} were already posted and were not repeated."
    if report.resumed:
        text += (
            f" An interrupted post was resumed: {report.recovered} message(s) it had sent "
            "were found and not repeated."
        )
    if report.waited_seconds >= 1:
        text += (
            f" Another post of this digest was running here; this one waited "
            f"{report.waited_seconds:.0f} s for it."
        )
    return text


def _day(argument: str) -> date | None:
    """The day a `digest` argument names (None when it names none)."""
    if not argument.strip():
        return None
    try:
        return date.fromisoformat(argument.strip())
    except ValueError as exc:
        raise InvalidInputError(
            f"`digest` takes a date like 2024-07-08, not “{argument[:40]}”."
        ) from exc


def _takeaway(paper: Paper, week: date) -> str:
    listing = next((x for x in paper.listings if x.week == week), None)
    text = (listing.description if listing else None) or paper.abstract or ""
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return first[:300] or "unknown"
