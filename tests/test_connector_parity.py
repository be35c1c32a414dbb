"""One scenario through the console, Slack and Discord connectors: the same core behaviour.

The same person does the same things on each platform: a search, a question, a follow-up in
the question's thread, a paper card, and a paper that does not exist. Each connector talks
to its platform through the real library (Slack: a bolt App and a fake Web API; Discord: a
discord.py client fed raw gateway payloads and a fake REST API; console: `ConsoleChat`),
and each has its own `Assistant` over one shared core. What the core received and answered
is recorded per connector, and must be the same everywhere: the same text reaches the core,
the same kind of reply comes back, with the same words and the same cited passages; and each
platform shows the cited paper to its user.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import discord
import pytest
from rich.console import Console

from assistant.core import Assistant
from assistant.embedding import SentenceTransformerEmbedder
from assistant.messages import IncomingMessage, Reply
from assistant.settings import Settings
from connectors.console.chat import ConsoleChat
from tests.fakes.discord_api import BOT_ID, FakeDiscordAPI
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_answering import FA3, Stack
from tests.test_discord import Bot as DiscordBot
from tests.test_discord import started
from tests.test_slack import Bot as SlackBot
from tests.test_slack import all_text, user_message

SEARCH = "faster attention kernels on Hopper GPUs"
QUESTION = "What does FlashAttention-3 change on Hopper GPUs?"
FOLLOW_UP = "and how fast is it?"
MISSING = "9999.99999"
STEPS = ("search", "ask", "follow_up", "show", "missing")


@dataclass(frozen=True)
class Exchange:
    """What one connector handed the core, and what the core answered."""

    text: str
    reply: Reply


class Recorder:
    """Wraps an Assistant's entry points; collects every exchange, in order."""

    def __init__(self, assistant: Assistant) -> None:
        self.exchanges: list[Exchange] = []
        self._changed = threading.Condition()
        for name in ("command", "follow_up", "ask"):
            setattr(assistant, name, self._wrap(getattr(assistant, name)))
        self.assistant = assistant

    def _wrap(self, method: Any) -> Any:
        def recorded(message: IncomingMessage, *args: Any, **kwargs: Any) -> Reply:
            reply: Reply = method(message, *args, **kwargs)
            with self._changed:
                self.exchanges.append(Exchange(message.text, reply))
                self._changed.notify_all()
            return reply

        return recorded

    def wait(self, count: int, timeout: float = 60.0) -> None:
        """Block until `count` exchanges happened (the Slack connector works in threads)."""
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.exchanges) >= count, timeout), (
                f"{len(self.exchanges)} of {count} exchanges after {timeout} s"
            )


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> Iterator[Stack]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("parity") / "data")
    settings.arxiv.download_pdfs = False
    s = Stack(settings, real_embedder)
    s.ingest_sample()
    yield s
    s.close()


def recorded(stack: Stack) -> Recorder:
    """A fresh Assistant over the shared core (its own rate limiters), recorded."""
    return Recorder(stack.assistant())


def console_run(stack: Stack) -> tuple[list[Exchange], str]:
    recorder = recorded(stack)
    screen = Console(file=io.StringIO(), width=200, color_system=None, record=True)
    chat = ConsoleChat(recorder.assistant, screen, user="ada", channel="lab")
    for line in (
        f"/paper search {SEARCH}",
        f"/paper ask {QUESTION}",
        FOLLOW_UP,
        f"/paper show {FA3}",
        f"/paper show {MISSING}",
    ):
        chat.handle_line(line)
    return recorder.exchanges, screen.export_text()


def slack_run(stack: Stack) -> tuple[list[Exchange], str]:
    with FakeSlackAPI() as api:
        bot = SlackBot(stack, api)
        recorder = Recorder(bot.connector._assistant)
        bot.command(f"search {SEARCH}")
        recorder.wait(1)
        bot.command(f"ask {QUESTION}")
        recorder.wait(2)
        root_ts = api.wait_for("chat.update")[0].params["ts"]
        bot.event(user_message(FOLLOW_UP, f"{float(root_ts) + 5:.6f}", thread_ts=root_ts))
        recorder.wait(3)
        bot.command(f"show {FA3}")
        recorder.wait(4)
        bot.command(f"show {MISSING}")
        recorder.wait(5)
        bot.settle()
        return recorder.exchanges, all_text(api.calls)


async def discord_run(stack: Stack) -> tuple[list[Exchange], str]:
    with FakeDiscordAPI() as api:
        bot = await started(DiscordBot(stack, api))
        try:
            recorder = Recorder(bot.connector._assistant)
            await bot.interact(api.command("search", bot.channel, query=SEARCH))
            await bot.interact(api.command("ask", bot.channel, question=QUESTION))
            answer = api.history(bot.channel)[-1]
            thread = bot.thread_of(answer["id"])
            await bot.say(api.user_message(thread, f"<@{BOT_ID}> {FOLLOW_UP}", mention=True))
            await bot.interact(api.command("show", bot.channel, paper=FA3))
            await bot.interact(api.command("show", bot.channel, paper=MISSING))
        finally:
            await bot.connector.close()
        shown = json.dumps([c.json for c in api.calls if c.json], ensure_ascii=False)
        return recorder.exchanges, shown


def essence(reply: Reply) -> dict[str, Any]:
    """What must not depend on the platform."""
    return {
        "kind": reply.kind,
        "mode": reply.mode,
        "ephemeral": reply.ephemeral,
        "language": reply.language,
        "text": reply.text,
        "citations": [(c.paper_id, c.section, c.page, c.quote) for c in reply.citations],
        "parts": [type(p).__name__ for p in reply.parts],
    }


async def test_one_scenario_gets_the_same_answers_on_console_slack_and_discord(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    runs = {
        "console": console_run(stack),
        "slack": slack_run(stack),
        "discord": await discord_run(stack),
    }
    for platform, (exchanges, _) in runs.items():
        assert len(exchanges) == len(STEPS), (platform, [e.text for e in exchanges])

    console = runs["console"][0]
    expected_kinds = ["search", "answer", "answer", "paper", "error"]
    assert [e.reply.kind for e in console] == expected_kinds
    assert {c.paper_id for c in console[1].reply.citations} == {FA3}
    assert {c.paper_id for c in console[2].reply.citations} == {FA3}  # stays on the paper
    for platform in ("slack", "discord"):
        exchanges = runs[platform][0]
        for step, mine, theirs in zip(STEPS, console, exchanges, strict=True):
            assert theirs.text == mine.text, (platform, step)
            assert essence(theirs.reply) == essence(mine.reply), (platform, step)

    # and every platform showed the answer's source and the error to its user
    url = console[1].reply.citations[0].url
    assert url
    for platform, (_, shown) in runs.items():
        assert url in shown, platform
        assert MISSING in shown, platform
        assert "FlashAttention-3" in shown, platform


def test_the_recorder_sees_a_different_answer(stack: Stack) -> None:
    """The comparison can fail: another question gives another essence."""
    recorder = recorded(stack)
    first = recorder.assistant.command(IncomingMessage("console", "u", "c", f"ask {QUESTION}"))
    other = recorder.assistant.command(
        IncomingMessage("console", "u", "c2", "ask How does the PEER layer pick experts?")
    )
    assert essence(first) != essence(other)
    assert [e.text for e in recorder.exchanges] == [
        f"ask {QUESTION}",
        "ask How does the PEER layer pick experts?",
    ]
