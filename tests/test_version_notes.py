"""New versions are news: when arXiv enrichment sees a new version of a paper whose card
was posted, the card's thread gets one short note (the version, its date, what changed),
exactly once per channel and version, through the digest's exactly-once publisher: on
Slack, Discord and the console, a publisher that dies mid-note included."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.conversations import ConversationStore
from assistant.digest.ledger import PostedRef
from assistant.digest.markdown import render_update_markdown
from assistant.digest.publisher import DigestPublisher
from assistant.index import OpenIndex
from assistant.ingest import Ingestor
from assistant.models import PaperRecord
from assistant.settings import Settings, SlackSettings
from assistant.sources.arxiv_api import ArxivClient, ArxivSource
from assistant.state import StateStore
from assistant.versions import VersionLog, changed_sentences, fulltext_change
from tests.digests import hand_digest
from tests.fakes.arxiv_server import FakeArxivServer, FakePaper
from tests.fakes.chat_channel import FakeChannel, FakePlatform, Killed
from tests.fakes.embedder import FakeEmbedder
from tests.pdfs import make_pdf

FA3 = "2407.08608"
DIGEST = hand_digest(paper_ids=(FA3, "2407.04153"))
ABSTRACT_V1 = (
    "Attention is the bottleneck of long-context transformers. We make it faster on Hopper "
    "GPUs with asynchrony and FP8. Our kernel reaches 740 TFLOPs in FP16."
)
ABSTRACT_V2 = (
    "Attention is the bottleneck of long-context transformers. We make it faster on Hopper "
    "GPUs with asynchrony and FP8. Our kernel reaches 840 TFLOPs in FP16 after tuning."
)
BODY_V1 = ["# 1 Introduction", *[f"Line {n} of the first version's text." for n in range(30)]]
BODY_V2 = [*BODY_V1[:20], *[f"Line {n} was rewritten for v2." for n in range(20, 36)]]


def v(version: int, abstract: str, updated: datetime) -> FakePaper:
    return FakePaper(FA3, version=version, title="FlashAttention-3", summary=abstract,
                     updated=updated)  # fmt: skip


def publisher(store: StateStore) -> DigestPublisher:
    return DigestPublisher(store, ConversationStore(store), poll_seconds=0.02, settle_seconds=0.1)


@pytest.fixture
def arxiv() -> Iterator[FakeArxivServer]:
    with FakeArxivServer([v(1, ABSTRACT_V1, datetime(2024, 7, 11, tzinfo=UTC))]) as server:
        server.pdfs[f"{FA3}v1"] = make_pdf([BODY_V1])
        server.pdfs[f"{FA3}v2"] = make_pdf([BODY_V2])
        yield server


@pytest.fixture
def online(
    settings: Settings, store: StateStore, index: OpenIndex, fake_embedder: FakeEmbedder,
    arxiv: FakeArxivServer,
) -> Iterator[Ingestor]:  # fmt: skip
    settings.arxiv.api_url = arxiv.url
    settings.arxiv.pdf_base_url = arxiv.pdf_base_url
    settings.arxiv.download_pdfs = True
    with httpx.Client(timeout=5) as http:
        yield Ingestor(
            store,
            index,
            fake_embedder,
            settings.ingest,
            settings.arxiv,
            arxiv=ArxivClient(settings.arxiv, sleep=lambda _: None),
            http=http,
            sleep=lambda _: None,
        )


def new_version_seen(store: StateStore, online: Ingestor, arxiv: FakeArxivServer) -> None:
    """arXiv gets v2 of FA3 (one sentence of the abstract and a third of the text changed)."""
    arxiv.papers[FA3] = v(2, ABSTRACT_V2, datetime(2024, 7, 20, tzinfo=UTC))
    report = online.check_versions(VersionLog(store).watched(days=60))
    assert report.new_versions == 1, report.notes


# -- what changed ----------------------------------------------------------------------------


def test_the_changed_sentences_and_the_size_of_a_full_text_change() -> None:
    removed, added = changed_sentences(ABSTRACT_V1, ABSTRACT_V2)
    assert removed == ["Our kernel reaches 740 TFLOPs in FP16."]
    assert added == ["Our kernel reaches 840 TFLOPs in FP16 after tuning."]
    assert changed_sentences("Same. Text.", "Same.  Text.") == ([], [])
    change = fulltext_change(["a b c d e f g h"], ["a b c X Y f g h i"])
    assert (change.words_before, change.words_after, change.changed_words) == (8, 9, 3)


def test_only_a_newer_version_from_arxiv_is_news(store: StateStore) -> None:
    def arxiv_record(version: int, abstract: str) -> PaperRecord:
        return PaperRecord(FA3, "arxiv", title="FlashAttention-3", version=version,
                           abstract=abstract, updated=date(2024, 7, 10 + version))  # fmt: skip

    store.upsert_record(arxiv_record(1, "First words."))
    store.upsert_record(PaperRecord(FA3, "potw", title="FA3", version=3))  # a list's link
    assert VersionLog(store).updates() == []
    store.upsert_record(arxiv_record(1, "First words."))  # the same version again
    store.upsert_record(arxiv_record(3, "Third words."))
    (update,) = VersionLog(store).updates()
    assert (update.version, update.previous_version, update.updated) == (3, 1, date(2024, 7, 13))
    assert update.abstract_changes() == (["First words."], ["Third words."])
    store.upsert_record(arxiv_record(2, "Second words."))  # an older snapshot: no news
    assert len(VersionLog(store).updates()) == 1


# -- the note in the thread, exactly once ------------------------------------------------------


def test_a_new_version_posts_one_note_in_each_cards_thread_even_across_a_crash(
    store: StateStore, online: Ingestor, arxiv: FakeArxivServer
) -> None:
    online.ingest(ArxivSource(online._arxiv, [FA3]))  # type: ignore[arg-type]
    assert store.index_status(FA3).fulltext == "indexed"
    world = FakePlatform()
    for channel in ("C1", "C2"):
        asyncio.run(publisher(store).publish(DIGEST, FakeChannel(world), channel))
    new_version_seen(store, online, arxiv)
    update = VersionLog(store).get(FA3, 2)
    assert update is not None and update.fulltext is not None
    assert update.fulltext.changed_words >= 16  # the rewritten lines
    asyncio.run(publisher(store).publish(DIGEST, FakeChannel(world), "C3"))  # after: no note

    with pytest.raises(Killed):  # the first note went out; the publisher died before recording
        asyncio.run(publisher(store).publish_updates(FakeChannel(world, die_after=1)))
    report = asyncio.run(publisher(store).publish_updates(FakeChannel(world)))
    assert report.recovered == 1 and report.posted == 1
    again = asyncio.run(publisher(store).publish_updates(FakeChannel(world)))
    assert again.posted == 0 and again.recovered == 0

    notes = [m for m in world.messages if "/version:" in m["key"]]
    assert sorted(m["channel"] for m in notes) == ["C1", "C2"]
    for note in notes:
        card = next(
            m for m in world.messages
            if m["channel"] == note["channel"] and m["key"].endswith(f"card:{FA3}#0")
        )  # fmt: skip
        assert note["thread"] == card["id"]  # in the card's thread
        assert note["key"] == f"2024-07-08/en/version:{FA3}:v2#0"
    text = str(notes[0]["text"])
    assert "New version: v2 of this paper, dated 2024-07-20 (this card showed v1)." in text
    assert "*was:* Our kernel reaches 740 TFLOPs in FP16." in text
    assert "*now:* Our kernel reaches 840 TFLOPs in FP16 after tuning." in text
    assert f"(https://arxiv.org/abs/{FA3}v2)" in text


def test_when_only_the_full_text_changed_the_note_gives_the_size_of_the_change(
    store: StateStore, online: Ingestor, arxiv: FakeArxivServer
) -> None:
    online.ingest(ArxivSource(online._arxiv, [FA3]))  # type: ignore[arg-type]
    asyncio.run(publisher(store).publish(DIGEST, FakeChannel(FakePlatform()), "C1"))
    arxiv.papers[FA3] = v(2, ABSTRACT_V1, datetime(2024, 7, 20, tzinfo=UTC))
    online.check_versions([FA3])
    world = FakePlatform()
    asyncio.run(publisher(store).publish_updates(FakeChannel(world)))
    (note,) = world.messages
    text = str(note["text"])
    assert "The abstract did not change; in the full text about" in text
    assert "was:" not in text


def test_a_japanese_channel_gets_the_note_in_japanese(store: StateStore) -> None:
    from assistant.digest.model import VersionNote

    note = VersionNote(FA3, "FlashAttention-3", 2, 1, date(2024, 7, 20), "ja", ("Old.",), ("New.",))
    text = render_update_markdown(note)
    assert "新しい版：この論文の v2（2024-07-20）" in text and "*旧:* Old." in text


# -- Slack, Discord and the console ------------------------------------------------------------


class DyingAfterPost:
    """A digest channel whose process dies right after the platform took its next post."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.platform = inner.platform

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def post(self, channel: str, payload: Any, key: str, thread: str | None) -> PostedRef:
        await self._inner.post(channel, payload, key, thread)
        raise Killed(key)


