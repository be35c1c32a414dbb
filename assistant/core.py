"""The assistant's core: `/paper` commands and threaded follow-ups, for every connector.

Connectors hand it typed commands (`run`) and thread messages (`follow_up`), and render
the `Reply`: what it says (plain and rich text, parts), who sees it, whether it opens a
thread. No platform library is imported here. Requests and answer times are counted
here, so every connector is measured the same way.

>>> reply = assistant.run(Search("LoRA"), Origin("console", "me", "local"))
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Protocol

from assistant.answering import Answerer
from assistant.commands import (
    USAGE,
    Ask,
    Command,
    Help,
    ListDigest,
    PostDigest,
    Search,
    Show,
    Subscribe,
    Unclear,
    Unsubscribe,
    parse_command,
)
from assistant.conversations import ConversationStore, Scope, Turn
from assistant.digest.publisher import PublishReport
from assistant.errors import InvalidInputError, NotFoundError, UserError
from assistant.ids import find_arxiv_id, paper_key
from assistant.messages import IncomingMessage, Origin, PaperCard, Reply, ResultItem, ResultList
from assistant.metrics import Metrics, Outcome, process_metrics
from assistant.models import Paper
from assistant.ratelimit import RateLimiter
from assistant.rich import RichText, bold, code, quoted, rich, with_code
from assistant.search import Searcher
from assistant.settings import AnswerSettings
from assistant.state import StateStore

log = logging.getLogger(__name__)

Delta = Callable[[str], None]
_RANK = re.compile(r"^#?(\d{1,3})$")
# Errors that are the user's doing (bad input, unknown paper, a rate limit, not an admin):
# counted as "refused". Any other error means the assistant could not answer.
_REFUSALS = (InvalidInputError, NotFoundError)


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

    @property
    def store(self) -> StateStore:
        return self._store

    def run(self, command: Command, origin: Origin, on_delta: Delta | None = None) -> Reply:
        """Run a `/paper` command for `origin` (an `Ask`'s answer streams to `on_delta`)."""
        if isinstance(command, Unclear):
            self._metrics.count_request(origin.platform, "unknown", "refused")
            body = rich(command.problem, "\n\n", USAGE)
            return Reply.formatted(body, visibility="private", kind="error")
        return self._counted(
            origin.platform, command.verb, lambda: self._run(command, origin, on_delta)
        )

    def command(self, message: IncomingMessage, on_delta: Delta | None = None) -> Reply:
        """A command typed as text (`message.text` is what follows `/paper`): parsed,
        then run. For the CLI and benchmarks; connectors parse and call `run`."""
        return self.run(parse_command(message.text), message.origin, on_delta)

    def follow_up(self, message: IncomingMessage, on_delta: Delta | None = None) -> Reply:
        """A message in a thread: a question in that thread's conversation."""
        return self._counted(
            message.platform,
            "follow_up",
            lambda: self._answer(message.origin, message.text, None, on_delta),
        )

    def ask(
        self, message: IncomingMessage, scope: Scope | None = None, on_delta: Delta | None = None
    ) -> Reply:
        """A question in `message.thread`'s conversation, optionally limited to `scope`."""
        return self._counted(
            message.platform,
            "ask",
            lambda: self._answer(message.origin, message.text, scope, on_delta),
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
            return Reply.formatted(with_code(str(exc)), visibility="private", kind="error")
        except Exception:
            outcome = "error"
            raise
        finally:
            self._metrics.count_request(platform, kind, outcome)
            if outcome == "error":
                self._metrics.count_error("core")

    # -- verbs ---------------------------------------------------------------------

    def _run(self, command: Command, origin: Origin, on_delta: Delta | None) -> Reply:
        match command:
            case Help():
                return Reply.formatted(USAGE, visibility="private", kind="help")
            case Search(query):
                return self._search(origin, query)
            case Show(reference):
                return self._show(origin, reference)
            case Ask(question, paper):
                scope = (
                    Scope(paper_ids=(find_paper(self._store, paper).paper_id,)) if paper else None
                )
                answer = self._answer(origin, question, scope, on_delta)
                return replace(answer, opens_thread=origin.thread is None)
            case PostDigest(week):
                return self._post_digest(origin, week, on_delta)
            case ListDigest(week):
                return self._digest(week)
            case Subscribe() | Unsubscribe():
                return self._subscription(origin, subscribe=isinstance(command, Subscribe))
        raise AssertionError(f"unhandled command {command!r}")

    def _limit(self, message: Origin) -> None:
        for limiter, key, who in (
            (self._per_user, f"{message.platform}:{message.user}", "You are"),
            (self._per_channel, f"{message.platform}:{message.channel}", "This channel is"),
        ):
            wait = limiter.check(key)
            if wait is not None:
                raise InvalidInputError(
                    f"{who} asking faster than the limit; try again in {max(1, round(wait))} s."
                )

    def _search(self, origin: Origin, query: str) -> Reply:
        self._limit(origin)
        hits = self._searcher.search(query, k=5)
        if not hits:
            nothing = rich("No papers match ", quoted(query, 200), ".")
            return Reply.formatted(nothing, visibility="private", kind="search")
        items = tuple(ResultItem(h.paper_id, h.title, h.url, h.snippet, h.score) for h in hits)
        heading = f"Papers for “{query}”"
        body: list[str | RichText] = [bold(heading)]
        for i, h in enumerate(hits, 1):
            body += [f"\n{i}. ", bold(h.title), f" ({h.paper_id}) — {h.snippet}"]
        return Reply.formatted(
            rich(*body),
            parts=(ResultList(heading, items),),
            visibility="private",
            kind="search",
            share=Search(query).text,
        )

    def _show(self, origin: Origin, reference: str) -> Reply:
        paper = find_paper(self._store, reference)
        if origin.thread:  # a follow-up in this thread is now about this paper
            conversation = self._conversations.open(origin.platform, origin.channel, origin.thread)
            self._conversations.set_focus(conversation, (paper.paper_id,))
        week = paper.weeks[-1] if paper.weeks else None
        card = paper_card(paper, week)
        unknown = "unknown"
        body = rich(
            bold(paper.title),
            f" ({paper.paper_id})",
            f"\nAuthors: {', '.join(paper.authors) or unknown}",
            f"\nPublished: {paper.published or unknown} · Updated: {paper.updated or unknown}",
            f"\nLink: {paper.url or unknown}",
            f"\nCategories: {', '.join(paper.categories) or unknown}",
            "\n\n",
            card.summary or "No summary yet.",
        )
        return Reply.formatted(
            body,
            parts=(card,),
            visibility="private",
            kind="paper",
            scope_paper_ids=(paper.paper_id,),
            share=Show(paper.paper_id).text,
        )

    def _answer(
        self,
        origin: Origin,
        question: str,
        scope: Scope | None,
        on_delta: Delta | None,
    ) -> Reply:
        started = time.perf_counter()
        self._answerer.validate(question)
        self._limit(origin)
        thread = origin.thread or origin.message_id or "main"
        conversation = self._conversations.open(origin.platform, origin.channel, thread, scope)
        effective = scope or conversation.scope
        answer = self._answerer.ask(
            question, effective, conversation.turns, conversation.focus, on_delta
        )
        self._conversations.add_turn(
            conversation,
            Turn(
                "user",
                question,
                user=origin.user,
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
            # "none": the core's own words (no paper text), whose `/paper search` is code
            rich=with_code(answer.text) if answer.mode == "none" else None,
        )

    def _digest(self, day: date | None) -> Reply:
        weeks = [w for w, _ in self._store.weeks()]
        if not weeks:
            none_yet = rich("No week has been ingested yet; an admin can run ",
                            code("paperbot ingest potw"), ".")  # fmt: skip
            return Reply.formatted(none_yet, visibility="private", kind="digest")
        week = weeks[0]
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
        body: list[str | RichText] = [bold(heading)]
        for i, x in enumerate(items, 1):
            body += [f"\n{i}. ", bold(x.title), f" — {x.snippet}"]
        return Reply.formatted(rich(*body), parts=(ResultList(heading, items),), kind="digest")

    def _post_digest(self, origin: Origin, day: date | None, notify: Delta | None = None) -> Reply:
        """`digest post [day]`: the week's full digest (header, cards, their threads) in
        this channel now, exactly once, like the scheduled post (admins only). `notify`
        hears at once when it must wait for another post or resume an interrupted one;
        the reply says so too."""
        if not origin.is_admin:
            raise InvalidInputError("Only admins can post the digest in a channel.")
        if self._digest_poster is None:
            raise InvalidInputError(
                "Posting the digest from chat needs `paperbot serve` with this platform's "
                "connector; in a terminal, use `paperbot digest post`."
            )
        week, report = self._digest_poster.post_now(origin.platform, origin.channel, day, notify)
        return Reply.formatted(
            rich(post_summary(week_label(week), report)), visibility="private", kind="info"
        )

    def _subscription(self, origin: Origin, subscribe: bool) -> Reply:
        if not origin.is_admin:
            raise InvalidInputError("Only admins can change this channel's digest subscription.")
        if subscribe:
            new = self._conversations.subscribe(origin.platform, origin.channel, origin.user)
            text = (
                "This channel will get the weekly digest."
                if new
                else "This channel already gets the weekly digest."
            )
        else:
            gone = self._conversations.unsubscribe(origin.platform, origin.channel)
            text = (
                "This channel will no longer get the weekly digest."
                if gone
                else "This channel was not subscribed."
            )
        return Reply.formatted(rich(text), kind="info")


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


def _takeaway(paper: Paper, week: date) -> str:
    listing = next((x for x in paper.listings if x.week == week), None)
    text = (listing.description if listing else None) or paper.abstract or ""
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return first[:300] or "unknown"
