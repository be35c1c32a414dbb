"""Benchmarks for issues 14 and 15: first responses while the workers are full, and fairness.

(1) Every kind of interaction (slash commands, buttons, the ask form, autocomplete, a
thread message) on Slack and Discord, idle (the baseline) and while slow LLM answers (6 s
each, more than the four workers) fill the work queue: the time until the platform gets
its acknowledgement or first response (Slack: the response to its request, and the
modal's `views.open` for the ask button; Discord: the interaction callback). Both
platforms give up after 3 s.
(2) Fairness: user B's `/paper help` and `/paper search`, idle and while user A has 20
slow questions queued (2.5 s each): the time until B's reply reached the platform.

Real libraries against the fake platform APIs and a fake LLM on 127.0.0.1, the core over
the sample week. Run: `python bench/interactions.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import discord  # noqa: E402

from assistant.digest.publisher import DigestPublisher  # noqa: E402
from assistant.embedding import SentenceTransformerEmbedder  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from bench.run import OUT, percentile, write_doc  # noqa: E402
from connectors.discord.digest import DiscordDigestChannel  # noqa: E402
from connectors.slack.digest import SlackDigestChannel  # noqa: E402
from tests.fakes.discord_api import FakeDiscordAPI  # noqa: E402
from tests.fakes.openai_server import FakeOpenAIServer  # noqa: E402
from tests.fakes.slack_api import FakeSlackAPI  # noqa: E402
from tests.test_answering import FA3, Stack  # noqa: E402
from tests.test_discord import CALLBACK, FOLLOWUP, card_root, started  # noqa: E402
from tests.test_discord import Bot as DiscordBot  # noqa: E402
from tests.test_discord import digest_builder as discord_builder  # noqa: E402
from tests.test_slack import TOKEN, WEEK, card_ts  # noqa: E402
from tests.test_slack import Bot as SlackBot  # noqa: E402
from tests.test_slack import digest_builder as slack_builder  # noqa: E402

BEGIN, END = "<!-- bench:interactions:begin -->", "<!-- bench:interactions:end -->"
SLOW = "How does FlashAttention-3 use FP8 on Hopper GPUs ({n})?"
Samples = dict[str, list[float]]


def stack(tmp: Path, embedder: SentenceTransformerEmbedder) -> Stack:
    settings = Settings(data_dir=tmp / "data")
    settings.arxiv.download_pdfs = False
    settings.openai.timeout = 60
    settings.openai.max_retries = 0
    settings.answer.user_per_minute = settings.answer.channel_per_minute = 100_000
    s = Stack(settings, embedder)
    s.ingest_sample()
    return s


def wait_for_answers(llm: FakeOpenAIServer, count: int) -> None:
    """Until the LLM has been asked for `count` answers (the workers are busy)."""
    deadline = time.monotonic() + 30
    while len(llm.chat_requests) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def slack_acks(s: Stack, reps: int, busy: bool) -> Samples:
    samples: Samples = {}

    def add(kind: str, took: float) -> None:
        samples.setdefault(kind, []).append(took)

    with FakeSlackAPI(bot_token=TOKEN) as api, FakeOpenAIServer() as llm:
        bot = SlackBot(s, api, llm=llm, workers=4)
        try:
            built, _ = slack_builder(s).build_week(WEEK, "potw", "en")
            bot.builder.save(built)
            where = f"CDIGEST{int(busy)}"  # a channel of its own for each run's digest
            posts = SlackDigestChannel(bot.connector.client, post_interval=0)
            asyncio.run(DigestPublisher(s.store, s.conversations).publish(built, posts, where))
            card = card_ts(api, FA3)
            bot.command("ask What is FlashAttention-3?")
            answer = api.wait_for("chat.update")[0].params["ts"]
            if busy:
                llm.delay_next(8, 6.0)
                for n in range(8):
                    bot.command(f"ask {SLOW.format(n=n)}", user=f"UQ{n}")
                wait_for_answers(llm, 1 + 4)
            for rep in range(reps):
                user = f"UB{rep}"
                add("/paper search", bot.command("search million experts", user=user)[1])
                add("/paper help", bot.command("help", user=user)[1])
                for kind, action, value, ts, channel in (
                    ("vote button", "answer_helpful", "helpful", answer, "C1"),
                    ("All Q&A button", "paper_all_qa", f"{WEEK}:{FA3}", card, where),
                ):
                    started_at = time.perf_counter()
                    bot.click(action, value, ts, user=user, channel=channel)
                    add(kind, time.perf_counter() - started_at)
                opened = len(api.calls_to("views.open"))
                clicked = time.monotonic()
                bot.click("paper_ask", FA3, card, user=user, channel=where)
                view = api.wait_for("views.open", count=opened + 1)[-1]
                add("ask button → modal open", view.at - clicked)
                started_at = time.perf_counter()
                bot.submit_modal(view.params["view"], "what precision does it add?", user)
                add("modal submitted", time.perf_counter() - started_at)
        finally:
            bot.settle()
    return samples


async def discord_acks(s: Stack, reps: int, busy: bool) -> Samples:
    samples: Samples = {}
    with FakeDiscordAPI() as api, FakeOpenAIServer() as llm:
        bot = await started(DiscordBot(s, api, llm=llm, workers=4))
        try:
            built, _ = discord_builder(s).build_week(WEEK, "potw", "en")
            channel = DiscordDigestChannel(bot.client, post_interval=0)
            await DigestPublisher(s.store, s.conversations).publish(built, channel, bot.channel)
            card = card_root(api, bot.channel, FA3)
            await bot.interact(
                api.command("ask", bot.channel, question="What is FlashAttention-3?")
            )
            answer = api.history(bot.channel)[-1]
            if busy:
                llm.delay_next(8, 6.0)
                for n in range(8):
                    user = f"30000000000000000{n:02d}"
                    slow = api.command("ask", bot.channel, user, question=SLOW.format(n=n))
                    await bot.interact(slow, settle=False)
                await asyncio.to_thread(wait_for_answers, llm, 1 + 4)
            for rep in range(reps):
                user = f"20000000000000001{rep:02d}"
                payloads = {
                    "/paper search": api.command("search", bot.channel, user, query="experts"),
                    "/paper help": api.command("help", bot.channel, user),
                    "vote button": api.click(answer["id"], "paper:vote:helpful", user),
                    "All Q&A button": api.click(card["id"], f"paper:qa:{WEEK}:{FA3}", user),
                    "ask button → modal": api.click(card["id"], f"paper:ask:{FA3}", user),
                    "autocomplete": api.autocomplete("show", "paper", "flash", bot.channel, user),
                }
                for kind, payload in payloads.items():
                    fed = await bot.interact(payload, settle=False)
                    first = await asyncio.to_thread(
                        api.wait_for, CALLBACK, 1, lambda c, t=payload["token"]: f"/{t}/" in c.path
                    )
                    samples.setdefault(kind, []).append(first[0].at - fed)
            await bot.connector.drain(180)
        finally:
            await bot.connector.close()
    return samples


def slack_fairness(s: Stack, busy: bool) -> Samples:
    samples: Samples = {"/paper help": [], "/paper search": []}
    with FakeSlackAPI(bot_token=TOKEN) as api, FakeOpenAIServer() as llm:
        llm.delay_next(20, 2.5)
        bot = SlackBot(s, api, llm=llm, workers=4)
        try:
            if busy:
                for n in range(20):
                    bot.command(f"ask {SLOW.format(n=n)}", user="UA")
                time.sleep(1.0)
            for _ in range(5):
                for kind, text in (("/paper help", "help"), ("/paper search", "search experts")):
                    before = len(api.calls_to("chat.postEphemeral"))
                    asked = time.monotonic()
                    bot.command(text, user="UB")
                    reply = api.wait_for("chat.postEphemeral", count=before + 1, timeout=60)[-1]
                    samples[kind].append(reply.at - asked)
        finally:
            bot.settle()
    return samples


async def discord_fairness(s: Stack, busy: bool) -> Samples:
    samples: Samples = {"/paper help": [], "/paper search": []}
    with FakeDiscordAPI() as api, FakeOpenAIServer() as llm:
        llm.delay_next(20, 2.5)
        bot = await started(DiscordBot(s, api, llm=llm, workers=4))
        try:
            if busy:
                for n in range(20):
                    a = api.command(
                        "ask", bot.channel, "2000000000000000071", question=SLOW.format(n=n)
                    )
                    await bot.interact(a, settle=False)
                await asyncio.sleep(1.0)
            for _ in range(5):
                for kind, verb, options in (
                    ("/paper help", "help", {}),
                    ("/paper search", "search", {"query": "experts"}),
                ):
                    payload = api.command(verb, bot.channel, "2000000000000000072", **options)
                    fed = await bot.interact(payload, settle=False)
                    (reply,) = await asyncio.to_thread(
                        api.wait_for,
                        FOLLOWUP,
                        1,
                        lambda c, t=payload["token"]: f"/{t}" in c.path,
                        60,
                    )
                    samples[kind].append(reply.at - fed)
            await bot.connector.drain(180)
        finally:
            await bot.connector.close()
    return samples


def summary(samples: Samples) -> dict[str, dict[str, float]]:
    return {
        kind: {
            "p50_ms": round(percentile(values, 0.5) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
        }
        for kind, values in samples.items()
    }


def measure(reps: int = 3) -> dict[str, Any]:
    embedder = SentenceTransformerEmbedder()
    results: dict[str, Any] = {}
    route_base = discord.http.Route.BASE
    with tempfile.TemporaryDirectory() as tmp:
        s = stack(Path(tmp), embedder)
        try:
            for busy in (False, True):
                load = "busy" if busy else "idle"
                results[f"slack_acks_{load}"] = summary(slack_acks(s, reps, busy))
                results[f"discord_acks_{load}"] = summary(asyncio.run(discord_acks(s, reps, busy)))
                results[f"slack_fairness_{load}"] = summary(slack_fairness(s, busy))
                results[f"discord_fairness_{load}"] = summary(
                    asyncio.run(discord_fairness(s, busy))
                )
                discord.http.Route.BASE = route_base
        finally:
            s.close()
            discord.http.Route.BASE = route_base
    return results


def markdown(results: dict[str, Any], when: str, machine: str) -> str:
    rows = []
    for name in ("slack", "discord"):
        idle, busy = results[f"{name}_acks_idle"], results[f"{name}_acks_busy"]
        for kind in idle:
            rows.append(
                f"| {name.capitalize()} | {kind} | {idle[kind]['p50_ms']} | "
                f"{busy[kind]['p50_ms']} | {busy[kind]['max_ms']} |"
            )
    fair = []
    for name in ("slack", "discord"):
        idle, busy = results[f"{name}_fairness_idle"], results[f"{name}_fairness_busy"]
        for kind in idle:
            fair.append(
                f"| {name.capitalize()} | {kind} | {idle[kind]['p50_ms']} | "
                f"{busy[kind]['p50_ms']} | {busy[kind]['max_ms']} |"
            )
    return "\n".join(
        [
            BEGIN,
            "## Interactions under load and fairness (issues 14 and 15)",
            "",
            f"Measured {when} on {machine}; reproduce with `python bench/interactions.py`. "
            "Time until the platform gets its acknowledgement or first response, idle "
            "(the baseline) and while eight slow LLM answers (6 s each) fill the four "
            "workers; Slack and Discord give up after 3 s.",
            "",
            "| platform | interaction | idle p50 ms | busy p50 ms | busy max ms |",
            "|---|---|---:|---:|---:|",
            *rows,
            "",
            "User B's replies while user A has 20 slow questions (2.5 s each) queued: the "
            "time until B's reply reached the platform (5 of each).",
            "",
            "| platform | B's request | idle p50 ms | A busy p50 ms | A busy max ms |",
            "|---|---|---:|---:|---:|",
            *fair,
            END,
        ]
    )


def main() -> None:
    results = measure()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "interactions.json").write_text(json.dumps(results, indent=2))
    when = time.strftime("%Y-%m-%d")
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    write_doc(markdown(results, when, machine), BEGIN, END)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
