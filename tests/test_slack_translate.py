"""The Slack connector's pure translation: payloads in, core messages out, and core replies
as Slack messages within every limit."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from assistant.commands import USAGE, Ask, ListDigest, PostDigest, Search, Subscribe, parse_command
from assistant.messages import Citation, PaperCard, Reply, ResultItem, ResultList
from assistant.rich import code, rich
from connectors.flow.platform import AskForm, FormSubmit, MessageEvent, Place, VoteClick
from connectors.slack import replies
from connectors.slack import translate as tr
from connectors.slack.render import SLACK_LIMITS, validate_slack_message
from tests.fakes.slack_api import shown

BOT = "UBOT"


def message_event(**fields: Any) -> dict[str, Any]:
    event = {"type": "message", "user": "U2", "channel": "C1", "ts": "2.0", "thread_ts": "1.0"}
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def test_slack_markup_becomes_what_the_person_typed() -> None:
    text = (
        f"<@{BOT}> compare <https://arxiv.org/abs/2407.08608|arxiv.org/abs/2407.08608> "
        "with <#C123|papers> &amp; say if a &lt; b <!here>\n\n  and <mailto:a@b.c|mail>"
    )
    assert tr.plain_text(text) == (
        "compare https://arxiv.org/abs/2407.08608 with #papers & say if a < b\nand mailto:a@b.c"
    )


def test_a_thread_reply_is_a_follow_up_in_that_thread() -> None:
    message = tr.message_event(message_event(text="and its limits?"), BOT, "Ev1")
    assert isinstance(message, MessageEvent) and not message.mentioned
    assert (message.platform, message.user, message.place) == ("slack", "U2", Place("C1", "1.0"))
    assert (message.message_id, message.text, message.delivery_id) == (
        "2.0",
        "and its limits?",
        "Ev1",
    )


@pytest.mark.parametrize(
    "event",
    [
        message_event(user=BOT, text="our own answer"),
        message_event(bot_id="B9", user="U9", text="another bot"),
        message_event(subtype="bot_message", bot_id="B9", user=None, text="a webhook"),
        message_event(subtype="message_changed", user=None, text=None),
        message_event(subtype="message_deleted", user=None),
        message_event(subtype="channel_join", text="<@U2> has joined the channel"),
        message_event(thread_ts=None, text="top-level chatter"),
        message_event(ts="1.0", thread_ts="1.0", text="the thread's root itself"),
        message_event(text=f"<@{BOT}> a mention: the app_mention event answers it"),
        message_event(text=f"<@{BOT}>"),
        message_event(text="edited", edited={"user": "U2", "ts": "3.0"}),
        {"type": "reaction_added", "user": "U2", "item": {}},
    ],
    ids=[
        "ours",
        "other-bot",
        "bot-message",
        "edit",
        "delete",
        "join",
        "not-in-thread",
        "root",
        "mention",
        "empty",
        "edited",
        "other-event",
    ],
)
def test_events_that_are_not_questions_for_us_are_ignored(event: dict[str, Any]) -> None:
    assert tr.message_event(event, BOT) is None


def test_a_broadcast_thread_reply_still_counts() -> None:
    event = message_event(subtype="thread_broadcast", text="and the numbers?")
    assert tr.message_event(event, BOT) is not None


def test_mentions_start_a_thread_or_continue_theirs() -> None:
    top = {"type": "app_mention", "user": "U2", "channel": "C1", "ts": "5.0"}
    outside = tr.message_event({**top, "text": f"<@{BOT}> what is PEER?"}, BOT)
    assert outside is not None and outside.place.thread == "5.0" and outside.mentioned
    assert outside.text == "what is PEER?"
    inside = tr.message_event({**top, "text": f"<@{BOT}> more?", "thread_ts": "4.0"}, BOT)
    assert inside is not None and inside.place.thread == "4.0"
    edited = {**top, "text": f"<@{BOT}> x", "edited": {"ts": "6.0"}}
    assert tr.message_event(edited, BOT) is None


def test_a_slash_command_is_parsed_into_the_cores_typed_command() -> None:
    payload = {
        "user_id": "U1",
        "channel_id": "C1",
        "text": "search  <https://arxiv.org/abs/1706.03762>",
        "response_url": "https://hooks.slack.test/1",
        "trigger_id": "t1",
    }
    event = tr.command_event(payload)
    assert event.command == Search("https://arxiv.org/abs/1706.03762")
    assert (event.user, event.place) == ("U1", Place("C1"))
    assert event.reply_to == tr.SlackReplyTo("https://hooks.slack.test/1", "t1")
    assert parse_command("Subscribe") == Subscribe() and Subscribe.admin_only
    assert parse_command("search subscribe") == Search("subscribe")
    assert parse_command("digest Post 2024-07-08") == PostDigest(date(2024, 7, 8))
    assert parse_command("digest 2024-07-08") == ListDigest(date(2024, 7, 8))
    assert not ListDigest.admin_only and PostDigest.admin_only
    assert parse_command("ask 2407.08608 how fast?") == Ask("how fast?", "2407.08608")
    assert parse_command("frobnicate").verb == "unknown"


@pytest.mark.parametrize(
    "user, admin",
    [
        ({"id": "U1", "is_admin": True}, True),
        ({"id": "U1", "is_owner": True}, True),
        ({"id": "U1", "is_primary_owner": True}, True),
        ({"id": "U1"}, False),
        ({"id": "ULISTED"}, True),
    ],
)
def test_admins_are_workspace_admins_owners_or_listed(user: dict[str, Any], admin: bool) -> None:
    assert tr.is_admin(user, frozenset({"ULISTED"})) is admin


# -- replies -------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]{3,}", text)


def block_texts(messages: list[dict[str, Any]]) -> str:
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                (found.append(item) if key == "text" and isinstance(item, str) else walk(item))
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk([m["blocks"] for m in messages])
    return "\n".join(found)


def citation(n: int, quote: str) -> Citation:
    return Citation(
        n,
        "2407.08608",
        "FlashAttention-3: fast & accurate",
        "https://arxiv.org/abs/2407.08608",
        "3.1 Method",
        n,
        quote,
    )


def test_a_long_cited_answer_is_split_to_slacks_limits_without_losing_text() -> None:
    sentence = "Warp specialisation overlaps the copy engine with matrix multiplies [1]. "
    text = "".join(f"{i} {sentence}" for i in range(400))  # about 30,000 characters
    quotes = [f"quote {n} " + "FP8 incoherent processing keeps accuracy. " * 90 for n in range(6)]
    reply = Reply(
        text, tuple(citation(n, q) for n, q in enumerate(quotes, 1)), kind="answer", mode="llm"
    )
    messages = replies.reply_messages(reply, feedback=True, asked=("U1", "how? " * 400))
    assert len(messages) > 3
    for message in messages:
        assert not validate_slack_message(message), validate_slack_message(message)
        assert len(message["blocks"]) <= SLACK_LIMITS.blocks
    rendered = block_texts(messages)
    sections = block_texts(
        [{"blocks": [b for m in messages for b in m["blocks"] if b["type"] == "section"]}]
    )
    assert words(sections).count("Warp") == 400
    assert all(m["blocks"][0]["type"] == "context" for m in messages[1:])  # "… (continued)"
    assert all(f"quote {n}" in rendered for n in range(6))
    link = "<https://arxiv.org/abs/2407.08608|FlashAttention-3: fast &amp; accurate>"
    assert rendered.count(f"*[1]* {link} (3.1 Method, p. 1)") == 1
    feedback = [m for m in messages if '"answer_helpful"' in json.dumps(m)]
    assert feedback == [messages[-1]]


def test_user_and_paper_text_cannot_ping_or_format() -> None:
    reply = Reply(
        "<!channel> look at *this* _now_ <@U123> & `run`",
        (citation(1, "> quoted <!here>"),),
        kind="answer",
        mode="llm",
    )
    rendered = block_texts(replies.reply_messages(reply, asked=("U1", "<!everyone> hi")))
    assert (
        "<!channel>" not in rendered and "<!here>" not in rendered and "<!everyone>" not in rendered
    )
    assert "<@U123>" not in rendered and "*this*" not in rendered
    assert "&lt;!channel&gt;" in rendered and "<@U1> asked:" in rendered


def test_extractive_answers_list_their_sources_without_quoting_twice() -> None:
    quote = "TMA moves tiles while tensor cores multiply."
    reply = Reply(
        f"Quotes (not a generated answer):\n\n[1] “{quote}” — FlashAttention-3",
        (citation(1, quote),),
        kind="answer",
        mode="extractive",
    )
    rendered = block_texts(replies.reply_messages(reply))
    assert rendered.count(quote) == 1 and "*Sources*" in rendered


def test_the_cores_own_texts_keep_their_formatting_but_not_mentions() -> None:
    body = rich("Unknown command ", code("<!channel>"), ".\n\n", "*not bold* <@U1>")
    reply = Reply.formatted(body, visibility="private", kind="error")
    rendered = block_texts(replies.reply_messages(reply))
    assert "`&lt;!channel&gt;`" in rendered  # code, and inert
    assert "∗not bold∗ &lt;@U1&gt;" in rendered  # plain text formats and pings nobody
    help_text = block_texts(replies.reply_messages(Reply.formatted(USAGE, kind="help")))
    assert help_text.startswith("*/paper commands*\n• `/paper search &lt;query&gt;`")


def test_search_results_fit_and_carry_a_share_button_when_the_query_fits() -> None:
    items = tuple(
        ResultItem(
            f"2407.{i:05d}",
            f"Paper {i} " + "long title " * 30,
            f"https://arxiv.org/abs/2407.{i:05d}",
            "snippet " * 300,
            1.0,
        )
        for i in range(40)
    )
    results = (ResultList("Papers for “x”", items),)
    reply = Reply("Papers", results, "private", kind="search", share="search x")
    messages = replies.reply_messages(reply)
    assert all(not validate_slack_message(m) for m in messages)
    assert '"share_result"' in json.dumps(messages[-1]) and '"search x"' in json.dumps(messages)
    too_long = replies.reply_messages(replace(reply, share="search " + "q" * 2001))
    assert '"share_result"' not in json.dumps(too_long)
    public = replies.reply_messages(replace(reply, visibility="public"))
    assert '"share_result"' not in json.dumps(public)  # shared results: nothing to share


def test_a_paper_card_with_unknown_fields_says_unknown() -> None:
    card = PaperCard(
        "web:x.org:1", "A paper " * 40, None, authors=tuple(f"Author {i}" for i in range(400))
    )
    messages = replies.reply_messages(Reply("card", (card,), kind="paper"))
    assert all(not validate_slack_message(m) for m in messages)
    rendered = block_texts(messages)
    assert "*Link*\nunknown" in rendered and "*Published*\nunknown" in rendered
    assert "Author 399" in rendered


def test_streaming_and_placeholder_messages_stay_within_limits() -> None:
    live = replies.streaming_message("word " * 20_000, asked=("U1", "q" * 1500))
    assert not validate_slack_message(live) and "writing…" in block_texts([live])
    placeholder = replies.placeholder_message("U1", "why? " * 400)
    assert not validate_slack_message(placeholder)
    assert placeholder["text"].startswith("Looking into: why?")


def test_button_clicks_and_the_modal_become_flow_events() -> None:
    body = {
        "user": {"id": "U3"},
        "channel": {"id": "C1"},
        "container": {"message_ts": "7.0", "channel_id": "C1"},
        "message": {"ts": "7.0", "thread_ts": "6.0"},
        "actions": [{"action_id": replies.UNHELPFUL_ACTION, "value": "unhelpful"}],
    }
    vote = tr.action_event(body)
    assert isinstance(vote, VoteClick) and vote.verdict == "unhelpful"
    assert (vote.user, vote.place, vote.message_id) == ("U3", Place("C1", "6.0"), "7.0")
    assert tr.action_event({**body, "actions": [{"action_id": "other"}]}) is None
    view = tr.ask_modal(AskForm("2407.08608", "FlashAttention-3 " * 20, Place("C1", "6.0")))
    assert len(view["title"]["text"]) <= 24 and len(view["private_metadata"]) <= 3000
    view["state"] = {"values": {tr.QUESTION_BLOCK: {tr.QUESTION_INPUT: {"value": " why?  "}}}}
    question = tr.modal_submit({"user": {"id": "U5"}, "view": view})
    assert question == FormSubmit(
        platform="slack",
        user="U5",
        place=Place("C1", "6.0"),
        paper_id="2407.08608",
        question="why?",
    )
    view["state"]["values"][tr.QUESTION_BLOCK][tr.QUESTION_INPUT]["value"] = "   "
    assert tr.modal_submit({"user": {"id": "U5"}, "view": view}) is None


@pytest.mark.parametrize(
    "reply",
    [
        Reply("Is 2 < 3 & 4 > 1? Yes.", kind="answer", mode="llm"),
        Reply("No paper 'a<b' is in the index.", visibility="private", kind="error"),
        Reply("Papers", (ResultList("Papers for “a<b & c”", ()),), "private", kind="search"),
    ],
    ids=["answer", "error", "search"],
)
def test_the_notification_text_is_escaped_once(reply: Reply) -> None:
    """Slack shows `text` in notifications and to screen readers: `&amp;lt;` there means
    it was escaped twice."""
    (message,) = replies.reply_messages(reply)
    assert "&amp;lt;" not in message["text"] and "&amp;amp;" not in message["text"]
    assert shown(message["text"]) == " ".join(reply.text.split())
