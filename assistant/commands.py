"""The `/paper` commands: typed, and what each means, for every connector.

Slack and the console parse the text people type (`parse_command`); Discord builds the
same commands from its typed options (`command_from_options`). Either way the core gets
one of the command types below and decides what it means: who may run it, who sees the
answer, whether the answer opens a thread.

>>> parse_command("/paper ask 2407.08608 how fast is it?")
Ask(question='how fast is it?', paper='2407.08608')
>>> command_from_options("digest", {"week": "2024-07-10", "post": True})
PostDigest(week=datetime.date(2024, 7, 10))
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import ClassVar, Literal

from assistant.ids import find_arxiv_id
from assistant.rich import RichText, bold, code, quoted, rich

Visibility = Literal["public", "private"]
VERBS = ("search", "show", "ask", "digest", "subscribe", "unsubscribe", "help")
_RANK = re.compile(r"^#?\d{1,3}$")


_USAGE_LINES = (
    ("/paper search <query>", "find papers (hybrid search over titles, abstracts, full text)"),
    ("/paper show <arXiv id | URL | #n>", "a paper's card (#n: the latest week's n-th paper)"),
    ("/paper ask [<arXiv id>] <question>", "an answer from the papers, with citations"),
    ("/paper digest [YYYY-MM-DD]", "a week's top papers (default: the latest week)"),
    ("/paper digest post [YYYY-MM-DD]", "post that week's full digest here now (admins only)"),
    ("/paper subscribe", "the weekly digest in this channel (admins only)"),
    ("/paper unsubscribe", "no more weekly digest in this channel (admins only)"),
    ("/paper help", "this message"),
)


def _usage() -> RichText:
    parts: list[str | RichText] = [bold("/paper commands")]
    for command, what in _USAGE_LINES:
        parts += ["\n• ", code(command), f" — {what}"]
    parts.append("\nReply in the thread of an answer or a paper card to ask a follow-up about it.")
    return rich(*parts)


USAGE = _usage()


@dataclass(frozen=True)
class Search:
    """`search <query>`: papers for a query (answered privately, shareable)."""

    query: str
    verb: ClassVar[str] = "search"
    admin_only: ClassVar[bool] = False
    visibility: ClassVar[Visibility] = "private"

    @property
    def text(self) -> str:
        return f"search {self.query}"


@dataclass(frozen=True)
class Show:
    """`show <paper>`: a paper's card (answered privately, shareable)."""

    paper: str
    verb: ClassVar[str] = "show"
    admin_only: ClassVar[bool] = False
    visibility: ClassVar[Visibility] = "private"

    @property
    def text(self) -> str:
        return f"show {self.paper}"


@dataclass(frozen=True)
class Ask:
    """`ask [<paper>] <question>`: an answer for everyone; its thread is the conversation."""

    question: str
    paper: str | None = None
    verb: ClassVar[str] = "ask"
    admin_only: ClassVar[bool] = False
    visibility: ClassVar[Visibility] = "public"

    @property
    def text(self) -> str:
        return f"ask {self.paper} {self.question}" if self.paper else f"ask {self.question}"


@dataclass(frozen=True)
class ListDigest:
    """`digest [day]`: the week's list, for everyone (default: the latest week)."""

    week: date | None = None
    verb: ClassVar[str] = "digest"
    admin_only: ClassVar[bool] = False
    visibility: ClassVar[Visibility] = "public"

    @property
    def text(self) -> str:
        return f"digest {self.week}" if self.week else "digest"


@dataclass(frozen=True)
class PostDigest:
    """`digest post [day]`: the week's full digest posted in the channel (admins)."""

    week: date | None = None
    verb: ClassVar[str] = "digest"
    admin_only: ClassVar[bool] = True
    visibility: ClassVar[Visibility] = "private"  # the report; the digest itself is public

    @property
    def text(self) -> str:
        return f"digest post {self.week}" if self.week else "digest post"


