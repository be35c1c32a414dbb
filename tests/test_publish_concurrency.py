"""Exactly-once digest posting under concurrency: many runs in one process, runs in two
processes sharing the data dir, and a publisher process killed with SIGKILL mid-post.

A claim belongs to one publishing run, not to a process (issue 15: two `/paper digest
post` in one process both thought they held the same claim and posted everything twice).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from assistant.conversations import ConversationStore
from assistant.core import post_summary
from assistant.digest.model import Digest, digest_to_dict
from assistant.digest.publisher import DigestPublisher, PublishReport
from assistant.digest.runs import PublisherRuns
from assistant.settings import SlackSettings
from assistant.state import StateStore
from tests.conftest import ROOT
from tests.digests import hand_digest
from tests.fakes.chat_channel import FakeChannel, FakePlatform, Killed

DIGEST = hand_digest()
EXPECTED = ["header#0"] + [f"card:{c.paper_id}#{i}" for c in DIGEST.cards for i in (0, 1)]


def publisher(store: StateStore, **kwargs: float) -> DigestPublisher:
    kwargs.setdefault("poll_seconds", 0.02)
    return DigestPublisher(store, ConversationStore(store), **kwargs)  # type: ignore[arg-type]


def assert_once_in_order(world: FakePlatform, channel: str = "C1") -> None:
    keys = [k.split("/", 2)[2] for k in world.keys(channel)]
    twice = [k for k, n in Counter(keys).items() if n > 1]
    assert not twice, f"posted more than once: {twice}"
    assert keys == EXPECTED


# -- one process -----------------------------------------------------------------------------


@pytest.mark.parametrize("runs", [2, 8])
def test_concurrent_posts_from_worker_threads_of_one_process_post_each_message_once(
    store: StateStore, runs: int
) -> None:
    """Like a connector's worker threads each running `/paper digest post` for one week
    and channel, through the one publisher of the process."""
    world = FakePlatform()
    shared = publisher(store)
    reports: list[PublishReport] = []
    errors: list[BaseException] = []

    def post() -> None:
        try:
            channel = FakeChannel(world, delay=0.005)
            reports.append(asyncio.run(shared.publish(DIGEST, channel, "C1")))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert_once_in_order(world)
    assert sum(r.posted for r in reports) == len(EXPECTED)
    assert all(r.posted + r.already_posted == len(EXPECTED) for r in reports)


@pytest.mark.parametrize("runs", [2, 8])
def test_concurrent_posts_on_one_event_loop_post_each_message_once(
    store: StateStore, runs: int
) -> None:
    world = FakePlatform()
    shared = publisher(store)

    async def all_runs() -> list[PublishReport]:
        return await asyncio.gather(
            *(shared.publish(DIGEST, FakeChannel(world, delay=0.005), "C1") for _ in range(runs))
        )

    reports = asyncio.run(all_runs())
    assert_once_in_order(world)
    assert sum(r.posted for r in reports) == len(EXPECTED)


def test_a_run_waiting_for_another_says_so_and_the_reply_tells_how_long(
    store: StateStore,
) -> None:
    world = FakePlatform()
    shared = publisher(store)
    told: list[str] = []

    async def both() -> list[PublishReport]:
        slow = shared.publish(DIGEST, FakeChannel(world, delay=0.15), "C1")
        first = asyncio.ensure_future(slow)
        await asyncio.sleep(0.05)  # the first run holds the header's claim now
        second = await shared.publish(DIGEST, FakeChannel(world), "C1", notify=told.append)
        return [await first, second]

    _, second = asyncio.run(both())
    assert_once_in_order(world)
    assert len(told) == 1 and "waiting for it" in told[0]
    assert second.waited_seconds > 0 and second.posted + second.already_posted == len(EXPECTED)
    second.waited_seconds = 1.4
    assert "waited 1 s" in post_summary("Jul 8 – Jul 14, 2024", second)


def test_a_run_that_died_in_this_process_is_resumed_after_the_settle_time_not_minutes(
    store: StateStore,
) -> None:
    """The run dies after the platform took its 3rd post, before recording it (a timeout,
    an exception): the next run takes over once its in-flight post could have landed."""
    world = FakePlatform()
    with pytest.raises(Killed):
        asyncio.run(publisher(store).publish(DIGEST, FakeChannel(world, die_after=3), "C1"))
    told: list[str] = []
    started = time.monotonic()
    report = asyncio.run(
        publisher(store, settle_seconds=0.5).publish(
            DIGEST, FakeChannel(world), "C1", notify=told.append
        )
    )
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 5, elapsed
    assert report.resumed == 1 and report.recovered == 1 and report.already_posted == 2
    assert told and "interrupted" in told[0]
    assert "interrupted post was resumed" in post_summary("Jul 8 – Jul 14, 2024", report)
    assert_once_in_order(world)


def test_a_claim_of_a_live_run_in_another_process_is_not_taken_over(
    store: StateStore, tmp_path: Path
) -> None:
    """A registered run whose process is alive and beating holds its claims."""
    runs = PublisherRuns(store, stale_seconds=30)
    owner = runs.start()
    assert not runs.free_at(owner, time.time()).dead
    assert runs.free_at(owner, time.time()).free_at > time.time() + 20
    runs.end(owner)
    ended = runs.free_at(owner, time.time())
    assert ended.dead and ended.free_at <= time.time() + runs.settle_seconds


def test_a_run_of_a_dead_process_is_dead_at_once(store: StateStore) -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    pid = int(child.stdout)
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO publisher_runs (owner, host, pid, process_start, started_at, beat_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                f"{os.uname().nodename}:{pid}:dead",
                os.uname().nodename,
                pid,
                "1",
                time.time(),
                time.time(),
            ),
        )
    holder = PublisherRuns(store, stale_seconds=30).free_at(
        f"{os.uname().nodename}:{pid}:dead", time.time()
    )
    assert holder.dead and holder.free_at < time.time() + 10


# -- two processes sharing the data dir --------------------------------------------------------


def worker(data: Path, digest_file: Path, runs: int, delay: float) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.publish_worker", str(data), str(digest_file)]
    return subprocess.Popen(
        [*command, "team", str(runs), str(delay)],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def console_keys(data: Path) -> list[str]:
    log = data / "console_posts.jsonl"
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["key"].split("/", 2)[2] for line in lines if line.strip()]


def console_expected(digest: Digest) -> list[str]:
    return ["header#0"] + [f"card:{c.paper_id}#0" for c in digest.cards]


@pytest.fixture
def shared(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    StateStore.open(data / "paperbot.sqlite3").close()  # migrated once, before the race
    digest_file = tmp_path / "digest.json"
    digest_file.write_text(json.dumps(digest_to_dict(DIGEST)), encoding="utf-8")
    return data, digest_file


def finished(process: subprocess.Popen[str]) -> list[dict[str, object]]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    reports: list[dict[str, object]] = json.loads(out.strip().splitlines()[-1])
    return reports


@pytest.mark.slow
def test_eight_posts_in_two_processes_sharing_the_data_dir_post_each_message_once(
    shared: tuple[Path, Path],
) -> None:
    data, digest_file = shared
    processes = [worker(data, digest_file, runs=4, delay=0.05) for _ in range(2)]
    reports = [r for p in processes for r in finished(p)]
    assert len(reports) == 8
    keys = console_keys(data)
    assert keys == console_expected(DIGEST), keys
    assert sum(int(r["posted"]) for r in reports) == len(keys)  # type: ignore[call-overload]


@pytest.mark.slow
def test_a_publisher_killed_with_sigkill_is_resumed_by_the_next_posts_within_seconds(
    shared: tuple[Path, Path],
) -> None:
    data, digest_file = shared
    victim = worker(data, digest_file, runs=2, delay=0.4)
    deadline = time.monotonic() + 60
    while len(console_keys(data)) < 3:
        assert victim.poll() is None and time.monotonic() < deadline, "the victim never posted"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert 3 <= len(console_keys(data)) < len(console_expected(DIGEST))

    started = time.monotonic()
    restarted = [worker(data, digest_file, runs=4, delay=0.05) for _ in range(2)]
    reports = [r for p in restarted for r in finished(p)]
    elapsed = time.monotonic() - started
    keys = console_keys(data)
    assert keys == console_expected(DIGEST), keys
    assert any(int(r["resumed"]) for r in reports)  # type: ignore[call-overload]
    # the dead publisher's claim is noticed from its process, not after a 2-minute timeout
    assert elapsed < 30, elapsed


# -- through the Slack connector's channel -------------------------------------------------------


@pytest.mark.parametrize("runs", [2, 8])
def test_concurrent_digest_posts_to_slack_call_post_message_once_per_message(
    store: StateStore, runs: int
) -> None:
    """Issue 15's case: `/paper digest post 2024-07-08` several times at once in one
    channel, each from a worker thread of one serve process with one Slack channel."""
    from connectors.slack.app import build_web_client
    from connectors.slack.digest import SlackDigestChannel
    from connectors.slack.render import card_messages, header_messages
    from tests.fakes.slack_api import FakeSlackAPI

    planned = len(header_messages(DIGEST)) + sum(
        len(card_messages(DIGEST, c)) for c in DIGEST.cards
    )
    with FakeSlackAPI(bot_token="xoxb-test") as api:
        client = build_web_client(SlackSettings(api_base_url=api.base_url), "xoxb-test")
        channel = SlackDigestChannel(client, post_interval=0)
        shared = publisher(store)
        errors: list[BaseException] = []

        def post() -> None:
            try:
                asyncio.run(shared.publish(DIGEST, channel, "C1"))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=post) for _ in range(runs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors
        posts = api.calls_to("chat.postMessage")
        keys = [c.params["metadata"]["event_payload"]["key"] for c in posts]
        assert len(keys) == len(set(keys)) == planned
