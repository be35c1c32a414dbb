"""The Slack connector through the real library, in bolt's own style: a real `App`, a fake
Slack Web API on 127.0.0.1, and signed requests through `app.dispatch`.

The core is the real one over the bundled sample week (real embedding model, embedded
Qdrant, SQLite); the LLM, when there is one, is the fake OpenAI server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_bolt import BoltRequest, BoltResponse
from slack_sdk.errors import SlackApiError

from assistant.core import DigestPoster
from assistant.digest.builder import DigestBuilder
from assistant.digest.cards import CardWriter
from assistant.digest.model import Digest
from assistant.digest.publisher import DigestPublisher
from assistant.digest.service import DigestService
from assistant.embedding import SentenceTransformerEmbedder
from assistant.feedback import FeedbackStore
from assistant.messages import Reply
from assistant.settings import Settings, SlackSettings
from connectors.flow.live import LiveAnswer
from connectors.flow.platform import Place
from connectors.flow.texts import APOLOGY
from connectors.slack import translate as tr
from connectors.slack.adapter import SlackPlatform
from connectors.slack.app import SlackConnector, build_web_client
from connectors.slack.digest import SlackDigestChannel
from connectors.slack.render import qa_messages, validate_slack_message
from connectors.slack.replies import SlackRenderer
from tests.errorlog import ErrorLog, watch_errors
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.slack_api import BOT_ID, BOT_USER_ID, TEAM_ID, ApiCall, FakeSlackAPI, texts
from tests.test_answering import FA3, PEER, Stack

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"
WEEK = date(2024, 7, 8)


# -- signed requests -----------------------------------------------------------------------


def signed(
    body: str, content_type: str, secret: str = SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """Headers as Slack sends them: `v0=` HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": ts,
        "x-slack-signature": f"v0={digest}",
    }


def command_body(
    text: str, user: str, channel: str, response_url: str, trigger_id: str = "1.2.3"
) -> str:
    return urlencode(
        {
            "token": "legacy",
            "team_id": TEAM_ID,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "papers",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/paper",
            "text": text,
            "api_app_id": "A1",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
    )


def event_body(event: dict[str, Any], event_id: str) -> str:
    return json.dumps(
        {
            "token": "legacy",
            "team_id": TEAM_ID,
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
        }
    )


def interaction_body(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def user_message(
    text: str, ts: str, thread_ts: str | None = None, user: str = "U2", channel: str = "C1"
) -> dict[str, Any]:
    event = {"type": "message", "user": user, "text": text, "ts": ts, "channel": channel}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


# -- the app under test ----------------------------------------------------------------------


class Bot:
    """A connector and its bolt App over a test stack, talking to the fake Web API."""

    def __init__(
        self,
        stack: Stack,
        api: FakeSlackAPI,
        llm: FakeOpenAIServer | None = None,
        workers: int = 4,
        poster: DigestPoster | None = None,
        **slack: Any,
    ) -> None:
        self.api = api
        self.stack = stack
        stack.settings.slack = SlackSettings(
            bot_token=TOKEN, signing_secret=SECRET, api_base_url=api.base_url, **slack
        )
        self.builder = digest_builder(stack)
        self.connector = SlackConnector(
            stack.assistant(llm, poster),
            stack.store,
            stack.settings,
            self.builder.load,
            workers=workers,
            stream_interval=1.0,
        )
        self.app = self.connector.build_app()
        self._events = 0

    def dispatch(
        self, body: str, headers: dict[str, str], kind: str = "request"
    ) -> tuple[BoltResponse, float]:
        """Slack sends the app a request: the response, and how long the ack took."""
        started = time.perf_counter()
        response = self.api.deliver(
            kind, lambda: self.app.dispatch(BoltRequest(body=body, headers=headers))
        )
        return response, time.perf_counter() - started

    def command(
        self, text: str, user: str = "U1", channel: str = "C1"
    ) -> tuple[BoltResponse, float]:
        body = command_body(text, user, channel, self.api.response_url(), self.api.trigger_id())
        return self.dispatch(body, signed(body, "application/x-www-form-urlencoded"), "command")

    def event(
        self, event: dict[str, Any], event_id: str | None = None, retry: int | None = None
    ) -> BoltResponse:
        self._events += 1
        body = event_body(event, event_id or f"Ev{self._events:04d}")
        headers = signed(body, "application/json")
        if retry is not None:
            headers |= {"x-slack-retry-num": str(retry), "x-slack-retry-reason": "http_timeout"}
        if not self.api.delivers(event):
            return BoltResponse(status=0, body="not delivered: the bot is not in the channel")
        return self.dispatch(body, headers, "event")[0]

    def click(
        self,
        action_id: str,
        value: str,
        message_ts: str,
        user: str = "U1",
        channel: str = "C1",
        thread_ts: str | None = None,
    ) -> BoltResponse:
        message = {"type": "message", "ts": message_ts, "user": BOT_USER_ID, "bot_id": BOT_ID}
        if thread_ts:
            message["thread_ts"] = thread_ts
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID},
            "user": {"id": user},
            "api_app_id": "A1",
            "token": "legacy",
            "trigger_id": self.api.trigger_id(),
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "channel": {"id": channel},
            "message": message,
            "response_url": self.api.response_url("action"),
            "actions": [
                {"action_id": action_id, "block_id": "b1", "type": "button", "value": value}
            ],
        }
        body = interaction_body(payload)
        return self.dispatch(body, signed(body, "application/x-www-form-urlencoded"), "action")[0]

    def submit_modal(self, view: dict[str, Any], question: str, user: str = "U1") -> BoltResponse:
        submitted = dict(view)
        submitted["state"] = {
            "values": {tr.QUESTION_BLOCK: {tr.QUESTION_INPUT: {"value": question}}}
        }
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": {"id": user},
            "api_app_id": "A1",
            "token": "legacy",
            "view": submitted,
        }
        body = interaction_body(payload)
        return self.dispatch(body, signed(body, "application/x-www-form-urlencoded"), "view")[0]

    def settle(self) -> None:
        """Wait for every queued job (the connector can't be used afterwards)."""
        self.connector.close()