@dataclass(frozen=True)
class Subscribe:
    """`subscribe`: this channel gets the weekly digest (admins)."""

    verb: ClassVar[str] = "subscribe"
    admin_only: ClassVar[bool] = True
    visibility: ClassVar[Visibility] = "public"

    @property
    def text(self) -> str:
        return "subscribe"


@dataclass(frozen=True)
class Unsubscribe:
    """`unsubscribe`: this channel stops getting the weekly digest (admins)."""

    verb: ClassVar[str] = "unsubscribe"
    admin_only: ClassVar[bool] = True
    visibility: ClassVar[Visibility] = "public"

    @property
    def text(self) -> str:
        return "unsubscribe"


@dataclass(frozen=True)
class Help:
    """`help` (or nothing at all): the usage, privately."""

    verb: ClassVar[str] = "help"
    admin_only: ClassVar[bool] = False
    visibility: ClassVar[Visibility] = "private"

    @property
    def text(self) -> str:
        return "help"


@dataclass(frozen=True)
class Unclear:
    """Input that is not a command: `problem` and the usage are answered privately."""

    problem: RichText
    verb: ClassVar[str] = "unknown"
    admin_only: ClassVar[bool] = False
    visibility: ClassVar[Visibility] = "private"

    @property
    def text(self) -> str:
        return self.problem.plain


Command = Search | Show | Ask | ListDigest | PostDigest | Subscribe | Unsubscribe | Help | Unclear

_EXAMPLES = {
    "search": "/paper search flash attention",
    "show": "/paper show 2407.08608",
    "ask": "/paper ask what is new in FlashAttention-3?",
}
_REQUIRED = {"search": "query", "show": "paper", "ask": "question"}
Option = str | bool | None


def parse_command(text: str) -> Command:
    """What follows `/paper` (a leading `/paper` is accepted and dropped) as a command."""
    text = text.strip()
    if text.lower().startswith("/paper"):
        text = text[len("/paper") :].strip()
    verb, rest = _first_word(text)
    verb = verb.lower() or "help"
    options: dict[str, Option] = {}
    if verb == "search":
        options["query"] = rest
    elif verb == "show":
        options["paper"] = rest
    elif verb == "ask":
        first, question = _first_word(rest)
        names_paper = bool(find_arxiv_id(first)) or (first.startswith("#") and _RANK.match(first))
        options |= {"paper": first, "question": question} if names_paper and question else {}
        options.setdefault("question", rest)
    elif verb == "digest":
        first, day = _first_word(rest)
        post = first.lower() == "post"
        options |= {"post": post, "week": day if post else rest}
    elif verb not in VERBS:
        return Unclear(rich("Unknown command ", code(verb[:40]), "."))
    return command_from_options(verb, options)


def _first_word(text: str) -> tuple[str, str]:
    words = text.split(maxsplit=1)
    return (words[0], words[1].strip()) if len(words) == 2 else (text.strip(), "")


def command_from_options(verb: str, options: Mapping[str, Option]) -> Command:
    """A command from a verb and its options by name (Discord's typed options, or the
    parts of a typed line): blank text is no value; a missing argument or a bad date is
    an `Unclear` command."""
    text = {k: v.strip() for k, v in options.items() if isinstance(v, str) and v.strip()}
    if verb in _EXAMPLES and not text.get(_REQUIRED[verb]):
        return Unclear(rich(code(verb), " needs an argument, e.g. ", code(_EXAMPLES[verb]), "."))
    if verb == "search":
        return Search(text["query"])
    if verb == "show":
        return Show(text["paper"])
    if verb == "ask":
        return Ask(text["question"], text.get("paper"))
    if verb == "digest":
        week = text.get("week")
        try:
            day = date.fromisoformat(week) if week else None
        except ValueError:
            not_a_day = rich(" takes a date like 2024-07-08, not ", quoted(week or "", 40), ".")
            return Unclear(rich(code("digest"), not_a_day))
        return PostDigest(day) if options.get("post") is True else ListDigest(day)
    if verb == "subscribe":
        return Subscribe()
    if verb == "unsubscribe":
        return Unsubscribe()
    if verb == "help":
        return Help()
    return Unclear(rich("Unknown command ", code(verb[:40]), "."))
