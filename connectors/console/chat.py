"""`paperbot chat`: a terminal conversation with the same commands and threads as Slack.

`/paper ...` runs a command; a plain line is a follow-up in the current thread;
`/thread NEW` starts a thread and `/thread <id>` switches to one; `/quit` leaves.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

from rich.console import Console

from assistant.core import Assistant
from assistant.messages import IncomingMessage, Reply
from connectors.console.render import render_reply

PLATFORM = "console"
HELP = (
    "Type `/paper help` for commands; a plain line asks a follow-up in the current thread; "
    "`/thread NEW` starts a new thread, `/thread ID` switches; `/quit` exits."
)


def to_message(line: str, user: str, channel: str, thread: str) -> IncomingMessage:
    """A console line as the core's message (the console user is an admin of their terminal)."""
    return IncomingMessage(PLATFORM, user, channel, line.strip(), thread=thread, is_admin=True)


class ConsoleChat:
    """Reads lines, hands them to the core, prints the replies (streaming answers live)."""

    def __init__(
        self, assistant: Assistant, console: Console, user: str = "you", channel: str = "local"
    ) -> None:
        self._assistant = assistant
        self._console = console
        self._user = user
        self._channel = channel
        self.thread = self._new_thread_id()
        self.last_reply: Reply | None = None

    @staticmethod
    def _new_thread_id() -> str:
        return uuid.uuid4().hex[:8]

    def run(self, lines: Iterable[str], prompt: Callable[[str], None] | None = None) -> None:
        """Handle lines until they run out or `/quit`."""
        self._console.print(f"[bold]paperbot[/] chat — thread [cyan]{self.thread}[/]. {HELP}")
        for line in lines:
            if not self.handle_line(line):
                break

    def handle_line(self, line: str) -> bool:
        """Handle one line; False when the user wants to leave."""
        text = line.strip()
        if not text:
            return True
        if text in ("/quit", "/exit"):
            return False
        if text.startswith("/thread"):
            self._switch_thread(text.removeprefix("/thread").strip())
            return True
        message = to_message(text, self._user, self._channel, self.thread)
        streamed: list[str] = []

        def on_delta(piece: str) -> None:
            streamed.append(piece)
            self._console.print(piece, end="", markup=False, highlight=False)

        if text.startswith("/paper") or text.startswith("/"):
            reply = self._assistant.command(
                IncomingMessage(
                    PLATFORM,
                    self._user,
                    self._channel,
                    text.removeprefix("/paper").strip() if text.startswith("/paper") else text,
                    thread=self.thread,
                    is_admin=True,
                ),
                on_delta,
            )
        else:
            reply = self._assistant.follow_up(message, on_delta)
        self.last_reply = reply
        self.show(reply, streamed=bool(streamed))
        return True

    def show(self, reply: Reply, streamed: bool = False) -> None:
        if streamed:
            self._console.print()
        self._console.print(render_reply(reply, streamed=streamed))

    def _switch_thread(self, target: str) -> None:
        if not target or target.upper() == "NEW":
            self.thread = self._new_thread_id()
        else:
            self.thread = target.split()[0]
        self._console.print(f"thread [cyan]{self.thread}[/]")