def digest_builder(stack: Stack) -> DigestBuilder:
    cards = CardWriter(stack.store, stack.searcher, stack.embedder, None, qa_pairs=4)
    return DigestBuilder(stack.store, cards, stack.settings.digest)


@pytest.fixture(autouse=True)
def error_log() -> Iterator[ErrorLog]:
    yield from watch_errors()


@pytest.fixture
def stack(settings: Settings, real_embedder: SentenceTransformerEmbedder) -> Iterator[Stack]:
    settings.openai.timeout = 10
    settings.openai.max_retries = 0
    s = Stack(settings, real_embedder)
    s.ingest_sample()
    yield s
    s.close()


@pytest.fixture
def api() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI(bot_token=TOKEN, admins={"UADMIN"}) as fake:
        yield fake
    # the fake refuses what Slack refuses, and times every acknowledgement: none of that
    assert not fake.invalid_requests(), fake.invalid_requests()[:2]
    assert not fake.late_acks, fake.late_acks


@pytest.fixture
def bot(stack: Stack, api: FakeSlackAPI) -> Iterator[Bot]:
    b = Bot(stack, api)
    yield b
    b.settle()


def to(channel: str, user: str | None = None) -> Any:
    return lambda c: (
        c.params.get("channel") == channel and (user is None or c.params.get("user") == user)
    )


def all_text(calls: list[ApiCall]) -> str:
    return "\n".join(texts(calls))


def cited_papers(store_conv: Any) -> set[str]:
    return {c.paper_id for t in store_conv.turns for c in t.citations}


# -- /paper search ---------------------------------------------------------------------------


