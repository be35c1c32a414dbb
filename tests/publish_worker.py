"""A digest publisher in a process of its own, for the cross-process exactly-once tests.

    python -m tests.publish_worker DATA_DIR DIGEST_JSON CHANNEL RUNS DELAY

Posts the digest (JSON, as `digest_to_dict` writes it) to the console channel `CHANNEL`
with `RUNS` concurrent publishing runs in this one process, each post taking `DELAY`
seconds, over the data dir's SQLite state; the console log `console_posts.jsonl` under the
data dir is the "platform". Prints one JSON line: the runs' reports.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console

from assistant.conversations import ConversationStore
from assistant.digest.model import digest_from_dict
from assistant.digest.publisher import DigestPublisher, PostedRef
from assistant.state import StateStore
from connectors.console.digest import ConsoleDigestChannel


class SlowConsoleChannel(ConsoleDigestChannel):
    """The console channel, with every post taking `delay` seconds before it lands."""

    def __init__(self, log_path: Path, delay: float) -> None:
        super().__init__(Console(file=io.StringIO()), log_path)
        self._delay = delay

    async def post(self, channel: str, payload: Any, key: str, thread: str | None) -> PostedRef:
        await asyncio.sleep(self._delay)
        return await super().post(channel, payload, key, thread)


async def publish_all(data: Path, digest_json: Path, target: str, runs: int, delay: float) -> str:
    store = StateStore.open(data / "paperbot.sqlite3")
    try:
        digest = digest_from_dict(json.loads(digest_json.read_text(encoding="utf-8")))
        publisher = DigestPublisher(store, ConversationStore(store), poll_seconds=0.05)
        channel = SlowConsoleChannel(data / "console_posts.jsonl", delay)
        reports = await asyncio.gather(
            *(publisher.publish(digest, channel, target) for _ in range(runs))
        )
        return json.dumps([asdict(r) for r in reports])
    finally:
        store.close()


def main(argv: list[str]) -> None:
    data, digest_json, target, runs, delay = argv
    line = asyncio.run(publish_all(Path(data), Path(digest_json), target, int(runs), float(delay)))
    sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
