"""The Discord connector through the real library: a real discord.py client and command
tree, logged in to a fake Discord REST API on 127.0.0.1 (no gateway), fed raw gateway
payloads through `client._connection.parse_interaction_create` / `parse_message_create`
(private API: that is why discord.py is pinned ~=2.7).

The core is the real one over the bundled sample week (real embedding model, embedded
Qdrant, SQLite); the LLM, when there is one, is the fake OpenAI server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import discord
import pytest

from assistant.core import DigestPoster
from assistant.digest.builder import DigestBuilder
from assistant.digest.cards import CardWriter
from assistant.digest.model import Digest
from assistant.digest.publisher import DigestPublisher, plan_posts
from assistant.embedding import SentenceTransformerEmbedder
from assistant.feedback import FeedbackStore
from assistant.settings import DiscordSettings, Settings
from connectors.discord.app import DiscordConnector, sync_commands
from connectors.discord.digest import DiscordDigestChannel, post_marker
from connectors.discord.render import qa_messages, validate_discord_message
from connectors.discord.replies import CONTINUED, LOOKING, WRITING
from connectors.flow.platform import Place, Posted
from connectors.flow.texts import APOLOGY, THANKS
from tests.errorlog import ErrorLog, watch_errors
from tests.fakes.discord_api import (
    BOT_ID,
    GUILD_ID,
    MANAGE_GUILD,
    TOKEN,
    ApiCall,
    FakeDiscordAPI,
)
from tests.fakes.openai_server import FakeOpenAIServer
from tests.test_answering import FA3, PEER, Stack

WEEK = date(2024, 7, 8)
CALLBACK = "POST /interactions/{interaction_id}/{token}/callback"
FOLLOWUP = "POST /webhooks/{app_id}/{token}"
ORIGINAL = "PATCH /webhooks/{app_id}/{token}/messages/{message_id}"
DELETE_ORIGINAL = "DELETE /webhooks/{app_id}/{token}/messages/{message_id}"
POST = "POST /channels/{channel_id}/messages"
THREAD = "POST /channels/{channel_id}/messages/{message_id}/threads"
USER = "2000000000000000001"


# -- the bot under test -----------------------------------------------------------------


class Bot:
    """A connector over a test stack, logged in to the fake API, with one text channel."""

    def __init__(
        self,
        stack: Stack,
        api: FakeDiscordAPI,
        llm: FakeOpenAIServer | None = None,
        workers: int = 4,
        poster: DigestPoster | None = None,
        **settings: Any,
    ) -> None:
        self.api = api
        self.stack = stack
        stack.settings.discord = DiscordSettings(
            bot_token=TOKEN, api_base_url=api.base_url, **settings
        )
        self.builder = digest_builder(stack)
        self.connector = DiscordConnector(
            stack.assistant(llm, poster),
            stack.store,
            stack.settings,
            self.builder.load,
            workers=workers,
            stream_interval=1.0,
        )
        self.client = self.connector.client
        self.channel = api.add_channel()

    async def interact(self, payload: dict[str, Any], settle: bool = True) -> float:
        """Feed an INTERACTION_CREATE; return when it was fed (time.monotonic())."""
        fed = time.monotonic()
        self.client._connection.parse_interaction_create(payload)  # type: ignore[arg-type]
        if settle:
            assert await self.connector.drain(60)
        return fed

    async def say(self, payload: dict[str, Any]) -> None:
        """Feed a MESSAGE_CREATE and wait until it is handled."""
        self.client._connection.parse_message_create(payload)  # type: ignore[arg-type]
        assert await self.connector.drain(60)

    def thread_of(self, message_id: str) -> str:
        return str(self.api.message(message_id)["thread"]["id"])


async def thread_on(bot: Bot, channel: str, message_id: str, title: str) -> str:
    """A thread started on a message, as the connector starts them."""
    return await bot.connector.flows.platform.open_thread(Posted(Place(channel), message_id), title)


def digest_builder(stack: Stack) -> DigestBuilder:
    cards = CardWriter(stack.store, stack.searcher, stack.embedder, None, qa_pairs=4)
    return DigestBuilder(stack.store, cards, stack.settings.digest)


@pytest.fixture(autouse=True)
def error_log() -> Iterator[ErrorLog]:
    yield from watch_errors()


@pytest.fixture(autouse=True)
def _route_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connector points discord.py's (process-wide) base URL at the fake: undo it."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)


@pytest.fixture(scope="module")
def shared_stack(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> Iterator[Stack]:
    """The core over the sample week, built once for the module: every test has its own
    channels (snowflakes are unique), so conversations and subscriptions do not mix."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("discord") / "data")
    settings.arxiv.download_pdfs = False
    settings.openai.timeout = 10
    settings.openai.max_retries = 0
    s = Stack(settings, real_embedder)
    s.ingest_sample()
    yield s
    s.close()