def seen_v2(store: StateStore) -> None:
    """arXiv enrichment sees v2 of FA3 (stored v1 first)."""
    for version, abstract in ((1, ABSTRACT_V1), (2, ABSTRACT_V2)):
        store.upsert_record(
            PaperRecord(FA3, "arxiv", title="FlashAttention-3", version=version,
                        abstract=abstract, updated=date(2024, 7, 10 * version))
        )  # fmt: skip


def test_on_slack_the_note_is_a_reply_in_the_cards_thread_once(store: StateStore) -> None:
    from connectors.slack.app import build_web_client
    from connectors.slack.digest import SlackDigestChannel
    from connectors.slack.render import validate_slack_message
    from tests.fakes.slack_api import FakeSlackAPI

    store.upsert_record(PaperRecord(FA3, "arxiv", title="FlashAttention-3", version=1,
                                    abstract=ABSTRACT_V1))  # fmt: skip
    with FakeSlackAPI(bot_token="xoxb-test") as api:
        client = build_web_client(SlackSettings(api_base_url=api.base_url), "xoxb-test")
        channel = SlackDigestChannel(client, post_interval=0)
        asyncio.run(publisher(store).publish(DIGEST, channel, "C1"))
        card = next(m for m in api.messages if m["metadata"]["event_payload"]["key"].endswith(
            f"card:{FA3}#0"))  # fmt: skip
        seen_v2(store)
        with pytest.raises(Killed):
            asyncio.run(publisher(store).publish_updates(DyingAfterPost(channel)))  # type: ignore[arg-type]
        report = asyncio.run(publisher(store).publish_updates(channel))
        assert report.recovered == 1 and report.posted == 0  # found in the thread, not reposted
        notes = [m for m in api.messages if "/version:" in m["metadata"]["event_payload"]["key"]]
        assert len(notes) == 1 and notes[0]["thread_ts"] == card["ts"]
        (call,) = [c for c in api.calls_to("chat.postMessage") if "/version:" in json.dumps(
            c.params["metadata"])]  # fmt: skip
        assert not validate_slack_message(call.params)
        assert "New version: v2" in json.dumps(call.params["blocks"])


