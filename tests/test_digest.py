"""The weekly digest: choose, write, render, post exactly once, schedule."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from assistant.conversations import ConversationStore
from assistant.digest.builder import DigestBuilder
from assistant.digest.cards import CardWriter, parse_card_json
from assistant.digest.markdown import render_markdown
from assistant.digest.model import Digest, digest_from_dict, digest_to_dict
from assistant.digest.publisher import DigestPublisher
from assistant.digest.schedule import ScheduleRunner, WeeklySchedule
from assistant.embedding import SentenceTransformerEmbedder
from assistant.errors import ConfigError
from assistant.llm import build_chat_model
from assistant.settings import Settings
from assistant.state import StateStore
from tests.fakes.chat_channel import FakeChannel, FakePlatform, Killed
from tests.fakes.openai_server import FakeOpenAIServer
from tests.test_answering import FA3, Stack

WEEK = date(2024, 7, 8)


@pytest.fixture
def stack(settings: Settings, real_embedder: SentenceTransformerEmbedder) -> Iterator[Stack]:
    s = Stack(settings, real_embedder)
    s.ingest_sample()
    yield s
    s.close()


def builder(stack: Stack, server: FakeOpenAIServer | None = None) -> DigestBuilder:
    s = stack.settings
    if server is not None:
        s.openai.base_url = server.base_url
        s.openai.max_retries = 0
    chat = build_chat_model(s.openai, s.llm) if server is not None else None
    cards = CardWriter(stack.store, stack.searcher, stack.embedder, chat, s.digest.qa_pairs)
    return DigestBuilder(stack.store, cards, s.digest)


@pytest.fixture
def digest(stack: Stack) -> Digest:
    built, _ = builder(stack).build_week(WEEK, "potw", "en")
    return built


# -- building ----------------------------------------------------------------------------


def test_an_offline_digest_has_every_paper_in_list_order_with_cards(
    stack: Stack, digest: Digest
) -> None:
    listed = [p.paper_id for p in stack.store.papers(week=WEEK, source="potw")]
    assert [c.paper_id for c in digest.cards] == listed[:10]
    assert [c.rank for c in digest.cards] == list(range(1, len(digest.cards) + 1))
    first = digest.cards[0]
    assert first.paper_id == FA3 and first.url == f"https://arxiv.org/abs/{FA3}"
    assert first.takeaway and first.summary
    assert len(first.qa) == 10
    supported = [q for q in first.qa if q.supported]
    assert supported, "some questions are answered from the paper"
    for pair in supported:
        assert (
            pair.source is not None
            and pair.source.quote
            in first.summary + " ".join(c.text for c in stack.store.fulltext_chunks(FA3))
        ) or pair.source.quote in (stack.store.get_paper(FA3).description or "")  # type: ignore[union-attr]
    answers = [q.answer for q in supported]
    assert len(answers) == len(set(answers)), "no sentence answers two questions"
    assert first.authors == () and first.published is None  # unknown offline, never invented


def test_unknown_metadata_renders_as_unknown(digest: Digest) -> None:
    text = render_markdown(digest)
    assert "Top ML papers of the week, Jul 8 – Jul 14, 2024" in text
    assert "unknown" in text


def test_cards_are_cached_until_the_paper_changes(stack: Stack) -> None:
    build = builder(stack)
    _, first = build.build_week(WEEK, "potw", "en")
    _, second = build.build_week(WEEK, "potw", "en")
    assert first.from_cache == 0 and second.from_cache == second.cards == first.cards
    stack.store.record_indexed([(FA3, "a-new-version", stack.embedder.name, 3)])
    _, third = build.build_week(WEEK, "potw", "en")
    assert third.from_cache == third.cards - 1


def test_json_round_trip(digest: Digest) -> None:
    data = json.loads(json.dumps(digest_to_dict(digest)))
    assert digest_from_dict(data).cards == digest.cards
    paper = data["papers"][0]
    assert set(paper) >= {
        "rank",
        "paper_id",
        "title",
        "url",
        "authors",
        "published",
        "updated",
        "categories",
        "takeaway",
        "summary",
        "qa",
    }
    assert set(paper["qa"][0]) == {"question", "answer", "supported", "source"}


def test_an_empty_week_builds_an_empty_digest(stack: Stack) -> None:
    empty, report = builder(stack).build_week(date(2020, 1, 6), "potw", "en")
    assert empty.cards == () and report.notes


# -- with an LLM -------------------------------------------------------------------------


def card_reply(body: dict[str, Any]) -> str:
    """A fake model that writes Japanese cards; its 3rd answer cites nothing (unsupported)
    and its 4th cites a passage that does not say it."""
    user = body["messages"][-1]["content"]
    questions = [line.split(". ", 1)[1] for line in user.split("Questions:\n")[1].splitlines()]
    qa = []
    for i, question in enumerate(questions):
        if i == 2:
            qa.append({"question": question, "answer": "月面で訓練されました。", "passages": []})
        elif i == 3:
            qa.append(
                {
                    "question": question,
                    "answer": "The model was trained on the moon by astronauts using solar power.",
                    "passages": [1],
                }
            )
        else:
            qa.append(
                {
                    "question": question,
                    "answer": "FP8 attention stays accurate thanks to per-block scaling "
                    "and a random orthogonal rotation of queries and keys.",
                    "passages": [1],
                }
            )
    card = {
        "takeaway": "Hopper GPU向けに注意機構を高速化します。",
        "summary": "FlashAttention-3はH100で高速なアテンションを実現します。",
        "qa": qa,
    }
    return "```json\n" + json.dumps(card, ensure_ascii=False) + "\n```"


def test_llm_cards_come_in_the_language_with_checked_sources(stack: Stack) -> None:
    stack.settings.digest.top_n = 1
    with FakeOpenAIServer(reply=card_reply) as server:
        digest, report = builder(stack, server).build_week(WEEK, "potw", "ja")
        request = server.chat_requests[-1]
        assert "Write in Japanese" in request.messages[0]["content"]
        assert "<passages>" in request.messages[-1]["content"]
    card = digest.cards[0]
    assert digest.generator == "llm" and report.llm_calls == 1 and report.llm_tokens > 0
    assert card.takeaway.startswith("Hopper")
    assert card.qa[0].question == "この論文はどんな問題に取り組んでいますか？"
    assert card.qa[0].supported and card.qa[0].source is not None
    assert card.qa[0].source.quote in (stack.store.get_paper(FA3).description or "")  # type: ignore[union-attr]
    assert not card.qa[2].supported  # cites nothing
    assert not card.qa[3].supported  # cites a passage that does not support it
    text = render_markdown(digest)
    assert "月面" not in text and "astronauts" not in text  # not shown as fact
    assert "論文の本文中に該当する記述は見つかりませんでした" in text


def test_a_broken_llm_card_falls_back_to_an_extractive_one(stack: Stack) -> None:
    stack.settings.digest.top_n = 1
    with FakeOpenAIServer(reply=lambda body: "Sorry, I cannot help with that.") as server:
        digest, report = builder(stack, server).build_week(WEEK, "potw", "en")
    assert digest.cards[0].takeaway and report.llm_calls == 0


def test_parse_card_json_tolerates_fences_and_refuses_garbage() -> None:
    assert parse_card_json('Here:\n```json\n{"takeaway": "x"}\n```') == {"takeaway": "x"}
    from assistant.llm import LLMUnavailableError

    for bad in ("no json here", "{not json}", "[1, 2]"):
        with pytest.raises(LLMUnavailableError):
            parse_card_json(bad)


# -- posting exactly once ----------------------------------------------------------------


def publisher(store: StateStore, claim_seconds: float = 0.3) -> DigestPublisher:
    return DigestPublisher(
        store, ConversationStore(store), claim_seconds=claim_seconds, poll_seconds=0.05
    )


def assert_exactly_once(world: FakePlatform, digest: Digest, channel: str = "C1") -> None:
    keys = world.keys(channel)
    assert len(keys) == len(set(keys)), f"double posts: {keys}"
    expected = ["header#0"] + [f"card:{c.paper_id}#{i}" for c in digest.cards for i in (0, 1)]
    assert [k.split("/", 2)[2] for k in keys] == expected


@pytest.mark.parametrize("die_after", [3, 4])
def test_a_publisher_killed_after_its_third_post_resumes_without_double_posts(
    stack: Stack, digest: Digest, die_after: int
) -> None:
    world = FakePlatform()
    with pytest.raises(Killed):  # the platform accepted the post; the process died
        asyncio.run(publisher(stack.store).publish(digest, FakeChannel(world, die_after), "C1"))
    assert len(world.messages) == die_after
    report = asyncio.run(publisher(stack.store).publish(digest, FakeChannel(world), "C1"))
    assert report.recovered == 1  # found on the platform, not posted again
    assert_exactly_once(world, digest)
    again = asyncio.run(publisher(stack.store).publish(digest, FakeChannel(world), "C1"))
    assert again.posted == 0 and again.already_posted == len(world.messages)


def test_continuations_go_in_the_cards_thread_and_threads_map_to_papers(
    stack: Stack, digest: Digest
) -> None:
    world = FakePlatform()
    asyncio.run(publisher(stack.store).publish(digest, FakeChannel(world), "C1"))
    by_key = {m["key"].split("/", 2)[2]: m for m in world.messages}
    card, rest = by_key[f"card:{FA3}#0"], by_key[f"card:{FA3}#1"]
    assert card["thread"] is None and rest["thread"] == card["id"]
    conversation = ConversationStore(stack.store).get("fake", "C1", card["id"])
    assert conversation is not None and conversation.scope.paper_ids == (FA3,)
    header = ConversationStore(stack.store).get("fake", "C1", by_key["header#0"]["id"])
    assert header is not None and len(header.scope.paper_ids) == len(digest.cards)


def test_two_publishers_racing_on_one_channel_post_once(
    stack: Stack, digest: Digest, settings: Settings
) -> None:
    world = FakePlatform()
    errors: list[BaseException] = []

    def run() -> None:
        store = StateStore.open(settings.state_path)  # its own connection, like a replica
        try:
            asyncio.run(
                publisher(store, claim_seconds=30).publish(
                    digest, FakeChannel(world, delay=0.01), "C1"
                )
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert_exactly_once(world, digest)


def test_different_channels_each_get_the_digest(stack: Stack, digest: Digest) -> None:
    world = FakePlatform()
    for target in ("C1", "C2"):
        asyncio.run(publisher(stack.store).publish(digest, FakeChannel(world), target))
    assert_exactly_once(world, digest, "C1")
    assert_exactly_once(world, digest, "C2")


def test_empty_week_posts_a_short_note_or_nothing(stack: Stack) -> None:
    empty = Digest(date(2020, 1, 6), "en", "potw", ())
    world = FakePlatform()
    asyncio.run(publisher(stack.store).publish(empty, FakeChannel(world), "C1"))
    assert len(world.messages) == 1 and "No papers" in world.messages[0]["text"]
    skipping = DigestPublisher(stack.store, ConversationStore(stack.store), empty_week="skip")
    asyncio.run(skipping.publish(empty, FakeChannel(world), "C2"))
    assert world.keys("C2") == []


# -- schedule ----------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_missed_run_is_caught_up_once(store: StateStore) -> None:
    runs: list[datetime] = []

    async def job(slot: datetime) -> None:
        runs.append(slot)

    schedule = WeeklySchedule("0 9 * * mon", "Asia/Tokyo")
    clock = Clock(datetime(2024, 7, 17, 3, 0, tzinfo=UTC))  # Wednesday: two slots missed
    runner = ScheduleRunner(store, schedule, job, clock)
    assert asyncio.run(runner.catch_up()) is not None
    assert [r.isoformat() for r in runs] == ["2024-07-15T09:00:00+09:00"]  # only the latest
    assert asyncio.run(runner.catch_up()) is None  # a restart does not repeat it
    again = ScheduleRunner(store, schedule, job, clock)
    assert asyncio.run(again.catch_up()) is None
    clock.now += timedelta(days=6)  # past the next Monday 09:00 in Tokyo
    assert asyncio.run(again.catch_up()) is not None
    assert len(runs) == 2
    assert runner.next_run() > clock.now


def test_a_failed_run_is_retried_at_the_next_start(store: StateStore) -> None:
    attempts: list[datetime] = []

    async def flaky(slot: datetime) -> None:
        attempts.append(slot)
        if len(attempts) == 1:
            raise RuntimeError("Slack was down")

    clock = Clock(datetime(2024, 7, 15, 1, 0, tzinfo=UTC))
    schedule = WeeklySchedule("0 9 * * mon", "Asia/Tokyo")
    ScheduleRunner(store, schedule, flaky, clock)
    asyncio.run(ScheduleRunner(store, schedule, flaky, clock).catch_up())
    asyncio.run(ScheduleRunner(store, schedule, flaky, clock).catch_up())
    asyncio.run(ScheduleRunner(store, schedule, flaky, clock).catch_up())
    assert len(attempts) == 2


@pytest.mark.parametrize(("expr", "zone"), [("0 9 * * mon", "Mars/Olympus"), ("nope", "UTC")])
def test_a_bad_schedule_names_the_setting(expr: str, zone: str) -> None:
    with pytest.raises(ConfigError, match="PAPERBOT_DIGEST_"):
        WeeklySchedule(expr, zone)


def test_the_last_slot_respects_the_time_zone() -> None:
    schedule = WeeklySchedule("0 9 * * mon", "Asia/Tokyo")
    # Monday 00:30 UTC is Monday 09:30 in Tokyo: this Monday's slot has passed
    now = datetime(2024, 7, 15, 0, 30, tzinfo=UTC)
    assert schedule.last_slot(now) == datetime(2024, 7, 15, 0, 0, tzinfo=UTC)
    assert schedule.next_slot(now) == datetime(2024, 7, 22, 0, 0, tzinfo=UTC)


# -- the command line ---------------------------------------------------------------------


def test_digest_build_show_and_post_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import ROOT
    from tests.test_cli import json_lines, run

    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(tmp_path / "data"))
    sample = ROOT / "assistant" / "data" / "sample_potw.md"
    code, out, err = run(
        capsys,
        "digest",
        "build",
        "--source",
        "potw",
        "--file",
        str(sample),
        "--week",
        "2024-07-08",
        "--offline",
        "--json",
    )
    assert code == 0, err
    assert json_lines(out)[0]["papers"] == 10
    code, out, _ = run(capsys, "digest", "show", "--format", "json")
    shown = json_lines(out)[0]
    assert shown["week"] == "2024-07-08" and shown["language"] == "en"
    assert [p["rank"] for p in shown["papers"]] == list(range(1, 11))  # type: ignore[index]
    first = shown["papers"][0]  # type: ignore[index]
    assert first["paper_id"] == FA3 and first["takeaway"] and first["summary"] and first["qa"]
    code, out, _ = run(capsys, "digest", "show", "--week", "2024-07-10", "--format", "markdown")
    assert (code == 0 and "## 1. [FlashAttention-3]" in out) or "FlashAttention-3" in out
    for fmt in ("slack", "discord"):
        code, out, _ = run(capsys, "digest", "show", "--format", fmt)
        assert code == 0 and json_lines(out)[0]["cards"]
    code, out, _ = run(capsys, "digest", "post", "--channel", "console:team", "--dry-run")
    assert out.count("would post") == 11
    code, _, err = run(capsys, "digest", "post", "--channel", "console:team")
    assert code == 0 and "11 posted" in err
    code, _, err = run(capsys, "digest", "post", "--channel", "console:team")
    assert "0 posted, 11 already posted" in err
    code, _, err = run(capsys, "digest", "post", "--channel", "slack:C1")
    assert code == 2 and "paperbot serve" in err


def test_serve_catches_up_a_missed_digest_for_console_subscribers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import ROOT
    from tests.test_cli import run

    data = tmp_path / "data"
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(data))
    sample = ROOT / "assistant" / "data" / "sample_potw.md"
    monkeypatch.setenv("PAPERBOT_INGEST_POTW_URL", str(sample))  # "online" list, locally
    monkeypatch.setenv("PAPERBOT_ARXIV_API_URL", "http://127.0.0.1:9/api")  # arXiv down
    monkeypatch.setenv("PAPERBOT_ARXIV_MAX_RETRIES", "0")
    store = StateStore.open(data / "paperbot.sqlite3")
    ConversationStore(store).subscribe("console", "team", "admin")
    store.close()
    code, out, err = run(capsys, "serve", "--catch-up-only")
    assert code == 0, err
    assert "caught up the digest slot" in err
    assert "FlashAttention-3" in out
    code, out, err = run(capsys, "serve", "--catch-up-only")
    assert "caught up" not in err and "FlashAttention-3" not in out