def test_search_is_acked_at_once_and_answered_privately_with_a_share_button(bot: Bot) -> None:
    response, took = bot.command("search faster attention kernels on Hopper GPUs")
    assert response.status == 200 and took < 1.0
    call = bot.api.wait_for("chat.postEphemeral")[0]
    assert call.params["channel"] == "C1" and call.params["user"] == "U1"
    assert call.token == TOKEN
    assert "FlashAttention-3" in all_text([call])
    assert not validate_slack_message(call.params)
    buttons = [e for b in call.params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == [tr.SHARE_ACTION]
    assert buttons[0]["value"] == "search faster attention kernels on Hopper GPUs"
    assert not bot.api.calls_to("chat.postMessage")  # nothing public yet

    bot.click(tr.SHARE_ACTION, buttons[0]["value"], call.params.get("ts", "1.1"))
    shared = bot.api.wait_for("chat.postMessage", where=to("C1"))[0]
    assert "Shared by <@U1>" in all_text([shared]) and "FlashAttention-3" in all_text([shared])


def test_help_and_usage_errors_are_private(bot: Bot) -> None:
    bot.command("help")
    bot.command("frobnicate the papers")
    calls = bot.api.wait_for("chat.postEphemeral", count=2)
    text = all_text(calls)
    assert "/paper search" in text and "Unknown command" in text
    assert not bot.api.calls_to("chat.postMessage")


def test_show_answers_privately_with_the_card(bot: Bot) -> None:
    bot.command(f"show {FA3}")
    call = bot.api.wait_for("chat.postEphemeral")[0]
    blocks = call.params["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "FlashAttention-3", "emoji": True},
    }
    assert "*Authors*" in all_text([call]) and not validate_slack_message(call.params)


# -- /paper ask and threads ------------------------------------------------------------------


def test_ask_answers_in_channel_as_a_thread_root_and_a_reply_stays_on_the_paper(
    bot: Bot,
) -> None:
    question = "What does FlashAttention-3 change on Hopper GPUs?"
    response, took = bot.command(f"ask {question}")
    assert response.status == 200 and took < 1.0
    root = bot.api.wait_for("chat.postMessage")[0]
    assert "thread_ts" not in root.params and "Looking into: What does" in root.params["text"]
    updated = bot.api.wait_for("chat.update")[0]
    root_ts = updated.params["ts"]
    answer = bot.api.message("C1", root_ts)
    assert "<@U1> asked: What does FlashAttention-3" in all_text([updated])
    assert f"arxiv.org/abs/{FA3}" in all_text([updated])
    assert not validate_slack_message(updated.params)
    actions = [b for b in answer["blocks"] if b["type"] == "actions"]
    ids = [e["action_id"] for e in actions[-1]["elements"]]
    assert ids == [tr.HELPFUL_ACTION, tr.UNHELPFUL_ACTION]

    reply_ts = f"{float(root_ts) + 5:.6f}"
    bot.event(user_message("and how fast is it?", reply_ts, thread_ts=root_ts))
    in_thread = bot.api.wait_for("chat.postMessage", where=lambda c: "thread_ts" in c.params)
    assert in_thread[0].params["thread_ts"] == root_ts
    assert bot.api.wait_for("reactions.remove")[0].params["timestamp"] == reply_ts
    added = bot.api.calls_to("reactions.add")
    assert [(c.params["name"], c.params["timestamp"]) for c in added] == [("eyes", reply_ts)]
    assert added[0].at < in_thread[0].at
    conversation = bot.stack.conversations.get("slack", "C1", root_ts)
    assert conversation is not None and len(conversation.turns) == 4
    assert cited_papers(conversation) == {FA3}

    bot.click(tr.HELPFUL_ACTION, "helpful", root_ts, user="U3")
    bot.click(tr.UNHELPFUL_ACTION, "unhelpful", root_ts, user="U3")  # a change of mind
    bot.click(tr.HELPFUL_ACTION, "helpful", root_ts, user="U4")
    bot.api.wait_for("chat.postEphemeral", count=3)
    assert FeedbackStore(bot.stack.store).votes("slack", "C1", root_ts) == {
        "U3": "unhelpful",
        "U4": "helpful",
    }


def test_a_mention_outside_a_thread_is_answered_in_a_thread_rooted_at_it(bot: Bot) -> None:
    ts = "1720000000.000100"
    bot.event(
        {
            "type": "app_mention",
            "user": "U2",
            "channel": "C1",
            "ts": ts,
            "text": f"<@{BOT_USER_ID}> how does the million-experts layer pick experts?",
        }
    )
    posted = bot.api.wait_for("chat.postMessage")[0]
    assert posted.params["thread_ts"] == ts
    conversation = bot.stack.conversations.get("slack", "C1", ts)
    assert conversation is not None
    assert conversation.turns[0].text == "how does the million-experts layer pick experts?"
    assert cited_papers(conversation) == {PEER}


def test_a_retried_event_is_answered_once(bot: Bot) -> None:
    root = "1720000000.000200"
    bot.stack.conversations.open("slack", "C1", root)
    event = user_message("What does FlashAttention-3 change?", "1720000001.000001", root)
    bot.event(event, event_id="EvSAME")
    bot.api.wait_for("chat.postMessage")
    assert bot.event(event, event_id="EvSAME", retry=1).status == 200
    assert bot.event(event, event_id="EvSAME", retry=2).status == 200
    # a retry of a delivery that never got through is answered
    late = user_message("and its limits?", "1720000002.000001", root)
    bot.event(late, event_id="EvLOST", retry=1)
    bot.settle()
    assert len(bot.api.calls_to("chat.postMessage")) == 2
    assert len(bot.api.calls_to("reactions.add")) == 2


def test_own_and_other_bots_messages_edits_joins_and_strangers_threads_are_ignored(
    bot: Bot,
) -> None:
    root = "1720000000.000300"
    bot.stack.conversations.open("slack", "C1", root)
    ignored = [
        user_message("What is FlashAttention-3?", "1.1", root, user=BOT_USER_ID),
        {**user_message("What is FlashAttention-3?", "1.2", root), "bot_id": "BOTHER"},
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": "C1",
            "ts": "1.3",
            "message": {"user": "U2", "text": "edited", "ts": "1.0", "thread_ts": root},
        },
        {**user_message("<@U2> has joined", "1.4", root), "subtype": "channel_join"},
        user_message("What is FlashAttention-3?", "1.5"),  # not in a thread
        user_message("What is FlashAttention-3?", "1.6", "9.9"),  # not our thread
        user_message(f"<@{BOT_USER_ID}> what is it?", "1.7", root),  # app_mention answers
    ]
    for event in ignored:
        assert bot.event(event).status == 200
    bot.settle()
    assert not bot.api.calls_to("chat.postMessage")
    assert not bot.api.calls_to("reactions.add")