async def test_on_discord_the_note_goes_in_the_cards_thread_once(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import discord

    from connectors.discord.app import use_api_base
    from connectors.discord.digest import DiscordDigestChannel
    from connectors.discord.render import validate_discord_message
    from tests.fakes.discord_api import TOKEN, FakeDiscordAPI

    store.upsert_record(PaperRecord(FA3, "arxiv", title="FlashAttention-3", version=1,
                                    abstract=ABSTRACT_V1))  # fmt: skip
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    with FakeDiscordAPI() as api:
        use_api_base(api.base_url)
        client = discord.Client(intents=discord.Intents.none())
        await client.login(TOKEN)
        try:
            target = api.add_channel()
            channel = DiscordDigestChannel(client, post_interval=0)
            await publisher(store).publish(DIGEST, channel, target)
            seen_v2(store)
            with pytest.raises(Killed):
                await publisher(store).publish_updates(DyingAfterPost(channel))  # type: ignore[arg-type]
            report = await publisher(store).publish_updates(channel)
        finally:
            await client.close()
        assert report.recovered == 1 and report.posted == 0
        card = next(m for m in api.history(target)
                    if FA3 in json.dumps(m["embeds"]) and m["embeds"][0].get("title"))  # fmt: skip
        thread = str(card["thread"]["id"])
        notes = [m for m in api.history(thread) if "New version" in m["content"]]
        assert len(notes) == 1
        body = {k: notes[0][k] for k in ("content", "embeds")}
        assert not validate_discord_message(body)


def test_in_the_console_ingest_versions_then_digest_updates_posts_one_note(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arxiv: FakeArxivServer,
) -> None:
    from tests.test_cli import json_lines, run

    data = tmp_path / "data"
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(data))
    monkeypatch.setenv("PAPERBOT_ARXIV_API_URL", arxiv.url)
    monkeypatch.setenv("PAPERBOT_ARXIV_PDF_BASE_URL", arxiv.pdf_base_url)
    monkeypatch.setenv("PAPERBOT_ARXIV_DELAY_SECONDS", "0")
    code, _, err = run(capsys, "ingest", "arxiv", FA3)
    assert code == 0, err
    store = StateStore.open(data / "paperbot.sqlite3")
    asyncio.run(publisher(store).publish(DIGEST, console_channel(data), "team"))
    store.close()
    arxiv.papers[FA3] = v(2, ABSTRACT_V2, datetime(2024, 7, 20, tzinfo=UTC))
    code, out, err = run(capsys, "ingest", "versions", "--json")
    assert code == 0, err
    assert json_lines(out)[0]["new_versions"] == 1
    code, out, err = run(capsys, "digest", "updates", "--channel", "console:team")
    assert code == 0 and "1 version note(s) posted" in err, err
    assert "New version: v2 of this paper" in out
    code, out, err = run(capsys, "digest", "updates", "--channel", "console:team")
    assert "0 version note(s) posted" in err
    log = [json.loads(x) for x in (data / "console_posts.jsonl").read_text().splitlines()]
    (note,) = [e for e in log if "/version:" in e["key"]]
    card = next(e for e in log if e["key"].endswith(f"card:{FA3}#0"))
    assert note["thread"] == card["message_id"]


