"""`paperbot chat`: a terminal conversation with the same commands and threads as Slack.

`/paper ...` runs a command; a plain line is a follow-up in the current thread;
`/thread NEW` starts a thread and `/thread <id>` switches to one; `/quit` leaves. Lines
go through the same shared flows as Slack and Discord (`connectors.flow`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

from rich.console import Console

from assistant.commands import parse_command
from assistant.core import Assistant
from assistant.messages import Reply
from connectors.console.adapter import ConsolePlatform
from connectors.console.render import ConsoleRenderer
from connectors.flow.flows import ChatFlows
from connectors.flow.loop import FlowLoop
from connectors.flow.platform import CommandEvent, Event, MessageEvent, Place
from connectors.flow.work import WorkQueue

PLATFORM = "console"
HELP = (
    "Type `/paper help` for commands; a plain line asks a follow-up in the current thread; "
    "`/thread NEW` starts a new thread, `/thread ID` switches; `/quit` exits."
)


def line_event(line: str, user: str, channel: str, thread: str) -> Event:
    """A console line as a flow event: `/...` a command, anything else a follow-up."""
    text = line.strip()
    place = Place(channel, thread)
    if text.startswith("/"):
        return CommandEvent(platform=PLATFORM, user=user, place=place, command=parse_command(text))
    message_id = uuid.uuid4().hex[:12]
    return MessageEvent(
        platform=PLATFORM, user=user, place=place, text=text, message_id=message_id, mentioned=True
    )


class ConsoleChat:
    """Reads lines, hands them to the shared flows, which print the replies."""

    def __init__(
        self, assistant: Assistant, console: Console, user: str = "you", channel: str = "local"
    ) -> None:
        self._console = console
        self._user = user
        self._channel = channel
        self.flows = ChatFlows(
            ConsolePlatform(console),
            ConsoleRenderer(),
            assistant,
            assistant.store,
            WorkQueue(workers=1, quick_workers=1, name="console"),
            stream_interval=0.0,
        )
        self._loop = FlowLoop("console", io_threads=2)
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
        event = line_event(text, self._user, self._channel, self.thread)
        self.last_reply = self._loop.run(self.flows.handle(event))
        return True

    def _switch_thread(self, target: str) -> None:
        if not target or target.upper() == "NEW":
            self.thread = self._new_thread_id()
        else:
            self.thread = target.split()[0]
        self._console.print(f"thread [cyan]{self.thread}[/]")