@pytest.fixture
def stack(shared_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The module's stack; the settings groups a test changes are put back afterwards."""
    settings = shared_stack.settings
    for group in ("openai", "llm", "discord"):
        monkeypatch.setattr(settings, group, getattr(settings, group).model_copy())
    return shared_stack


@pytest.fixture
def api() -> Iterator[FakeDiscordAPI]:
    with FakeDiscordAPI() as fake:
        yield fake
    # the fake refuses a body outside Discord's rules (400: 50035) and a first response
    # after 3 s (404: 10062): there was none
    refused = [(c.route, c.status, c.json) for c in fake.refused()]
    assert not refused, refused[:2]


async def started(bot: Bot) -> Bot:
    await bot.client.login(TOKEN)
    return bot


@pytest.fixture
async def bot(stack: Stack, api: FakeDiscordAPI) -> AsyncIterator[Bot]:
    b = await started(Bot(stack, api))
    yield b
    await b.connector.close()


def sent(calls: list[ApiCall]) -> str:
    """Every text the calls carried (content, embed titles, descriptions, fields, footers)."""
    return "\n".join(_texts(c.json) for c in calls)


def _texts(value: Any) -> str:
    if isinstance(value, dict):
        return "\n".join(
            v if isinstance(v, str) and k in ("content", "title", "description", "value", "text")
            else _texts(v)
            for k, v in value.items()
        )  # fmt: skip
    if isinstance(value, list):
        return "\n".join(_texts(v) for v in value)
    return ""


def valid(calls: list[ApiCall]) -> bool:
    """Every message body (without transport fields) keeps Discord's limits."""
    for call in calls:
        body = {
            k: v
            for k, v in call.json.items()
            if k not in ("nonce", "enforce_nonce", "tts", "flags")
        }
        body = {k: v for k, v in body.items() if v is not None}
        assert not validate_discord_message(body), validate_discord_message(body)
    return True


def to(token: str) -> Any:
    return lambda c: f"/{token}" in c.path


def cited(stack: Stack, channel: str, thread: str) -> set[str]:
    conversation = stack.conversations.get("discord", channel, thread)
    assert conversation is not None
    return {c.paper_id for t in conversation.turns for c in t.citations}


# -- commands: registration and autocomplete --------------------------------------------


async def test_the_command_group_has_every_verb_and_autocompletes_papers_and_weeks(
    bot: Bot,
) -> None:
    await sync_commands(bot.client.tree, [int(GUILD_ID)])
    (paper,) = bot.api.commands[GUILD_ID]
    assert paper["name"] == "paper" and paper["contexts"] == [0]  # guilds only
    assert paper["dm_permission"] is False
    verbs = {o["name"]: o for o in paper["options"]}
    assert list(verbs) == ["search", "show", "ask", "digest", "subscribe", "unsubscribe", "help"]
    assert all(o["type"] == 1 for o in verbs.values())
    options = {
        (verb, o["name"]): (o.get("required", False), o.get("autocomplete", False))
        for verb, sub in verbs.items()
        for o in sub.get("options", [])
    }
    assert options == {
        ("search", "query"): (True, False),
        ("show", "paper"): (True, True),
        ("ask", "question"): (True, False),
        ("ask", "paper"): (False, True),
        ("digest", "week"): (False, True),
        ("digest", "post"): (False, False),
    }
    await sync_commands(bot.client.tree, [])  # no DISCORD_GUILD_IDS: global
    assert [c["name"] for c in bot.api.commands[None]] == ["paper"]

    typed = bot.api.autocomplete("show", "paper", "flash", bot.channel)
    await bot.interact(typed)
    choices = bot.api.callback(typed["token"])
    assert choices is not None and choices["type"] == 8
    assert [c["value"] for c in choices["data"]["choices"]] == [FA3]
    assert "FlashAttention-3" in choices["data"]["choices"][0]["name"]
    weeks = bot.api.autocomplete("digest", "week", "", bot.channel)
    await bot.interact(weeks)
    week_choices = bot.api.callback(weeks["token"])
    assert week_choices is not None
    assert week_choices["data"]["choices"] == [
        {"name": "2024-07-08 (10 papers)", "value": "2024-07-08"}
    ]


# -- /paper search, help, errors ----------------------------------------------------------


async def test_search_is_deferred_privately_and_has_a_post_to_channel_button(bot: Bot) -> None:
    query = "faster attention kernels on Hopper GPUs"
    command = bot.api.command("search", bot.channel, query=query)
    fed = await bot.interact(command)
    (defer,) = bot.api.calls_to(CALLBACK)
    assert defer.json == {"type": 5, "data": {"flags": 64}} and defer.at - fed < 1.0
    (results,) = bot.api.calls_to(FOLLOWUP)
    assert results.json["flags"] == 64 and "FlashAttention-3" in sent([results])
    assert valid([results])
    (row,) = results.json["components"]
    (button,) = row["components"]
    assert button["custom_id"] == f"paper:share:search {query}"
    assert button["label"] == "Post to channel"
    assert bot.api.history(bot.channel) == []  # nothing public

    (private,) = bot.api.interaction_messages(command["token"])
    await bot.interact(
        bot.api.click(private["id"], button["custom_id"], user_id="2000000000000000005")
    )
    (shared,) = bot.api.history(bot.channel)
    assert shared["content"] == "Shared by <@2000000000000000005>"
    assert "FlashAttention-3" in json.dumps(shared["embeds"]) and not shared["components"]


async def test_help_and_errors_are_answered_privately(bot: Bot) -> None:
    await bot.interact(bot.api.command("help", bot.channel))
    await bot.interact(bot.api.command("show", bot.channel, paper="9999.99999"))
    followups = bot.api.calls_to(FOLLOWUP)
    assert [c.json["flags"] for c in followups] == [64, 64]
    assert "`/paper search <query>`" in sent(followups[:1])
    assert "**/paper commands**" in sent(followups[:1])
    assert "No paper '9999.99999' is in the index" in sent(followups[1:])
    # an error after a public defer: the "thinking…" message goes, the error is private
    await bot.interact(bot.api.command("ask", bot.channel, question="why " * 600))
    assert bot.api.calls_to(CALLBACK)[-1].json == {"type": 5}
    assert len(bot.api.calls_to(DELETE_ORIGINAL, ok_only=True)) == 1
    refused = bot.api.calls_to(FOLLOWUP)[-1]
    assert refused.json["flags"] == 64 and "limit" in sent([refused])
    assert bot.api.history(bot.channel) == [] and valid(bot.api.calls_to(FOLLOWUP))


async def test_a_failure_is_logged_once_and_the_user_gets_a_private_apology(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, error_log: ErrorLog
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("index exploded")

    monkeypatch.setattr(bot.connector.flows._assistant, "run", broken)
    await bot.interact(bot.api.command("digest", bot.channel))  # a public command
    assert len(bot.api.calls_to(DELETE_ORIGINAL, ok_only=True)) == 1
    (apology,) = bot.api.calls_to(FOLLOWUP)
    assert apology.json["flags"] == 64 and apology.json["content"] == APOLOGY.plain
    assert bot.api.history(bot.channel) == []
    error_log.expected = 1
    assert error_log.records[0].exc_info is not None


# -- /paper ask, threads and follow-ups -----------------------------------------------------


async def test_ask_answers_publicly_opens_a_thread_and_follow_ups_stay_on_the_paper(
    bot: Bot,
) -> None:
    question = "What does FlashAttention-3 change on Hopper GPUs?"
    command = bot.api.command("ask", bot.channel, question=question)
    fed = await bot.interact(command)
    (defer,) = bot.api.calls_to(CALLBACK)
    assert defer.json == {"type": 5} and defer.at - fed < 1.0
    (answer,) = bot.api.history(bot.channel)
    assert answer["content"] == f"<@{USER}> asked: {question}"
    assert f"arxiv.org/abs/{FA3}" in json.dumps(answer["embeds"]) and valid(
        bot.api.calls_to(ORIGINAL)
    )
    (opened,) = bot.api.calls_to(THREAD)
    assert opened.path.endswith(f"/messages/{answer['id']}/threads")
    assert opened.json["name"] == question
    thread = bot.thread_of(answer["id"])
    assert cited(bot.stack, bot.channel, thread) == {FA3}

    # without the message-content intent, a follow-up must mention the bot
    await bot.say(bot.api.user_message(thread, "and how fast is it?"))
    assert bot.api.history(thread) == [bot.api.history(thread)[0]]  # only the question
    await bot.say(bot.api.user_message(thread, f"<@{BOT_ID}> and how fast is it?", mention=True))
    replies = [m for m in bot.api.history(thread) if m["author"]["id"] == BOT_ID]
    assert len(replies) == 1 and f"arxiv.org/abs/{FA3}" in json.dumps(replies[0])
    assert bot.api.calls_to("POST /channels/{channel_id}/typing")[0].path.endswith(
        f"/{thread}/typing"
    )
    conversation = bot.stack.conversations.get("discord", bot.channel, thread)
    assert conversation is not None and len(conversation.turns) == 4
    assert conversation.turns[2].text == "and how fast is it?"
    assert cited(bot.stack, bot.channel, thread) == {FA3}


async def test_answers_carry_feedback_buttons_and_the_last_vote_of_each_user_counts(
    bot: Bot,
) -> None:
    await bot.interact(bot.api.command("ask", bot.channel, question="What is FlashAttention-3?"))
    (answer,) = bot.api.history(bot.channel)
    buttons = [b["custom_id"] for row in answer["components"] for b in row["components"]]
    assert buttons == ["paper:vote:helpful", "paper:vote:unhelpful"]
    for user, vote in (("3", "helpful"), ("3", "unhelpful"), ("4", "helpful")):
        await bot.interact(bot.api.click(answer["id"], f"paper:vote:{vote}", user_id=user * 19))
    clicks = bot.api.calls_to(CALLBACK)[-3:]
    assert all(c.json == {"type": 6} for c in clicks)  # acknowledged silently at once
    thanks = bot.api.calls_to(FOLLOWUP)[-3:]
    assert all(c.json["flags"] == 64 and c.json["content"] == THANKS.plain for c in thanks)
    assert FeedbackStore(bot.stack.store).votes("discord", bot.channel, answer["id"]) == {
        "3" * 19: "unhelpful",
        "4" * 19: "helpful",
    }


async def test_with_the_content_intent_thread_replies_need_no_mention_and_bots_are_ignored(
    stack: Stack, api: FakeDiscordAPI
) -> None:
    bot = await started(Bot(stack, api, message_content=True))
    try:
        root = api.user_message(bot.channel, "a message to hang threads on")
        await bot.say(root)  # not a thread, no mention: ignored
        ours = await thread_on(bot, bot.channel, root["id"], "ours")
        assert ours is not None
        stack.conversations.open("discord", bot.channel, ours)
        other = api.user_message(bot.channel, "a stranger's thread root")
        strangers = await thread_on(bot, bot.channel, other["id"], "theirs")
        assert strangers is not None
        own = api.user_message(ours, "What is FlashAttention-3?", user_id=BOT_ID)
        own["author"]["bot"] = True
        other_bot = api.user_message(
            ours, "What is FlashAttention-3?", user_id="3000000000000000001"
        )
        other_bot["author"]["bot"] = True
        webhook = api.user_message(ours, "What is FlashAttention-3?") | {"webhook_id": "4"}
        for ignored in (own, other_bot, webhook, api.user_message(strangers, "What is it?")):
            await bot.say(ignored)
        assert api.calls_to(POST) == []
        await bot.say(api.user_message(ours, "What does FlashAttention-3 change?"))
        (answer,) = api.calls_to(POST)
        assert answer.path == f"/api/v10/channels/{ours}/messages"
        assert cited(stack, bot.channel, ours) == {FA3}
    finally:
        await bot.connector.close()


async def test_a_mention_outside_a_thread_is_answered_in_a_thread_on_it(bot: Bot) -> None:
    question = "how does the million-experts layer pick experts?"
    asked = bot.api.user_message(bot.channel, f"<@{BOT_ID}> {question}", mention=True)
    await bot.say(asked)
    thread = bot.thread_of(asked["id"])
    (answer,) = bot.api.history(thread)
    assert answer["author"]["id"] == BOT_ID
    conversation = bot.stack.conversations.get("discord", bot.channel, thread)
    assert conversation is not None and conversation.turns[0].text == question
    assert cited(bot.stack, bot.channel, thread) == {PEER}
    await bot.say(asked)  # delivered again (a gateway replay): answered once
    assert len(bot.api.history(thread)) == 1


# -- digests: a thread per card ---------------------------------------------------------


@pytest.fixture(scope="module")
def built_digest(shared_stack: Stack) -> Digest:
    """The sample week's digest, built (and stored) once."""
    built, _ = digest_builder(shared_stack).build_week(WEEK, "potw", "en")
    return built


@pytest.fixture
def digest(bot: Bot, built_digest: Digest) -> Digest:
    return built_digest


def card_root(api: FakeDiscordAPI, channel: str, paper_id: str) -> dict[str, Any]:
    return next(
        m
        for m in api.history(channel)
        if m["embeds"] and m["embeds"][0].get("footer", {}).get("text", "").startswith(paper_id)
    )


async def test_a_digest_is_posted_with_a_thread_per_card_answered_about_its_paper(
    bot: Bot, digest: Digest
) -> None:
    channel = DiscordDigestChannel(bot.client, post_interval=0)
    publisher = DigestPublisher(bot.stack.store, bot.stack.conversations)
    report = await publisher.publish(digest, channel, bot.channel)
    posts = bot.api.calls_to(POST)
    assert report.posted == len(posts) and valid(posts)
    assert all(p.json["enforce_nonce"] and len(p.json["nonce"]) <= 25 for p in posts)
    roots = bot.api.history(bot.channel)
    assert len(roots) == 1 + len(digest.cards)  # the header, then one root per card
    assert len(bot.api.calls_to(THREAD)) == len(roots)  # each with its own thread
    assert all(m.get("thread") for m in roots)
    continued = [p for p in posts if not p.path.endswith(f"/{bot.channel}/messages")]
    assert continued and all(p.path.split("/")[-2] in {m["id"] for m in roots} for p in continued)
    fa3 = card_root(bot.api, bot.channel, FA3)
    ids = [b["custom_id"] for b in fa3["components"][0]["components"] if "custom_id" in b]
    assert ids == [f"paper:ask:{FA3}", f"paper:qa:2024-07-08:{FA3}"]

    peer_thread = bot.thread_of(card_root(bot.api, bot.channel, PEER)["id"])
    await bot.say(
        bot.api.user_message(peer_thread, f"<@{BOT_ID}> what does it make cheap?", mention=True)
    )
    answer = bot.api.history(peer_thread)[-1]
    assert answer["author"]["id"] == BOT_ID and "2407.04153" in json.dumps(answer["embeds"])
    assert cited(bot.stack, bot.channel, peer_thread) == {PEER}

    # crash recovery: every post is found again from its marker, continuations included
    keys = [post.key for post in plan_posts(digest, channel)]
    continuation = next(k for k in keys if not k.endswith("#0"))
    for key in (keys[0], keys[-1], continuation):
        ref = await channel.find(bot.channel, key)
        recorded = publisher.posted("discord", bot.channel, digest)[key]
        assert ref == recorded
    assert await channel.find(bot.channel, "2024-07-08/en/card:nope#0") is None


async def test_a_card_whose_pdf_url_is_too_long_for_a_button_is_posted_with_the_rest(
    bot: Bot, digest: Digest
) -> None:
    """Discord refuses a link button URL over 512 characters (the whole message: 400);
    the PDF link then stays in the card's fields and every card is posted."""
    long_pdf = "https://proceedings.example.org/papers/" + "x" * 540 + ".pdf"
    assert len(long_pdf) > 512
    cards = [replace(c, pdf_url=long_pdf) if c.rank == 2 else c for c in digest.cards]
    with_long_pdf = replace(digest, cards=tuple(cards))
    channel = DiscordDigestChannel(bot.client, post_interval=0)
    report = await DigestPublisher(bot.stack.store, bot.stack.conversations).publish(
        with_long_pdf, channel, bot.channel
    )
    roots = bot.api.history(bot.channel)
    assert len(roots) == 1 + len(digest.cards) and report.posted == len(bot.api.calls_to(POST))
    second = next(m for m in roots if m["embeds"][0].get("title", "").startswith("2\\."))
    buttons = [b for r in second["components"] for b in r["components"]]
    assert all(b.get("url") != long_pdf for b in buttons)
    assert long_pdf in json.dumps(second["embeds"])  # still one click away, in the card


async def test_an_admin_posts_the_weeks_digest_here_with_digest_post(
    stack: Stack, api: FakeDiscordAPI, built_digest: Digest
) -> None:
    service = stack.digest_service(digest_builder(stack))
    bot = Bot(stack, api, poster=service)
    await started(bot)
    channel = DiscordDigestChannel(bot.client, asyncio.get_running_loop(), post_interval=0)
    service.register_channel("discord", channel)
    try:
        await bot.interact(api.command("digest", bot.channel, post=True))  # a member
        assert "Only admins" in sent(api.calls_to(FOLLOWUP)) and api.history(bot.channel) == []
        await bot.interact(api.command("digest", bot.channel, permissions=MANAGE_GUILD, post=True))
        assert [c.json for c in api.calls_to(CALLBACK)] == [{"type": 5, "data": {"flags": 64}}] * 2
        done = api.calls_to(FOLLOWUP)[-1]
        assert done.json["flags"] == 64 and "Posted the digest of Jul 8" in sent([done])
        roots = api.history(bot.channel)
        assert len(roots) == 1 + len(built_digest.cards) and all(m.get("thread") for m in roots)
        # asked again: nothing is posted twice
        await bot.interact(api.command("digest", bot.channel, permissions=MANAGE_GUILD, post=True))
        assert "already in this channel" in sent(api.calls_to(FOLLOWUP)[-1:])
        assert len(api.history(bot.channel)) == len(roots)
    finally:
        await bot.connector.close()


async def test_a_crash_between_a_post_and_its_thread_is_recovered_without_a_second_post(
    bot: Bot, digest: Digest
) -> None:
    channel = DiscordDigestChannel(bot.client, post_interval=0)
    bot.api.fail_next(THREAD, status=403)  # the header posts, its thread fails: a "crash"
    with pytest.raises(discord.Forbidden):
        await DigestPublisher(bot.stack.store, bot.stack.conversations).publish(
            digest, channel, bot.channel
        )
    (header,) = bot.api.history(bot.channel)
    assert not header.get("thread")
    later = DigestPublisher(bot.stack.store, bot.stack.conversations, claim_seconds=0.0)
    report = await later.publish(digest, channel, bot.channel)
    assert report.recovered == 1  # found by its marker, and given its thread now
    roots = bot.api.history(bot.channel)
    assert roots[0]["id"] == header["id"] and len(roots) == 1 + len(digest.cards)
    assert all(m.get("thread") for m in roots)
    header_thread = bot.thread_of(header["id"])
    conversation = bot.stack.conversations.get("discord", bot.channel, header_thread)
    assert conversation is not None and len(conversation.scope.paper_ids) == len(digest.cards)

    # a create retried within Discord's nonce window returns the message already there
    payload = channel.render_header(digest)[0]
    key = "2024-07-08/en/header#0"
    threads = len(bot.api.calls_to(THREAD))
    again = await channel.post(bot.channel, payload, key, None)
    assert again.message_id == again.thread == header["id"]
    assert len(bot.api.history(bot.channel)) == 1 + len(digest.cards)
    assert len(bot.api.calls_to(THREAD)) == threads  # the message said it has one
    # a thread started twice on a message (160004) is the one it has
    assert await channel._ensure_thread(bot.channel, {"id": header["id"]}, "x") == header["id"]
    assert bot.api.calls_to(THREAD)[-1].status == 400
    assert post_marker(bot.channel, key) in json.dumps(bot.api.message(header["id"]))


async def test_card_buttons_all_qa_once_and_ask_through_a_form(bot: Bot, digest: Digest) -> None:
    channel = DiscordDigestChannel(bot.client, post_interval=0)
    await DigestPublisher(bot.stack.store, bot.stack.conversations).publish(
        digest, channel, bot.channel
    )
    card = card_root(bot.api, bot.channel, FA3)
    thread = bot.thread_of(card["id"])
    before = len(bot.api.history(thread))
    await bot.interact(bot.api.click(card["id"], f"paper:qa:2024-07-08:{FA3}"))
    fa3 = next(c for c in digest.cards if c.paper_id == FA3)
    added = bot.api.history(thread)[before:]
    assert len(added) == len(qa_messages(digest, fa3))
    assert all(f"Q{n}. " in json.dumps(added) for n in range(1, len(fa3.qa) + 1)) and fa3.qa
    await bot.interact(
        bot.api.click(card["id"], f"paper:qa:2024-07-08:{FA3}", "2000000000000000007")
    )
    assert len(bot.api.history(thread)) == before + len(added)
    assert "already in this card's thread" in sent(bot.api.calls_to(FOLLOWUP)[-1:])

    click = bot.api.click(card["id"], f"paper:ask:{FA3}", user_id="2000000000000000005")
    await bot.interact(click)
    form = bot.api.callback(click["token"])
    assert form is not None and form["type"] == 9
    assert "FlashAttention-3" in json.dumps(form["data"])
    (label,) = form["data"]["components"]
    text_input = label["component"]["custom_id"]
    question = "what precision modes does it add?"
    await bot.interact(
        bot.api.submit(click["token"], {text_input: question}, card["id"], "2000000000000000005")
    )
    answer = bot.api.history(thread)[-1]
    assert answer["content"] == f"<@2000000000000000005> asked: {question}"
    assert cited(bot.stack, bot.channel, thread) == {FA3}
    assert bot.api.calls_to(CALLBACK)[-1].json == {"type": 6}  # the form closes at once


# -- limits, streaming, pacing -------------------------------------------------------------


def long_reply(body: dict[str, Any]) -> str:
    sentence = "FlashAttention-3 overlaps the data movement with the matrix multiplies [1]."
    return " ".join(f"({n}) {sentence}" for n in range(1, 160))


async def test_an_oversized_answer_is_split_across_the_answer_and_its_thread(
    stack: Stack, api: FakeDiscordAPI
) -> None:
    stack.settings.llm.max_tokens = 5000
    with FakeOpenAIServer(reply=long_reply) as llm:
        bot = await started(Bot(stack, api, llm=llm))
        try:
            await bot.interact(
                bot.api.command("ask", bot.channel, question="How does FlashAttention-3 overlap?")
            )
        finally:
            await bot.connector.close()
    (answer,) = api.history(bot.channel)
    thread = bot.thread_of(answer["id"])
    rest = api.history(thread)
    assert rest and all(m["content"] == CONTINUED for m in rest)
    assert valid(api.calls_to(ORIGINAL) + api.calls_to(POST))
    shown = "".join(e.get("description", "") for m in [answer, *rest] for e in m["embeds"])
    numbers = [int(n) for n in re.findall(r"\((\d+)\) FlashAttention", shown)]
    assert numbers == list(range(1, 160))  # every sentence, once, in order
    assert "Sources" in json.dumps(rest[-1])


async def test_acks_stay_fast_while_the_model_streams_an_answer_edited_at_most_once_a_second(
    stack: Stack, api: FakeDiscordAPI
) -> None:
    def slow(body: dict[str, Any]) -> str:
        return " ".join(["FlashAttention-3 overlaps copies with the matrix multiplies [1]."] * 4)

    with FakeOpenAIServer(reply=slow, stream_chunk_delay=0.1) as llm:
        bot = await started(Bot(stack, api, llm=llm, workers=1))  # one worker: search queues
        try:
            ask = bot.api.command("ask", bot.channel, question="What does FlashAttention-3 change?")
            await bot.interact(ask, settle=False)
            deadline = time.monotonic() + 20
            while not llm.chat_requests and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            search = bot.api.command("search", bot.channel, "2000000000000000009", query="experts")
            fed = await bot.interact(search, settle=False)
            await bot.connector.drain(60)
        finally:
            await bot.connector.close()
    defer = next(c for c in api.calls_to(CALLBACK) if to(search["token"])(c))
    assert defer.at - fed < 1.0  # deferred at once, while the worker was busy
    edits = [c for c in api.calls_to(ORIGINAL) if to(ask["token"])(c)]
    streaming = [e for e in edits if WRITING in sent([e])]
    assert LOOKING in sent(edits[:1])  # the placeholder: who asked what
    assert len(streaming) >= 2 and len(edits) == len(streaming) + 2
    assert all(b.at - a.at >= 0.9 for a, b in itertools.pairwise(streaming))
    assert WRITING not in sent(edits[-1:]) and "[1]" in sent(edits[-1:])
    results = next(c for c in api.calls_to(FOLLOWUP) if to(search["token"])(c))
    assert results.at > edits[-1].at  # the search waited for the worker, not for its ack


async def test_every_interaction_is_answered_within_3_s_while_slow_answers_fill_the_workers(
    stack: Stack, api: FakeDiscordAPI, built_digest: Digest
) -> None:
    """Six slow LLM answers (6 s each) fill the four workers; meanwhile a vote, the ask
    button (a modal), an autocomplete, All Q&A, and slash commands each get their first
    response within Discord's 3 s (after that Discord answers 10062 and the user sees
    "This interaction failed")."""
    with FakeOpenAIServer() as llm:
        bot = await started(Bot(stack, api, llm=llm, workers=4))
        try:
            digest_channel = DiscordDigestChannel(bot.client, post_interval=0)
            await DigestPublisher(bot.stack.store, bot.stack.conversations).publish(
                built_digest, digest_channel, bot.channel
            )
            await bot.interact(
                api.command("ask", bot.channel, question="What is FlashAttention-3?")
            )
            answer = next(m for m in api.history(bot.channel) if m["content"].endswith("3?"))
            card = card_root(api, bot.channel, FA3)
            llm.delay_next(6, 6.0)
            for n in range(6):
                question = f"How does FlashAttention-3 use FP8 on Hopper GPUs ({n})?"
                user = f"30000000000000000{n:02d}"
                slow = api.command("ask", bot.channel, user, question=question)
                await bot.interact(slow, settle=False)
            deadline = time.monotonic() + 20
            while len(llm.chat_requests) < 1 + 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert len(llm.chat_requests) >= 5, "the workers never got busy"
            quick = {
                "vote": api.click(answer["id"], "paper:vote:helpful"),
                "modal": api.click(card["id"], f"paper:ask:{FA3}"),
                "autocomplete": api.autocomplete("show", "paper", "flash", bot.channel),
                "all_qa": api.click(card["id"], f"paper:qa:2024-07-08:{FA3}"),
                "search": api.command("search", bot.channel, query="experts"),
                "help": api.command("help", bot.channel),
            }
            fed = {name: await bot.interact(p, settle=False) for name, p in quick.items()}
            await asyncio.sleep(3.5)  # every first response is due by now
            first = {
                name: next((c for c in api.calls_to(CALLBACK) if to(p["token"])(c)), None)
                for name, p in quick.items()
            }
            assert await bot.connector.drain(90)
        finally:
            await bot.connector.close()
    late = {
        n: c and round(c.at - fed[n], 2) for n, c in first.items() if not c or c.at - fed[n] > 3
    }
    assert not late, late
    assert all(c is not None and c.status < 300 for c in first.values())


async def test_a_429_is_retried_after_retry_after_and_the_reply_still_arrives(bot: Bot) -> None:
    bot.api.fail_next(FOLLOWUP, status=429, retry_after=0.4)
    await bot.interact(bot.api.command("help", bot.channel))
    calls = bot.api.calls_to(FOLLOWUP)
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].at - calls[0].at >= 0.4 and "/paper search" in sent(calls[1:])


# -- channels and admins -------------------------------------------------------------------


async def test_the_channel_allowlist_counts_a_thread_as_its_parent(
    stack: Stack, api: FakeDiscordAPI
) -> None:
    allowed = api.add_channel(name="allowed")
    bot = await started(Bot(stack, api, allowed_channels=f"{allowed}, 42"))
    try:
        await bot.interact(api.command("search", bot.channel, query="flash attention"))
        (refused,) = api.calls_to(CALLBACK)
        assert refused.json["type"] == 4 and refused.json["data"]["flags"] == 64
        assert "DISCORD_ALLOWED_CHANNELS" in refused.json["data"]["content"]
        mention = api.user_message(bot.channel, f"<@{BOT_ID}> hi there", mention=True)
        await bot.say(mention)
        assert "not enabled in this channel" in api.history(bot.channel)[-1]["content"]
        root = api.user_message(allowed, "root")
        thread = await thread_on(bot, allowed, root["id"], "a thread")
        assert thread is not None
        await bot.interact(api.command("search", thread, query="flash attention"))
        assert "FlashAttention-3" in sent(api.calls_to(FOLLOWUP))
    finally:
        await bot.connector.close()


async def test_subscribe_needs_manage_server_or_the_admin_list(
    stack: Stack, api: FakeDiscordAPI
) -> None:
    bot = await started(Bot(stack, api, admin_users="2000000000000000042"))
    try:
        await bot.interact(api.command("subscribe", bot.channel))
        assert "Only admins" in sent(api.calls_to(FOLLOWUP)) and api.history(bot.channel) == []
        assert stack.conversations.subscriptions("discord") == []
        await bot.interact(api.command("subscribe", bot.channel, permissions=MANAGE_GUILD))
        assert "will get the weekly digest" in api.history(bot.channel)[-1]["content"]
        assert stack.conversations.subscriptions("discord") == [("discord", bot.channel)]
        other = api.add_channel(name="other")
        await bot.interact(api.command("unsubscribe", bot.channel, "2000000000000000042"))
        await bot.interact(api.command("subscribe", other, "2000000000000000042"))
        assert stack.conversations.subscriptions("discord") == [("discord", other)]
    finally:
        await bot.connector.close()


async def test_digest_lists_the_week_publicly(bot: Bot) -> None:
    await bot.interact(bot.api.command("digest", bot.channel, week="2024-07-10"))
    (listed,) = bot.api.history(bot.channel)
    assert "Top ML papers of the week, Jul 8 – Jul 14, 2024" in json.dumps(
        listed["embeds"], ensure_ascii=False
    )
    assert valid(bot.api.calls_to(ORIGINAL))
