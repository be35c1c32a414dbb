"""The console connector: the same commands and threads as the chat platforms, in a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from assistant.digest.builder import DigestBuilder
from assistant.digest.cards import CardWriter
from assistant.embedding import SentenceTransformerEmbedder
from assistant.messages import IncomingMessage
from assistant.settings import Settings
from connectors.console.chat import ConsoleChat
from connectors.console.digest import ConsoleDigestChannel
from tests.conftest import ROOT
from tests.test_answering import FA3, PEER, Stack


@pytest.fixture
def stack(settings: Settings, real_embedder: SentenceTransformerEmbedder) -> Iterator[Stack]:
    s = Stack(settings, real_embedder)
    s.ingest_sample()
    yield s
    s.close()


def chat_session(stack: Stack) -> tuple[ConsoleChat, Console]:
    console = Console(record=True, width=120, color_system=None)
    return ConsoleChat(stack.assistant(), console), console


def test_paper_commands_and_follow_ups_in_the_current_thread(stack: Stack) -> None:
    session, console = chat_session(stack)
    session.run(
        iter(
            [
                "/paper search faster attention kernels on Hopper",
                "/paper show 2407.08608",
                "what precision does it add?",
            ]
        )
    )
    text = console.export_text()
    assert "FlashAttention-3" in text
    assert "Authors: unknown" in text or "Authors:" in text
    conversation = stack.conversations.get("console", "local", session.thread)
    assert conversation is not None
    assert conversation.focus == (FA3,)
    answers = [t for t in conversation.turns if t.role == "assistant"]
    assert answers and {c.paper_id for c in answers[-1].citations} == {FA3}


def test_thread_switching_keeps_conversations_apart(stack: Stack) -> None:
    session, _ = chat_session(stack)
    session.handle_line("/paper show 2407.08608")
    first = session.thread
    session.handle_line("/thread NEW")
    second = session.thread
    assert second != first
    session.handle_line("/paper show 2407.04153")
    session.handle_line("what does it make cheap?")
    session.handle_line(f"/thread {first}")
    session.handle_line("what does it make faster?")
    a = stack.conversations.get("console", "local", first)
    b = stack.conversations.get("console", "local", second)
    assert a is not None and b is not None
    assert {c.paper_id for t in a.turns for c in t.citations} == {FA3}
    assert {c.paper_id for t in b.turns for c in t.citations} == {PEER}


def test_errors_and_usage_are_shown_and_quit_stops(stack: Stack) -> None:
    session, console = chat_session(stack)
    session.run(iter(["/paper frobnicate", "/paper show", "/quit", "/paper help"]))
    text = console.export_text()
    assert "Unknown command" in text and "needs an argument" in text
    assert text.count("/paper search <query>") == 2  # usage twice, and no help after /quit


def test_digest_and_admin_commands_from_the_console(stack: Stack) -> None:
    session, console = chat_session(stack)
    session.run(iter(["/paper digest", "/paper subscribe", "/paper subscribe"]))
    text = console.export_text()
    assert "Top ML papers of the week, Jul 8 – Jul 14, 2024" in text
    assert "1. FlashAttention-3" in text or "FlashAttention-3" in text
    assert "will get the weekly digest" in text and "already gets" in text
    assert stack.conversations.subscriptions("console") == [("console", "local")]


def run_cli(
    args: list[str], data: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAPERBOT_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ask_json_and_chat_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sample = ROOT / "assistant" / "data" / "sample_potw.md"
    assert run_cli(["ingest", "potw", "--file", str(sample), "--offline"], data).returncode == 0
    asked = run_cli(
        ["ask", "What does FlashAttention-3 change on Hopper GPUs?", "--thread", "t1", "--json"],
        data,
    )
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert set(answer) >= {"answer", "mode", "language", "citations"}
    assert answer["mode"] == "extractive" and answer["language"] == "en"
    assert answer["citations"][0]["paper_id"] == FA3
    assert set(answer["citations"][0]) == {"paper_id", "title", "url", "section", "page", "quote"}
    follow = json.loads(
        run_cli(["ask", "and how fast is it?", "--thread", "t1", "--json"], data).stdout
    )
    assert {c["paper_id"] for c in follow["citations"]} == {FA3}
    scoped = json.loads(
        run_cli(["ask", "what does it make cheap?", "--paper", PEER, "--json"], data).stdout
    )
    assert {c["paper_id"] for c in scoped["citations"]} == {PEER}
    chat = run_cli(["chat"], data, stdin="/paper search million experts\n/quit\n")
    assert chat.returncode == 0, chat.stderr
    assert "Mixture of A Million Experts" in chat.stdout


def test_an_admin_posts_the_full_digest_from_chat_exactly_once(
    stack: Stack, tmp_path: Path
) -> None:
    cards = CardWriter(stack.store, stack.searcher, stack.embedder, None, qa_pairs=3)
    service = stack.digest_service(DigestBuilder(stack.store, cards, stack.settings.digest))
    console = Console(record=True, width=120, color_system=None)
    log_path = tmp_path / "posts.jsonl"
    service.register_channel("console", ConsoleDigestChannel(console, log_path))
    assistant = stack.assistant(poster=service)
    session = ConsoleChat(assistant, console)

    session.handle_line("/paper digest post 2024-07-10")
    assert session.last_reply is not None and session.last_reply.ephemeral
    assert session.last_reply.text == (
        "Posted the digest of Jul 8 – Jul 14, 2024 here: 11 messages."  # header + 10 cards
    )
    keys = [json.loads(line)["key"] for line in log_path.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 11 and keys[0].endswith("/header#0")
    session.handle_line("/paper digest post")  # the latest week: the same one
    assert "already in this channel; nothing was posted again" in session.last_reply.text
    assert len(log_path.read_text().splitlines()) == 11

    def reply(text: str, platform: str = "console", admin: bool = True) -> str:
        message = IncomingMessage(platform, "u9", "local", text, is_admin=admin)
        answer = assistant.command(message)
        assert answer.kind == "error" and answer.ephemeral
        return answer.text

    assert reply("digest post", admin=False) == "Only admins can post the digest in a channel."
    assert "needs paperbot serve --slack" in reply("digest post", platform="slack")
    assert "a date like 2024-07-08" in reply("digest post next monday")
    no_poster = stack.assistant().command(
        IncomingMessage("console", "u9", "local", "digest post", is_admin=True)
    )
    assert "needs paperbot serve" in no_poster.text