# -- digest posts and card threads -----------------------------------------------------------


@pytest.fixture(scope="module")
def built_digest(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> Digest:
    """The sample week's digest, built once (it takes a while) and saved in each test."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("digest") / "data")
    builder_stack = Stack(settings, real_embedder)
    try:
        builder_stack.ingest_sample()
        built, _ = digest_builder(builder_stack).build_week(WEEK, "potw", "en")
    finally:
        builder_stack.close()
    return built


@pytest.fixture
def digest(bot: Bot, built_digest: Digest) -> Digest:
    bot.builder.save(built_digest)
    return built_digest


def publish(bot: Bot, digest: Digest) -> SlackDigestChannel:
    channel = SlackDigestChannel(bot.connector.client, post_interval=0)
    publisher = DigestPublisher(bot.stack.store, bot.stack.conversations)
    report = asyncio.run(publisher.publish(digest, channel, "C1"))
    assert report.posted == len(bot.api.calls_to("chat.postMessage"))
    return channel


def card_ts(api: FakeSlackAPI, paper_id: str) -> str:
    return next(
        m["ts"]
        for m in api.messages
        if m.get("metadata", {})
        .get("event_payload", {})
        .get("key", "")
        .endswith(f"card:{paper_id}#0")
    )


def test_a_digest_is_posted_with_card_threads_answered_about_their_paper(
    bot: Bot, digest: Digest
) -> None:
    channel = publish(bot, digest)
    posts = bot.api.calls_to("chat.postMessage")
    assert all(not validate_slack_message(c.params) for c in posts)
    assert all(c.params["metadata"]["event_type"] == "paperbot_digest" for c in posts)
    roots = [c for c in posts if "thread_ts" not in c.params]
    assert len(roots) == 1 + len(digest.cards)  # the header, then one root per card

    peer_card = card_ts(bot.api, PEER)
    question_ts = f"{float(peer_card) + 1:.6f}"
    asked_at = time.monotonic()
    bot.event(user_message("what does it make cheap?", question_ts, thread_ts=peer_card))
    answer = bot.api.wait_for(
        "chat.postMessage",
        where=lambda c: c.params.get("thread_ts") == peer_card and c.at > asked_at,
    )
    conversation = bot.stack.conversations.get("slack", "C1", peer_card)
    assert conversation is not None and cited_papers(conversation) == {PEER}
    assert "arxiv.org/abs/2407.04153" in all_text(answer[-1:])

    # crash recovery: each post can be found again from its metadata, replies included
    keys = [c.params["metadata"]["event_payload"]["key"] for c in posts]
    continuation = next(k for k in keys if not k.endswith("#0"))
    for key in (keys[0], keys[-1], continuation):
        ref = asyncio.run(channel.find("C1", key))
        posted = next(
            m
            for m in bot.api.messages
            if m.get("metadata", {}).get("event_payload", {}).get("key") == key
        )
        assert ref is not None and ref.message_id == posted["ts"]
        assert ref.thread == posted.get("thread_ts", posted["ts"])
    assert asyncio.run(channel.find("C1", "2024-07-08/en/card:nope#0")) is None


def test_a_digest_is_never_posted_where_the_bot_could_not_read_it_back(
    bot: Bot, digest: Digest
) -> None:
    """Crash recovery reads the channel's history; without membership that is
    not_in_channel. So the bot must not post where it is not a member (no
    chat:write.public): the post is refused up front and nothing is left orphaned."""
    bot.api.add_channel("COUT", bot_member=False)
    channel = SlackDigestChannel(bot.connector.client, post_interval=0)
    publisher = DigestPublisher(bot.stack.store, bot.stack.conversations)
    with pytest.raises(SlackApiError, match="not_in_channel"):
        asyncio.run(publisher.publish(digest, channel, "COUT"))
    assert [m for m in bot.api.messages if m["channel"] == "COUT"] == []
    bot.api.refusals.clear()


def test_crash_recovery_pages_within_a_distributed_apps_history_limits(
    bot: Bot, digest: Digest
) -> None:
    """Since 2025-05-29 a non-Marketplace app installed in other workspaces reads at most
    15 messages a request and one request a minute from conversations.history/replies."""
    first = SlackDigestChannel(bot.connector.client, post_interval=0)
    publisher = DigestPublisher(bot.stack.store, bot.stack.conversations)
    asyncio.run(publisher.publish(digest, first, "C1"))
    for n in range(20):  # people talk after the digest: its header is deep in the history
        bot.connector.client.chat_postMessage(channel="C1", text=f"chatter {n}")
    posts = [c for c in bot.api.calls_to("chat.postMessage") if c.params.get("metadata")]
    header_key = posts[0].params["metadata"]["event_payload"]["key"]
    reply_key = next(
        c.params["metadata"]["event_payload"]["key"] for c in posts if "thread_ts" in c.params
    )
    bot.api.distribution, bot.api.history_window = "distributed", 1.0
    channel = SlackDigestChannel(
        bot.connector.client, distribution="distributed", distributed_interval=1.2
    )
    for key in (header_key, reply_key):
        found = asyncio.run(channel.find("C1", key))
        posted = next(
            m
            for m in bot.api.messages
            if m.get("metadata", {}).get("event_payload") == {"key": key}
        )
        assert found is not None and found.message_id == posted["ts"]
    reads = bot.api.calls_to("conversations.history") + bot.api.calls_to("conversations.replies")
    assert len(bot.api.calls_to("conversations.history")) >= 2  # it had to page
    assert all(int(c.params.get("limit", 0)) <= 15 for c in reads)
    assert all(c.status == 200 for c in reads)  # paced: never rate limited
    assert not [r for r in bot.api.refusals if r.error == "ratelimited"]


def test_card_buttons_all_qa_once_and_ask_through_a_modal(bot: Bot, digest: Digest) -> None:
    publish(bot, digest)
    fa3_card = card_ts(bot.api, FA3)
    before = len(bot.api.thread("C1", fa3_card))
    posted = len(bot.api.calls_to("chat.postMessage"))
    card = next(c for c in digest.cards if c.paper_id == FA3)
    expected = len(qa_messages(digest, card))
    bot.click("paper_all_qa", f"{WEEK.isoformat()}:{FA3}", fa3_card)
    bot.api.wait_for("chat.postMessage", count=posted + expected)
    bot.click("paper_all_qa", f"{WEEK.isoformat()}:{FA3}", fa3_card, user="U2")
    again = bot.api.wait_for("chat.postEphemeral")[0]
    assert "already in this card's thread" in all_text([again])
    thread = bot.api.thread("C1", fa3_card)
    assert len(thread) == before + expected
    added = "\n".join(texts_of(thread[before:]))
    assert all(f"Q{n}. " in added for n in range(1, len(card.qa) + 1)) and card.qa

    assert bot.click("paper_pdf", "", fa3_card).status == 200
    bot.click("paper_ask", FA3, fa3_card, user="U5")
    opened = bot.api.wait_for("views.open")[0]
    view = opened.params["view"]
    assert view["callback_id"] == tr.ASK_MODAL and "FlashAttention-3" in json.dumps(view)
    assert bot.submit_modal(view, "what precision modes does it add?", user="U5").status == 200
    answer = bot.api.wait_for(
        "chat.postMessage",
        where=lambda c: c.params.get("thread_ts") == fa3_card and "asked:" in all_text([c]),
    )[0]
    assert "<@U5> asked: what precision modes does it add?" in all_text([answer])
    conversation = bot.stack.conversations.get("slack", "C1", fa3_card)
    assert conversation is not None and cited_papers(conversation) == {FA3}


def texts_of(messages: list[dict[str, Any]]) -> list[str]:
    return texts(
        [ApiCall(0, "m", {"text": m["text"], "blocks": m["blocks"]}, 200, None) for m in messages]
    )


# -- reliability and security ----------------------------------------------------------------


def test_a_429_is_retried_after_retry_after_and_the_answer_still_arrives(bot: Bot) -> None:
    bot.api.fail_next(1, status=429, retry_after=1, method="chat.postEphemeral")
    bot.command("help")
    delivered = bot.api.wait_for("chat.postEphemeral")
    calls = bot.api.calls_to("chat.postEphemeral")
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].at - calls[0].at >= 1.0
    assert "/paper search" in all_text(delivered)


@pytest.mark.parametrize(
    "secret, age", [("forged-secret", 0), (SECRET, 6 * 60)], ids=["forged", "stale"]
)
def test_forged_or_stale_signatures_are_refused_with_401(bot: Bot, secret: str, age: int) -> None:
    body = command_body("help", "U1", "C1", bot.api.response_url())
    headers = signed(body, "application/x-www-form-urlencoded", secret, int(time.time()) - age)
    response, _ = bot.dispatch(body, headers)
    assert response.status == 401
    event = event_body(user_message("hi", "1.1", "1.0"), "EvX")
    response, _ = bot.dispatch(
        event, signed(event, "application/json", secret, int(time.time()) - age)
    )
    assert response.status == 401
    bot.settle()
    assert [c.method for c in bot.api.calls] == ["auth.test"]


def test_the_channel_allowlist(stack: Stack, api: FakeSlackAPI) -> None:
    bot = Bot(stack, api, allowed_channels="CYES, CALSO")
    try:
        bot.command("search flash attention", channel="CNO")
        refused = bot.api.wait_for("chat.postEphemeral")[0]
        assert "not enabled in this channel" in all_text([refused])
        bot.event(
            {
                "type": "app_mention",
                "user": "U2",
                "channel": "CNO",
                "ts": "2.1",
                "text": "<@UBOT> hi",
            }
        )
        bot.api.wait_for(
            "chat.postEphemeral", count=2, where=lambda c: "not enabled" in all_text([c])
        )
        bot.command("search flash attention", channel="CALSO")
        found = bot.api.wait_for("chat.postEphemeral", where=to("CALSO"))[0]
        assert "FlashAttention-3" in all_text([found])
    finally:
        bot.settle()
    assert not bot.api.calls_to("chat.postMessage")


def test_subscribe_is_for_admins_only(stack: Stack, api: FakeSlackAPI) -> None:
    bot = Bot(stack, api, admin_users="UCONFIG")
    try:
        bot.command("subscribe", user="U1")
        refused = bot.api.wait_for("chat.postEphemeral")[0]
        assert "Only admins" in all_text([refused])
        assert stack.conversations.subscriptions("slack") == []
        bot.command("subscribe", user="UADMIN")  # a workspace admin per users.info
        done = bot.api.wait_for("chat.postMessage")[0]
        assert "will get the weekly digest" in all_text([done])
        assert stack.conversations.subscriptions("slack") == [("slack", "C1")]
        bot.command("unsubscribe", user="UADMIN")
        bot.command("subscribe", user="UCONFIG", channel="C2")  # SLACK_ADMIN_USERS
        bot.api.wait_for("chat.postMessage", count=3)
    finally:
        bot.settle()
    assert stack.conversations.subscriptions("slack") == [("slack", "C2")]
    looked_up = [c.params["user"] for c in api.calls_to("users.info")]
    assert looked_up == ["U1", "UADMIN"]  # cached; configured admins need no lookup


def posting_bot(stack: Stack, api: FakeSlackAPI, post_interval: float) -> tuple[DigestService, Bot]:
    """A bot whose `/paper digest post` posts through the digest service to Slack."""
    service = stack.digest_service(digest_builder(stack))
    bot = Bot(stack, api, poster=service)
    service.register_channel("slack", SlackDigestChannel(bot.connector.client, post_interval))
    return service, bot


def test_an_admin_posts_the_weeks_digest_here_with_digest_post(
    stack: Stack, api: FakeSlackAPI
) -> None:
    _, bot = posting_bot(stack, api, post_interval=0)
    try:
        bot.command("digest post", user="U1")
        assert "Only admins" in all_text(bot.api.wait_for("chat.postEphemeral"))
        bot.command("digest post 2024-07-10", user="UADMIN")
        done = bot.api.wait_for("chat.postEphemeral", count=2)[-1]
        assert "Posted the digest of Jul 8 – Jul 14, 2024 here" in all_text([done])
        roots = [c for c in api.calls_to("chat.postMessage") if "thread_ts" not in c.params]
        assert len(roots) == 11  # the header and ten cards, each a thread root
        bot.command("digest post", user="UADMIN")
        again = bot.api.wait_for("chat.postEphemeral", count=3)[-1]
        assert "already in this channel" in all_text([again])
    finally:
        bot.settle()
    assert len([c for c in api.calls_to("chat.postMessage") if "thread_ts" not in c.params]) == 11


def test_a_digest_post_waiting_for_the_scheduled_post_says_so_at_once(
    stack: Stack, api: FakeSlackAPI
) -> None:
    service, bot = posting_bot(stack, api, post_interval=0.05)
    scheduled = threading.Thread(  # the weekly post (serve's scheduler) is running here
        target=service.post_now, args=("slack", "C1", date(2024, 7, 10))
    )
    try:
        scheduled.start()
        bot.api.wait_for("chat.postMessage")  # it has begun
        bot.command("digest post 2024-07-10", user="UADMIN")
        told = bot.api.wait_for("chat.postEphemeral", count=2)
    finally:
        scheduled.join(timeout=30)
        bot.settle()
    assert "waiting for it to finish" in all_text(told[:1])  # at once, not with the reply
    assert told[0].at < max(c.at for c in api.calls_to("chat.postMessage"))
    assert "Posted the digest" in all_text(told[1:]) or "already" in all_text(told[1:])
    assert "waited" in all_text(told[1:])
    roots = [c for c in api.calls_to("chat.postMessage") if "thread_ts" not in c.params]
    assert len(roots) == 11  # each message once, whichever run posted it


def test_private_answers_fall_back_to_the_response_url_where_the_bot_cannot_post(
    bot: Bot,
) -> None:
    bot.api.error_next("chat.postEphemeral", "channel_not_found")
    bot.command("help", channel="D0DM")
    bot.api.wait_for("response_url")
    assert bot.api.responses[0]["response_type"] == "ephemeral"
    assert "/paper search" in json.dumps(bot.api.responses[0])


# -- acks while the model is busy, and streaming ---------------------------------------------


def slow_reply(body: dict[str, Any]) -> str:
    words = "FlashAttention-3 overlaps the data movement with the matrix multiplies [1]."
    return " ".join([words] * 4)


def test_acks_stay_fast_while_the_model_streams_another_answer(
    stack: Stack, api: FakeSlackAPI
) -> None:
    with FakeOpenAIServer(reply=slow_reply, stream_chunk_delay=0.12) as llm:
        bot = Bot(stack, api, llm=llm, workers=1)  # one worker: the search must queue
        try:
            _, first = bot.command("ask What does FlashAttention-3 change on Hopper GPUs?")
            deadline = time.monotonic() + 20
            while not llm.chat_requests and time.monotonic() < deadline:
                time.sleep(0.02)
            assert llm.chat_requests, "the model never got the question"
            response, second = bot.command("search million experts", user="U9")
            assert response.status == 200
            assert first < 1.0 and second < 1.0
            bot.api.wait_for("chat.postEphemeral", where=to("C1", "U9"), timeout=60)
        finally:
            bot.settle()
    updates = api.calls_to("chat.update")
    assert len(updates) >= 3  # streamed in place, then the final answer
    streaming = [u for u in updates if "writing…" in all_text([u])]
    assert streaming and all(
        later.at - earlier.at >= 0.9 for earlier, later in itertools.pairwise(streaming)
    )
    final = updates[-1]
    assert "writing…" not in all_text([final]) and "[1]" in all_text([final])
    search = api.calls_to("chat.postEphemeral")[0]
    assert search.at > final.at  # it waited for the worker, not for the ack


def test_every_interaction_is_acknowledged_within_3_s_while_slow_answers_fill_the_workers(
    stack: Stack, api: FakeSlackAPI, built_digest: Digest
) -> None:
    """Six slow LLM answers (6 s each) fill the four workers; meanwhile slash commands,
    buttons (a vote, All Q&A, share, the ask button whose modal must open within the
    trigger's 3 s) and a modal submission are each acknowledged within Slack's 3 s
    (`api.deliver` times them; the fixture fails the test on any late ack or stale
    trigger)."""
    with FakeOpenAIServer() as llm:
        bot = Bot(stack, api, llm=llm, workers=4)
        try:
            bot.builder.save(built_digest)
            publish(bot, built_digest)
            fa3_card = card_ts(api, FA3)
            bot.command("ask What is FlashAttention-3?")
            answer_ts = api.wait_for(
                "chat.update", where=lambda c: "answer_helpful" in json.dumps(c.params)
            )[0].params["ts"]
            llm.delay_next(6, 6.0)
            for n in range(6):
                question = f"How does FlashAttention-3 use FP8 on Hopper GPUs ({n})?"
                assert bot.command(f"ask {question}", user=f"UQ{n}")[1] < 1.0
            deadline = time.monotonic() + 20
            while len(llm.chat_requests) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(llm.chat_requests) >= 5, "the workers never got busy"
            acks = {
                "search": bot.command("search million experts", user="U9")[1],
                "help": bot.command("help", user="U9")[1],
            }
            for name, action, value in (
                ("vote", tr.HELPFUL_ACTION, "helpful"),
                ("all_qa", "paper_all_qa", f"{WEEK.isoformat()}:{FA3}"),
                ("ask_button", "paper_ask", FA3),
                ("share", tr.SHARE_ACTION, "search million experts"),
            ):
                started_at = time.perf_counter()
                ts = answer_ts if name == "vote" else fa3_card
                assert bot.click(action, value, ts, user="U9").status == 200
                acks[name] = time.perf_counter() - started_at
            opened = api.wait_for("views.open", timeout=3)[0]  # within the trigger's life
            started_at = time.perf_counter()
            view = opened.params["view"]
            assert bot.submit_modal(view, "what precision modes does it add?", "U9").status == 200
            acks["modal"] = time.perf_counter() - started_at
            help_reply = api.wait_for("chat.postEphemeral", where=to("C1", "U9"), timeout=3)
            assert "/paper search" in all_text(help_reply)  # help never waits behind answers
        finally:
            bot.settle()
    assert all(took < 1.0 for took in acks.values()), acks
    assert not api.late_acks and not api.invalid_requests()


def test_a_failure_is_logged_once_and_the_user_gets_a_short_apology(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, error_log: ErrorLog
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("index exploded")

    monkeypatch.setattr(bot.connector.flows._assistant, "run", broken)
    response, took = bot.command("search anything")
    assert response.status == 200 and took < 1.0
    apology = bot.api.wait_for("chat.postEphemeral")[0]
    assert APOLOGY.plain in all_text([apology])
    assert "index exploded" not in all_text([apology])
    bot.settle()
    error_log.expected = 1
    assert error_log.records[0].exc_info is not None


def test_an_ask_the_core_refuses_removes_its_placeholder_and_answers_privately(
    bot: Bot,
) -> None:
    bot.command("ask " + "why " * 600)  # over PAPERBOT_ANSWER_MAX_QUESTION_CHARS
    refused = bot.api.wait_for("chat.postEphemeral")[0]
    assert "limit" in all_text([refused])
    assert len(bot.api.calls_to("chat.postMessage")) == 1  # the placeholder...
    assert len(bot.api.calls_to("chat.delete", ok_only=True)) == 1  # ...removed
    assert bot.api.messages == []


def test_digest_lists_the_week_in_the_channel(bot: Bot) -> None:
    bot.command("digest")
    posted = bot.api.wait_for("chat.postMessage")[0]
    assert "Top ML papers of the week, Jul 8 – Jul 14, 2024" in all_text([posted])
    assert not validate_slack_message(posted.params)


async def test_a_live_answer_is_posted_once_then_updated_in_place(api: FakeSlackAPI) -> None:
    client = build_web_client(SlackSettings(api_base_url=api.base_url), TOKEN)
    renderer = SlackRenderer()
    live = LiveAnswer(SlackPlatform(client), renderer, Place("C1", "100.000001"), interval=0)
    for piece in ("FlashAttention-3 ", "overlaps ", "copies."):
        live.add(piece)
        await asyncio.sleep(0.3)  # each update reaches Slack before the next piece
    await live.close()
    posts, updates = api.calls_to("chat.postMessage"), api.calls_to("chat.update")
    assert len(posts) == 1 and posts[0].params["thread_ts"] == "100.000001"
    assert live.posted is not None and [u.params["ts"] for u in updates] == [live.posted.id] * 2
    long_answer = Reply("FlashAttention-3 overlaps copies. " * 400, kind="answer", mode="llm")
    final = renderer.reply(long_answer)
    assert len(final) > 1
    await live.finish(final)
    assert api.message("C1", live.posted.id)["blocks"] == final[0]["blocks"]
    assert len(api.thread("C1", "100.000001")) == len(final)
    await live.discard()
    assert api.calls_to("chat.delete", ok_only=True)
