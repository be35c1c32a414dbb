"""Posting digests to the terminal: the console connector's `DigestChannel`.

Each post is printed as Markdown and appended to a log under the data dir, which is what
`find` reads after a crash (as Slack's message metadata or Discord's nonce are on theirs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel

from assistant.digest.markdown import (
    render_card_markdown,
    render_header_markdown,
    render_update_markdown,
)
from assistant.digest.model import Digest, DigestCard, VersionNote
from assistant.digest.publisher import PostedRef


class ConsoleDigestChannel:
    """Prints digest posts; keeps a log of what was posted where."""

    platform = "console"

    def __init__(self, console: Console, log_path: Path) -> None:
        self._console = console
        self._log_path = log_path

    def render_header(self, digest: Digest) -> list[Any]:
        return [render_header_markdown(digest)]

    def render_card(self, digest: Digest, card: DigestCard) -> list[Any]:
        return [render_card_markdown(digest, card)]

    def render_update(self, note: VersionNote) -> list[Any]:
        return [render_update_markdown(note)]

    async def post(self, channel: str, payload: Any, key: str, thread: str | None) -> PostedRef:
        message_id = f"{channel}/{key}"
        where = f"#{channel}" + (f" › thread {thread}" if thread else "")
        panel = Panel(Markdown(str(payload)), title=where, title_align="left")
        self._console.print(panel, soft_wrap=False)  # wrapped inside the panel, never cropped
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("a", encoding="utf-8") as log:
            log.write(
                json.dumps(
                    {"channel": channel, "key": key, "message_id": message_id, "thread": thread}
                )
                + "\n"
            )
        return PostedRef(message_id, thread or message_id)

    async def link(self, channel: str, ref: PostedRef) -> str | None:
        """None: a terminal has no links; the header shows the thread's id instead, which
        `paperbot chat` opens with `/thread ID`."""
        return None

    async def find(self, channel: str, key: str, thread: str | None = None) -> PostedRef | None:
        if not self._log_path.exists():
            return None
        for line in self._log_path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if entry["channel"] == channel and entry["key"] == key:
                return PostedRef(entry["message_id"], entry["thread"] or entry["message_id"])
        return None