def console_channel(data: Path) -> Any:
    import io

    from rich.console import Console

    from connectors.console.digest import ConsoleDigestChannel

    return ConsoleDigestChannel(Console(file=io.StringIO()), data / "console_posts.jsonl")


def test_the_note_is_never_for_a_card_posted_after_the_version_was_seen(
    store: StateStore,
) -> None:
    seen_v2(store)
    world = FakePlatform()
    asyncio.run(publisher(store).publish(replace(DIGEST), FakeChannel(world), "C9"))
    report = asyncio.run(publisher(store).publish_updates(FakeChannel(world)))
    assert report.posted == 0


def test_an_arxiv_outage_in_one_run_does_not_stop_later_runs_from_asking(
    settings: Settings, store: StateStore, online: Ingestor, arxiv: FakeArxivServer
) -> None:
    """`paperbot serve` keeps one ingestor: last week's outage must not silence arXiv."""
    from tests.fakes.sources import RecordsSource

    settings.arxiv.max_retries = 0
    arxiv.fail_next(1, status=503)
    listed = online.ingest(RecordsSource([PaperRecord(FA3, "potw", title="FA3")], "potw"))
    assert listed.arxiv_unreachable and listed.enriched == 0
    later = online.ingest(RecordsSource([PaperRecord(FA3, "potw", title="FA3")], "potw"))
    assert later.enriched == 1 and store.get_paper(FA3).version == 1  # type: ignore[union-attr]
