"""One scenario through the console, Slack and Discord connectors, all on the shared flows.

The same person does the same things on each platform: a search, a question, a follow-up in
the question's thread, a paper card, a paper that does not exist, and help. Each connector
talks to its platform through the real library (Slack: a bolt App and a fake Web API;
Discord: a discord.py client fed raw gateway payloads and a fake REST API; console:
`ConsoleChat`), and each runs the same `ChatFlows` with its own adapter and renderer. What
the core received and answered is recorded per connector, and must be the same everywhere:
the same typed command (or follow-up text) reaches the core, the same reply comes back with
the same words, visibility and cited passages; each platform shows private replies
privately and public ones publicly, and shows the cited paper to its user.
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

from assistant.commands import Command, Search, Show, parse_command
from assistant.core import Assistant
from assistant.embedding import SentenceTransformerEmbedder
from assistant.messages import IncomingMessage, Origin, Reply
from assistant.settings import Settings
from connectors.console.chat import ConsoleChat
from connectors.flow.flows import ChatFlows
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
STEPS = ("search", "ask", "follow_up", "show", "missing", "help")


@dataclass(frozen=True)
class Exchange:
    """What one connector handed the core (a typed command, or a follow-up's text), and
    what the core answered."""

    asked: Command | str
    reply: Reply


class Recorder:
    """Wraps an Assistant's entry points; collects every exchange, in order."""

    def __init__(self, assistant: Assistant) -> None:
        self.exchanges: list[Exchange] = []
        self._changed = threading.Condition()
        run, follow_up = assistant.run, assistant.follow_up

        def recorded_run(command: Command, origin: Origin, *args: Any) -> Reply:
            return self._add(command, run(command, origin, *args))

        def recorded_follow_up(message: IncomingMessage, *args: Any) -> Reply:
            return self._add(message.text, follow_up(message, *args))

        assistant.run = recorded_run  # type: ignore[method-assign]
        assistant.follow_up = recorded_follow_up  # type: ignore[method-assign]
        self.assistant = assistant

    def _add(self, asked: Command | str, reply: Reply) -> Reply:
        with self._changed:
            self.exchanges.append(Exchange(asked, reply))
            self._changed.notify_all()
        return reply

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


Run = tuple[list[Exchange], str, list[bool]]  # exchanges, all text shown, private or not


def console_run(stack: Stack) -> Run:
    recorder = recorded(stack)
    screen = Console(file=io.StringIO(), width=200, color_system=None, record=True)
    chat = ConsoleChat(recorder.assistant, screen, user="ada", channel="lab")
    assert isinstance(chat.flows, ChatFlows)
    for line in (
        f"/paper search {SEARCH}",
        f"/paper ask {QUESTION}",
        FOLLOW_UP,
        f"/paper show {FA3}",
        f"/paper show {MISSING}",
        "/paper help",
    ):
        chat.handle_line(line)
    shown_privately = [e.reply.private for e in recorder.exchanges]  # a terminal is private
    return recorder.exchanges, screen.export_text(), shown_privately


def slack_run(stack: Stack) -> Run:
    with FakeSlackAPI() as api:
        bot = SlackBot(stack, api)
        assert isinstance(bot.connector.flows, ChatFlows)
        recorder = Recorder(bot.connector.flows._assistant)
        privately: list[bool] = []
        steps = [f"search {SEARCH}", f"ask {QUESTION}", None, f"show {FA3}", f"show {MISSING}"]
        for n, step in enumerate([*steps, "help"], start=1):
            before = len(api.calls)
            if step is None:
                root_ts = api.wait_for("chat.update")[0].params["ts"]
                bot.event(user_message(FOLLOW_UP, f"{float(root_ts) + 5:.6f}", thread_ts=root_ts))
            else:
                bot.command(step)
            recorder.wait(n)
            assert bot.connector.drain(30)
            posted = {c.method for c in api.calls[before:]}
            privately.append("chat.postEphemeral" in posted and "chat.postMessage" not in posted)
        bot.settle()
        return recorder.exchanges, all_text(api.calls), privately


async def discord_run(stack: Stack) -> Run:
    with FakeDiscordAPI() as api:
        bot = await started(DiscordBot(stack, api))
        assert isinstance(bot.connector.flows, ChatFlows)
        privately: list[bool] = []
        try:
            recorder = Recorder(bot.connector.flows._assistant)
            steps = [
                api.command("search", bot.channel, query=SEARCH),
                api.command("ask", bot.channel, question=QUESTION),
                None,
                api.command("show", bot.channel, paper=FA3),
                api.command("show", bot.channel, paper=MISSING),
                api.command("help", bot.channel),
            ]
            for step in steps:
                before = len(api.calls)
                if step is None:
                    thread = bot.thread_of(api.history(bot.channel)[-1]["id"])
                    await bot.say(
                        api.user_message(thread, f"<@{BOT_ID}> {FOLLOW_UP}", mention=True)
                    )
                else:
                    await bot.interact(step)
                sent = [c.json for c in api.calls[before:] if isinstance(c.json, dict)]
                flags = [int((j.get("data") or j).get("flags") or 0) for j in sent]
                privately.append(bool(flags) and all(f & 64 for f in flags))
        finally:
            await bot.connector.close()
        shown = json.dumps([c.json for c in api.calls if c.json], ensure_ascii=False)
        return recorder.exchanges, shown, privately


def essence(reply: Reply) -> dict[str, Any]:
    """What must not depend on the platform."""
    return {
        "kind": reply.kind,
        "mode": reply.mode,
        "visibility": reply.visibility,
        "language": reply.language,
        "text": reply.text,
        "rich": reply.rich,
        "share": reply.share,
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
    for platform, (exchanges, _, _) in runs.items():
        assert len(exchanges) == len(STEPS), (platform, [e.asked for e in exchanges])

    console = runs["console"][0]
    assert [e.asked for e in console] == [
        Search(SEARCH),
        parse_command(f"ask {QUESTION}"),
        FOLLOW_UP,
        Show(FA3),
        Show(MISSING),
        parse_command("help"),
    ]
    expected_kinds = ["search", "answer", "answer", "paper", "error", "help"]
    assert [e.reply.kind for e in console] == expected_kinds
    assert [e.reply.private for e in console] == [True, False, False, True, True, True]
    assert {c.paper_id for c in console[1].reply.citations} == {FA3}
    assert {c.paper_id for c in console[2].reply.citations} == {FA3}  # stays on the paper
    # a console line is always in a thread, which the answer continues; on Slack and
    # Discord the answer to `/paper ask` opens its own
    assert not console[1].reply.opens_thread
    assert runs["slack"][0][1].reply.opens_thread and runs["discord"][0][1].reply.opens_thread
    for platform in ("slack", "discord"):
        exchanges, _, privately = runs[platform]
        for step, mine, theirs in zip(STEPS, console, exchanges, strict=True):
            assert theirs.asked == mine.asked, (platform, step)
            assert essence(theirs.reply) == essence(mine.reply), (platform, step)
        # the platform showed each reply as the core said: privately or for everyone
        assert privately == [e.reply.private for e in console], platform

    # and every platform showed the answer's source and the error to its user
    url = console[1].reply.citations[0].url
    assert url
    for platform, (_, shown, _) in runs.items():
        assert url in shown, platform
        assert MISSING in shown, platform
        assert "FlashAttention-3" in shown, platform


def test_the_recorder_sees_a_different_answer(stack: Stack) -> None:
    """The comparison can fail: another question gives another essence."""
    recorder = recorded(stack)
    origin = Origin("console", "u", "c")
    first = recorder.assistant.run(parse_command(f"ask {QUESTION}"), origin)
    other = recorder.assistant.run(
        parse_command("ask How does the PEER layer pick experts?"), Origin("console", "u", "c2")
    )
    assert essence(first) != essence(other)
    assert [e.asked for e in recorder.exchanges] == [
        parse_command(f"ask {QUESTION}"),
        parse_command("ask How does the PEER layer pick experts?"),
    ]
