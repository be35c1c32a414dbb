"""One paper, one card per team: a channel that already got a paper's card (from any
digest: the list, HF daily papers, arXiv listings) gets, in a later digest, one line
"already posted here on <date>" linking to that card's thread, never a second card.
Another channel still gets the full card; restarts and crashes change nothing."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from assistant.conversations import ConversationStore
from assistant.digest.markdown import render_header_markdown
from assistant.digest.publisher import DigestPublisher
from assistant.settings import Settings, SlackSettings
from assistant.state import StateStore
from tests.conftest import ROOT
from tests.digests import hand_digest
from tests.fakes.chat_channel import FakeChannel, FakePlatform, Killed
from tests.fakes.hf_server import FakeHfServer, hf_entry
from tests.test_cli import json_lines, run

FA3 = "2407.08608"
MOE = "2407.04153"
WEEK = date(2024, 7, 8)
HF = hand_digest(source="hf", paper_ids=(FA3, MOE))  # HF listed them on Tuesday
LIST = hand_digest(source="potw")  # the weekly list, the Monday after: five papers
ARXIV = hand_digest(source="arxiv", paper_ids=("2407.07726",))


def publisher(store: StateStore) -> DigestPublisher:
    return DigestPublisher(store, ConversationStore(store), poll_seconds=0.02, settle_seconds=0.1)


def posted(world: FakePlatform, channel: str, digest_prefix: str) -> list[str]:
    return [
        k.removeprefix(digest_prefix + "/")
        for k in world.keys(channel)
        if k.startswith(digest_prefix + "/") and "/" not in k.removeprefix(digest_prefix + "/")
    ]


def message(world: FakePlatform, key: str, channel: str = "C1") -> dict[str, object]:
    return next(m for m in world.messages if m["key"] == key and m["channel"] == channel)


def test_a_paper_another_digest_posted_here_is_a_line_linking_to_its_thread(
    settings: Settings,
) -> None:
    world = FakePlatform()
    store = StateStore.open(settings.state_path)
    asyncio.run(publisher(store).publish(HF, FakeChannel(world), "C1"))
    store.close()
    hf_card = message(world, f"2024-07-08/en/hf/card:{FA3}#0")

    store = StateStore.open(settings.state_path)  # a restart in between
    report = asyncio.run(publisher(store).publish(LIST, FakeChannel(world), "C1"))
    cards = [k for k in posted(world, "C1", "2024-07-08/en") if k.startswith("card:")]
    assert f"card:{FA3}#0" not in cards and f"card:{MOE}#0" not in cards
    assert len(cards) == 2 * 3  # the three papers C1 has not seen, card and continuation
    assert report.posted == 1 + 6
    header = str(message(world, "2024-07-08/en/header#0")["text"])
    today = datetime.now(UTC).date().isoformat()
    assert f"*already posted here on {today}*: [see its thread]" in header
    assert f"https://chat.example/C1/{hf_card['id']}" in header

    # another channel gets every card in full
    asyncio.run(publisher(store).publish(LIST, FakeChannel(world), "C2"))
    assert f"card:{FA3}#0" in posted(world, "C2", "2024-07-08/en")
    assert "already posted" not in str(message(world, "2024-07-08/en/header#0", "C2")["text"])

    # the paper's first thread still knows its paper; a repeat changes nothing
    thread = ConversationStore(store).get("fake", "C1", str(hf_card["id"]))
    assert thread is not None and thread.scope.paper_ids == (FA3,)
    again = asyncio.run(publisher(store).publish(LIST, FakeChannel(world), "C1"))
    assert again.posted == 0 and again.already_posted == 7
    store.close()


def test_the_decision_is_kept_across_a_crash_even_if_the_paper_is_posted_meanwhile(
    store: StateStore,
) -> None:
    """The header went out saying which papers get cards: a resumed post keeps to it."""
    world = FakePlatform()
    asyncio.run(publisher(store).publish(HF, FakeChannel(world), "C1"))
    with pytest.raises(Killed):  # dies right after the header went out
        asyncio.run(publisher(store).publish(LIST, FakeChannel(world, die_after=1), "C1"))
    asyncio.run(publisher(store).publish(ARXIV, FakeChannel(world), "C1"))  # meanwhile
    report = asyncio.run(publisher(store).publish(LIST, FakeChannel(world), "C1"))
    assert report.recovered == 1  # the header, found, not posted again
    cards = [k for k in posted(world, "C1", "2024-07-08/en") if k.startswith("card:")]
    assert "card:2407.07726#0" in cards  # the header promised its card
    assert f"card:{FA3}#0" not in cards
    keys = world.keys("C1")
    assert len(keys) == len(set(keys))


def test_a_dry_run_decides_nothing(store: StateStore) -> None:
    world = FakePlatform()
    shared = publisher(store)
    asyncio.run(shared.publish(HF, FakeChannel(world), "C1"))
    planned = asyncio.run(shared.plan(LIST, FakeChannel(world), "C1", dry_run=True))
    assert not [p for p in planned if p.paper_id in (FA3, MOE)]
    assert not store.query("SELECT * FROM digest_plans WHERE digest = '2024-07-08/en'")


def test_the_header_line_renders_in_the_teams_language_and_without_a_url() -> None:
    from dataclasses import replace

    from assistant.digest.model import EarlierCard

    card = replace(
        LIST.cards[0], already_posted=EarlierCard(date(2024, 7, 9), "team/2024-07-08/en/x#0")
    )
    ja = replace(LIST, language="ja", cards=(card, *LIST.cards[1:]))
    text = render_header_markdown(ja)
    assert "2024-07-09にこのチャンネルで投稿済み" in text
    assert "(スレッド team/2024-07-08/en/x#0)" in text  # the console: the thread's id


# -- the whole story from the command line ---------------------------------------------------


@pytest.mark.slow
def test_hf_on_tuesday_then_the_list_on_monday_in_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each command is a fresh process's runtime: every step is a restart."""
    data = tmp_path / "data"
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(data))
    monkeypatch.setenv("PAPERBOT_ARXIV_API_URL", "http://127.0.0.1:9/api")  # arXiv is down
    monkeypatch.setenv("PAPERBOT_ARXIV_MAX_RETRIES", "0")
    tuesday = {
        "2024-07-09": [
            hf_entry(FA3, "FlashAttention-3", upvotes=80, listed="2024-07-09T06:00:00.000Z"),
            hf_entry("2407.21787", "Large Language Monkeys", upvotes=20),  # not on the list
        ]
    }
    sample = ROOT / "assistant" / "data" / "sample_potw.md"
    with FakeHfServer(tuesday) as hf:
        monkeypatch.setenv("PAPERBOT_DIGEST_HF_URL", hf.url)
        code, out, err = run(capsys, "digest", "build", "--source", "hf", "--week", "2024-07-09")
        assert code == 0, err
    code, _, err = run(capsys, "digest", "post", "--source", "hf", "--channel", "console:team")
    assert code == 0 and "3 posted" in err, err
    code, _, err = run(
        capsys, "digest", "build", "--source", "potw", "--file", str(sample), "--week",
        "2024-07-08", "--offline",
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run(
        capsys, "digest", "post", "--source", "potw", "--channel", "console:team", "--dry-run"
    )
    assert f"{FA3}: its card went out on" in out
    code, out, err = run(capsys, "digest", "post", "--source", "potw", "--channel", "console:team")
    assert code == 0 and "10 posted" in err, err  # the header and 9 cards, not FA3's
    squashed = re.sub(r"[\s│╭╮╰╯─]", "", out)  # the terminal's panels wrap lines
    assert "alreadypostedhereon" in squashed and f"team/2024-07-08/en/hf/card:{FA3}#0" in squashed
    code, out, err = run(capsys, "digest", "post", "--source", "potw", "--channel", "console:lab")
    assert code == 0 and "11 posted" in err, err  # a new channel: every card
    log = [json.loads(line) for line in (data / "console_posts.jsonl").read_text().splitlines()]
    team = [e["key"] for e in log if e["channel"] == "team"]
    assert f"2024-07-08/en/card:{FA3}#0" not in team
    assert f"2024-07-08/en/hf/card:{FA3}#0" in team
    assert f"2024-07-08/en/card:{FA3}#0" in [e["key"] for e in log if e["channel"] == "lab"]
    code, out, _ = run(capsys, "digest", "show", "--source", "hf", "--format", "json")
    assert json_lines(out)[0]["source"] == "hf"


# -- on Slack and Discord -------------------------------------------------------------------


def test_on_slack_the_line_links_the_cards_permalink(store: StateStore) -> None:
    from connectors.slack.app import build_web_client
    from connectors.slack.digest import SlackDigestChannel
    from connectors.slack.render import validate_slack_message
    from tests.fakes.slack_api import FakeSlackAPI

    with FakeSlackAPI(bot_token="xoxb-test") as api:
        client = build_web_client(SlackSettings(api_base_url=api.base_url), "xoxb-test")
        channel = SlackDigestChannel(client, post_interval=0)
        asyncio.run(publisher(store).publish(HF, channel, "C1"))
        hf_card = next(
            m for m in api.messages if m["metadata"]["event_payload"]["key"].endswith(f"{FA3}#0")
        )
        asyncio.run(publisher(store).publish(LIST, channel, "C1"))
        asyncio.run(publisher(store).publish(LIST, channel, "C2"))
        posts = api.calls_to("chat.postMessage")
        assert all(not validate_slack_message(c.params) for c in posts)
        keys = {(c.params["channel"], c.params["metadata"]["event_payload"]["key"]) for c in posts}
        assert ("C1", f"2024-07-08/en/card:{FA3}#0") not in keys
        assert ("C2", f"2024-07-08/en/card:{FA3}#0") in keys
        header = next(
            c for c in posts
            if c.params["channel"] == "C1"
            and c.params["metadata"]["event_payload"]["key"] == "2024-07-08/en/header#0"
        )  # fmt: skip
        permalink = f"https://fake.slack.test/archives/C1/p{hf_card['ts'].replace('.', '')}"
        assert f"<{permalink}|see its thread>" in json.dumps(header.params["blocks"])
        assert "_already posted here on" in json.dumps(header.params["blocks"])


async def test_on_discord_the_line_links_the_cards_jump_url(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import discord

    from connectors.discord.app import use_api_base
    from connectors.discord.digest import DiscordDigestChannel
    from tests.fakes.discord_api import GUILD_ID, TOKEN, FakeDiscordAPI

    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    with FakeDiscordAPI() as api:
        use_api_base(api.base_url)
        client = discord.Client(intents=discord.Intents.none())
        await client.login(TOKEN)
        try:
            first, second = api.add_channel(), api.add_channel()
            channel = DiscordDigestChannel(client, post_interval=0)
            await publisher(store).publish(HF, channel, first)
            await publisher(store).publish(LIST, channel, first)
            await publisher(store).publish(LIST, channel, second)
        finally:
            await client.close()
        hf_card = next(  # the card; the header mentions the paper too, without a title
            m for m in api.history(first) if "FlashAttention-3" in m["embeds"][0].get("title", "")
        )
        headers = [m for m in api.history(first) if "Top ML papers" in m["content"]]
        assert len(headers) == 1  # the HF digest's header has its own title
        text = json.dumps(headers[0]["embeds"])
        assert f"https://discord.com/channels/{GUILD_ID}/{first}/{hf_card['id']}" in text
        assert "already posted here on" in text

        def cards(channel_id: str) -> list[str]:
            return [m["embeds"][0].get("title", "") for m in api.history(channel_id)]

        assert sum("FlashAttention-3" in title for title in cards(first)) == 1  # HF's card
        assert sum("FlashAttention-3" in title for title in cards(second)) == 1
