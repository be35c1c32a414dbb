"""Discord payloads to core messages and core replies to Discord payloads: the pure half of
the connector, on plain dicts (no client, no server)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from assistant.commands import USAGE, Ask, ListDigest, PostDigest, Search
from assistant.digest.split import text_length
from assistant.messages import Citation, PaperCard, Reply, ResultItem, ResultList
from assistant.rich import code, rich
from connectors.discord import replies
from connectors.discord import translate as tr
from connectors.discord.digest import MARKED_LIMITS, has_marker, marked, post_marker, root_key
from connectors.discord.render import DISCORD_LIMITS, card_messages, validate_discord_message
from connectors.flow.platform import MessageEvent, Place
from tests.fakes.discord_api import BOT_ID, BOT_USER, MANAGE_GUILD, FakeDiscordAPI
from tests.test_digest_render import DIGESTS

CHANNEL = "1250000000000000000"
THREAD = "1250000000000000005"


TEXT = {"id": CHANNEL, "type": 0}
IN_THREAD = {"id": THREAD, "type": 11, "parent_id": CHANNEL}


# -- incoming --------------------------------------------------------------------------


def test_typed_options_become_the_cores_commands_and_a_thread_counts_as_its_parent() -> None:
    assert tr.typed_command("search", {"query": "  flash   attention "}) == Search(
        "flash attention"
    )
    asked = tr.typed_command("ask", {"question": f"<@{BOT_ID}> how fast?", "paper": "#2"})
    assert asked == Ask("how fast?", "#2")
    assert tr.typed_command("digest", {"week": None, "post": False}) == ListDigest()
    assert tr.typed_command("digest", {"week": "2024-07-10", "post": True}) == PostDigest(
        date(2024, 7, 10)
    )
    assert tr.typed_command("digest", {"week": "next monday"}).verb == "unknown"
    assert tr.typed_command("search", {"query": "   "}).verb == "unknown"
    assert tr.place(TEXT) == Place(CHANNEL) and tr.place(IN_THREAD) == Place(CHANNEL, THREAD)


@pytest.mark.parametrize(
    "permissions, admins, expected",
    [(0, "", False), (MANAGE_GUILD, "", True), (1 << 3, "", True), (0, "U1", True)],
    ids=["member", "manage-server", "administrator", "listed"],
)
def test_admins_have_manage_server_or_are_listed(
    permissions: int, admins: str, expected: bool
) -> None:
    assert tr.is_admin(str(permissions), "U1", frozenset(a for a in [admins] if a)) is expected


def message(content: str, mention: bool = False, **extra: Any) -> dict[str, Any]:
    author = {"id": "U2", "bot": False}
    return {
        "id": "M1",
        "channel_id": THREAD,
        "type": 0,
        "author": author,
        "mentions": [BOT_USER] if mention else [],
        "content": content,
    } | extra


def test_thread_messages_are_for_us_when_they_mention_us_or_with_the_content_intent() -> None:
    asked = tr.message_event(message(f"<@{BOT_ID}>  and how fast is it?", True), BOT_ID, CHANNEL)
    assert asked == MessageEvent(
        platform="discord",
        user="U2",
        place=Place(CHANNEL, THREAD),
        text="and how fast is it?",
        message_id="M1",
        mentioned=True,
        delivery_id="M1",
    )
    plain = message("and how fast is it?")
    assert tr.message_event(plain, BOT_ID, CHANNEL) is None  # no intent, no mention
    assert tr.message_event(plain, BOT_ID, CHANNEL, content_intent=True) is not None
    outside = tr.message_event(plain | {"channel_id": CHANNEL}, BOT_ID, None, True)
    assert outside is None  # outside a thread only a mention is for us
    mention = tr.message_event(message(f"<@!{BOT_ID}> hi <:wave:123>", True), BOT_ID, None)
    assert mention is not None and mention.place.thread is None and mention.text == "hi :wave:"


@pytest.mark.parametrize(
    "changes",
    [
        {"author": {"id": BOT_ID, "bot": True}},
        {"author": {"id": "B2", "bot": True}},
        {"webhook_id": "W1"},
        {"type": 7},  # a member joined
        {"content": f"<@{BOT_ID}>"},  # nothing but the mention
    ],
    ids=["ours", "another-bot", "webhook", "system", "empty"],
)
def test_bots_webhooks_system_and_empty_messages_are_ignored(changes: dict[str, Any]) -> None:
    payload = message(f"<@{BOT_ID}> what is it?", True) | changes
    assert tr.message_event(payload, BOT_ID, CHANNEL, content_intent=True) is None


# -- outgoing --------------------------------------------------------------------------


def all_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(
        [m["content"] for m in messages]
        + [e.get(k, "") for m in messages for e in m["embeds"] for k in ("title", "description")]
    )


def assert_valid(messages: list[dict[str, Any]]) -> None:
    problems = [p for m in messages for p in validate_discord_message(m)]
    assert not problems, problems[:5]


def test_an_oversized_answer_is_split_to_every_limit_and_nothing_is_lost() -> None:
    sentences = [f"Sentence {n} says *FP8* is <fast> & exact_{n}." for n in range(900)]
    citations = tuple(
        Citation(n, f"2407.0860{n}", f"Paper {n}", f"https://arxiv.org/abs/2407.0860{n}",
                 "3.1 Method", n, " ".join(f"Quote {n}-{i}." for i in range(120)))
        for n in range(1, 6)
    )  # fmt: skip
    reply = Reply(" ".join(sentences), citations, kind="answer", mode="llm")
    messages = replies.reply_messages(reply, asked=("U1", "how fast is it? " * 200))
    assert len(messages) > 2
    assert_valid(messages)
    assert messages[0]["content"].startswith("<@U1> asked: how fast is it?")
    assert all(m["content"] == replies.CONTINUED for m in messages[1:])
    text = all_text(messages)
    found = [int(n) for n in re.findall(r"Sentence (\d+) says", text)]
    assert found == list(range(900))  # every sentence, once, in order
    assert all(f"Quote {n}-119." in text for n in range(1, 6))
    sources = [e for m in messages for e in m["embeds"] if e.get("title") == "Sources"]
    assert len(sources) == 1
    assert messages[-1]["embeds"][-1]["footer"]["text"].startswith("Generated from the cited")
    assert "\\*FP8\\*" in text and "&" in text  # paper text is shown literally


def test_private_results_carry_a_share_button_unless_the_command_is_too_long() -> None:
    items = tuple(
        ResultItem(f"2407.0{n}", f"Paper *{n}*", f"https://arxiv.org/abs/2407.0{n}", "snip", 1.0)
        for n in range(5)
    )
    results = (ResultList("Papers for “moe”", items),)
    reply = Reply("…", results, "private", kind="search", share="search moe")
    (shown,) = replies.reply_messages(reply)
    assert_valid([shown])
    assert shown["embeds"][0]["title"] == "Papers for “moe”"
    assert "1\\. **[Paper \\*0\\*](https://arxiv.org/abs/2407.00)** (2407.00) — snip" in all_text(
        [shown]
    )
    (button,) = shown["components"][0]["components"]
    assert button["custom_id"] == "paper:share:search moe"
    (long,) = replies.reply_messages(replace(reply, share="search " + "x" * 100))
    assert "components" not in long
    (public,) = replies.reply_messages(replace(reply, visibility="public"))
    assert "components" not in public


def test_the_cores_rich_text_is_discord_markdown_split_to_2000_characters() -> None:
    (help_message,) = replies.reply_messages(Reply.formatted(USAGE, visibility="private"))
    assert help_message["content"].startswith("**/paper commands**\n• `/paper search <query>`")
    assert help_message["embeds"] == []
    body = rich("Try ", code("x `y` z"), " *not bold* <@123>")
    (notice,) = replies.text_messages(body)
    assert notice["content"] == "Try `` x `y` z `` \\*not bold\\* \\<@123>"
    long_notice = replies.text_messages("A notice line. " * 400)
    assert len(long_notice) > 1 and all(text_length(m["content"]) <= 2000 for m in long_notice)
    assert_valid(long_notice)


def test_a_paper_card_with_a_huge_author_list_keeps_every_author() -> None:
    authors = tuple(f"Author {n}" for n in range(400))
    card = PaperCard("2407.08608", "FlashAttention-3 " * 30, "https://arxiv.org/abs/2407.08608",
                     authors, summary="A summary. " * 800)  # fmt: skip
    messages = replies.reply_messages(Reply("…", (card,), kind="paper"))
    assert_valid(messages)
    text = all_text(messages)
    assert "Author 0, Author 1" in text and "Author 399" in text
    fields = {f["name"]: f["value"] for f in messages[0]["embeds"][0]["fields"]}
    assert "Authors" not in fields and fields["Published"] == "unknown"


def test_a_streamed_answer_shows_as_much_as_fits_and_says_it_is_being_written() -> None:
    streaming = replies.streaming_message("FlashAttention-3 is *fast*. " * 400, ("U1", "why?"))
    assert_valid([streaming])
    embed = streaming["embeds"][0]
    assert embed["description"].endswith(" …") and embed["footer"]["text"] == replies.WRITING


# -- digest posts ----------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ja"])
def test_marked_digest_posts_keep_every_limit_and_cards_carry_their_buttons(language: str) -> None:
    digest = DIGESTS[language]
    for card in digest.cards:
        messages = card_messages(digest, card, MARKED_LIMITS)
        messages[0] = tr.with_components(messages[0], tr.card_buttons(digest, card))
        for n, payload in enumerate(messages):
            marker = post_marker(CHANNEL, f"2024-07-08/{language}/card:{card.paper_id}#{n}")
            posted = marked(payload, marker)
            assert not validate_discord_message(posted, DISCORD_LIMITS)
            assert has_marker(posted, marker) and not has_marker(payload, marker)
        buttons = messages[0]["components"][0]["components"]
        assert [b.get("custom_id") for b in buttons][:2] == [
            f"paper:ask:{card.paper_id}",
            f"paper:qa:2024-07-08:{card.paper_id}",
        ]
    assert root_key("2024-07-08/en/card:x#3") == "2024-07-08/en/card:x#0"
    assert root_key("2024-07-08/en/card:x#0") is None


def test_payload_builders_of_the_fake_are_plain_json() -> None:
    api = FakeDiscordAPI()
    channel = api.add_channel()
    payload = api.command("search", channel, query="moe")
    assert json.loads(json.dumps(payload)) == payload
    assert payload["data"]["options"][0]["options"] == [
        {"name": "query", "type": 3, "value": "moe"}
    ]


def test_hostile_text_in_a_question_or_a_paper_pings_nobody_and_stays_literal() -> None:
    hostile = "@everyone <@&123456789012345678> **loud** [click](https://evil.example) `x`"
    reply = Reply(
        f"Quoted: {hostile}",
        (Citation(1, "2407.08608", hostile, None, None, None, hostile),),
        kind="answer",
        mode="extractive",
    )
    public = replies.reply_messages(reply, asked=("2000000000000000001", hostile), feedback=True)
    private = replies.text_messages(rich("Unknown command ", code(hostile), "."))  # the asker
    for message in public + private:
        assert message["allowed_mentions"] == {"parse": []}
        assert not validate_discord_message(message)
    shown = json.dumps(public)
    assert "\\\\*\\\\*loud\\\\*\\\\*" in shown  # markdown escaped, not rendered bold
    assert "[click](https://evil.example)" not in shown  # no masked link from user text
