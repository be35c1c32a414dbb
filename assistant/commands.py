"""The `/paper` command language, shared by every connector.

>>> parse_command("/paper search flash attention")
Command(verb='search', argument='flash attention')
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.errors import UserError

VERBS = ("search", "show", "ask", "digest", "subscribe", "unsubscribe", "help")
ADMIN_VERBS = frozenset({"subscribe", "unsubscribe"})

USAGE = """*`/paper` commands*
• `/paper search <query>` — find papers (hybrid search over titles, abstracts, full text)
• `/paper show <arXiv id | URL | #n>` — a paper's card (`#n`: the n-th paper of the latest week)
• `/paper ask [<arXiv id>] <question>` — an answer from the papers, with citations
• `/paper digest [YYYY-MM-DD]` — a week's top papers (default: the latest week)
• `/paper digest post [YYYY-MM-DD]` — post that week's full digest here now (admins only)
• `/paper subscribe` / `/paper unsubscribe` — the weekly digest in this channel (admins only)
• `/paper help` — this message
Reply in the thread of an answer or a paper card to ask a follow-up about it."""


class UsageError(UserError):
    """A command that could not be understood; the message includes the usage help."""


@dataclass(frozen=True)
class Command:
    """A parsed `/paper` command: its verb and the rest of the line."""

    verb: str
    argument: str

    @property
    def posts_digest(self) -> bool:
        """`digest post [day]`: post the week's full digest in the channel."""
        words = self.argument.split(maxsplit=1)
        return self.verb == "digest" and bool(words) and words[0].lower() == "post"

    @property
    def admin_only(self) -> bool:
        """Only admins may run it: subscribe, unsubscribe and `digest post`."""
        return self.verb in ADMIN_VERBS or self.posts_digest


def parse_command(text: str) -> Command:
    """Parse what follows `/paper` (a leading `/paper` is accepted and dropped)."""
    text = text.strip()
    if text.lower().startswith("/paper"):
        text = text[len("/paper") :].strip()
    if not text:
        return Command("help", "")
    verb, _, rest = text.partition(" ")
    verb = verb.lower()
    if verb not in VERBS:
        raise UsageError(f"Unknown command `{verb[:40]}`.\n\n{USAGE}")
    argument = rest.strip()
    if verb in ("search", "show", "ask") and not argument:
        examples = {
            "search": "/paper search flash attention",
            "show": "/paper show 2407.08608",
            "ask": "/paper ask what is new in FlashAttention-3?",
        }
        raise UsageError(f"`{verb}` needs an argument, e.g. `{examples[verb]}`.\n\n{USAGE}")
    return Command(verb, argument)


def try_parse(text: str) -> Command | None:
    """The parsed command, or None when it is not one (the core answers with usage help)."""
    try:
        return parse_command(text)
    except UserError:
        return None
