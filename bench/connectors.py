"""Benchmarks for issues 5 and 6: what the Slack and Discord connectors add around the core.

`/paper search` queries and `/paper ask` questions (the labelled English queries of
bench/data, over its 120-paper corpus, each asked once) go (a) straight to the core
(`Assistant.command`: the baseline), (b) through the Slack connector (a signed request
through bolt's `App.dispatch`, acknowledged, then the reply posted to the fake Web API on
127.0.0.1), and (c) through the Discord connector (a raw INTERACTION_CREATE through
discord.py, deferred, then the reply sent to the fake REST API on 127.0.0.1). For each:
the time to the platform's acknowledgement (Slack wants it within 3 s, Discord a defer
within 3 s) and the time until the reply reached the platform. Extractive answers (no LLM),
the real embedding model, embedded Qdrant. Run: `python bench/connectors.py`.
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

from assistant.embedding import SentenceTransformerEmbedder  # noqa: E402
from assistant.evaluation import load_qrels  # noqa: E402
from assistant.ingest import Ingestor  # noqa: E402
from assistant.messages import IncomingMessage  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from assistant.sources.potw import PotwSource  # noqa: E402
from bench.run import DATA, OUT, percentile, write_doc  # noqa: E402
from tests.fakes.discord_api import TOKEN, FakeDiscordAPI  # noqa: E402
from tests.fakes.slack_api import FakeSlackAPI  # noqa: E402
from tests.test_answering import Stack  # noqa: E402
from tests.test_discord import Bot as DiscordBot  # noqa: E402
from tests.test_slack import Bot as SlackBot  # noqa: E402

BEGIN, END = "<!-- bench:connectors:begin -->", "<!-- bench:connectors:end -->"
Samples = dict[str, list[float]]


def stack_over_the_corpus(tmp: Path, embedder: SentenceTransformerEmbedder) -> Stack:
    """The core over the benchmark corpus (120 papers), without rate limits."""
    settings = Settings(data_dir=tmp / "data")
    settings.arxiv.download_pdfs = False
    settings.answer.user_per_minute = settings.answer.channel_per_minute = 1_000_000
    stack = Stack(settings, embedder)
    ingestor = Ingestor(stack.store, stack.index, embedder, settings.ingest, settings.arxiv)
    ingestor.ingest(PotwSource.from_location(DATA / "corpus_potw.md"), offline=True)
    return stack


def workload(searches: int, questions: int) -> list[tuple[str, str]]:
    """(verb, argument) pairs from the labelled English queries, each used once."""
    queries = [q.query for q in load_qrels(DATA / "qrels.jsonl") if q.query.isascii()]
    asked = queries[searches : searches + questions]
    return [("search", q) for q in queries[:searches]] + [("ask", q) for q in asked]


def core(stack: Stack, work: list[tuple[str, str]]) -> Samples:
    assistant = stack.assistant()
    samples: Samples = {"search": [], "ask": []}
    for n, (verb, argument) in enumerate(work):
        message = IncomingMessage("bench", "u1", "c1", f"{verb} {argument}", thread=f"t{n}")
        started = time.monotonic()
        reply = assistant.command(message)
        samples[verb].append(time.monotonic() - started)
        assert reply.kind != "error", reply.text
    return samples


def slack(stack: Stack, work: list[tuple[str, str]]) -> tuple[Samples, Samples]:
    acks: Samples = {"search": [], "ask": []}
    done: Samples = {"search": [], "ask": []}
    with FakeSlackAPI() as api:
        bot = SlackBot(stack, api)
        try:
            for verb, argument in work:
                method = "chat.postEphemeral" if verb == "search" else "chat.update"
                before = len(api.calls_to(method))
                started = time.monotonic()
                response, took = bot.command(f"{verb} {argument}")
                assert response.status == 200
                acks[verb].append(took)
                reply = api.wait_for(method, count=before + 1)[-1]
                done[verb].append(reply.at - started)
        finally:
            bot.settle()
    return acks, done


async def discord_run(stack: Stack, work: list[tuple[str, str]]) -> tuple[Samples, Samples]:
    acks: Samples = {"search": [], "ask": []}
    done: Samples = {"search": [], "ask": []}
    callback = "POST /interactions/{interaction_id}/{token}/callback"
    with FakeDiscordAPI() as api:
        bot = DiscordBot(stack, api)
        await bot.client.login(TOKEN)
        try:
            for verb, argument in work:
                option = "query" if verb == "search" else "question"
                payload = api.command(verb, bot.channel, **{option: argument})
                fed = await bot.interact(payload)
                token = payload["token"]
                (defer,) = [c for c in api.calls_to(callback) if f"/{token}/" in c.path]
                acks[verb].append(defer.at - fed)
                replies = [c for c in api.calls if f"/{token}" in c.path and c.at > defer.at]
                done[verb].append(max(c.at for c in replies) - fed)
        finally:
            await bot.connector.close()
    return acks, done


def summary(samples: Samples) -> dict[str, dict[str, float]]:
    return {
        verb: {
            "p50_ms": round(percentile(values, 0.5) * 1000, 1),
            "p95_ms": round(percentile(values, 0.95) * 1000, 1),
        }
        for verb, values in samples.items()
    }


def measure(searches: int = 20, questions: int = 20) -> dict[str, Any]:
    """Each connector gets its own slice of the queries (no answer is asked twice)."""
    embedder = SentenceTransformerEmbedder()
    results: dict[str, Any] = {}
    per_run = searches + questions
    slices = [workload(searches * 4, questions * 4)[i::4] for i in range(4)]
    with tempfile.TemporaryDirectory() as tmp:
        stack = stack_over_the_corpus(Path(tmp), embedder)
        try:
            core(stack, slices[0])  # warm-up: model, caches
            results["core"] = summary(core(stack, slices[1]))
            acks, done = slack(stack, slices[2])
            results["slack"] = {"ack": summary(acks), "reply": summary(done)}
            route_base = discord.http.Route.BASE
            try:
                acks, done = asyncio.run(discord_run(stack, slices[3]))
            finally:
                discord.http.Route.BASE = route_base
            results["discord"] = {"ack": summary(acks), "reply": summary(done)}
        finally:
            stack.close()
    results["requests_per_connector"] = per_run
    return results


def markdown(results: dict[str, Any], when: str, machine: str) -> str:
    rows = []
    for verb in ("search", "ask"):
        base = results["core"][verb]
        rows.append(
            f"| {verb}: the core alone (baseline) | – | {base['p50_ms']} | {base['p95_ms']} |"
        )
        for name in ("slack", "discord"):
            ack = results[name]["ack"][verb]
            reply = results[name]["reply"][verb]
            rows.append(
                f"| {verb}: {name.capitalize()} | {ack['p50_ms']} | {reply['p50_ms']} | "
                f"{reply['p95_ms']} |"
            )
    overhead = {
        name: {
            verb: results[name]["reply"][verb]["p50_ms"] / results["core"][verb]["p50_ms"]
            for verb in ("search", "ask")
        }
        for name in ("slack", "discord")
    }
    ratios = "; ".join(
        f"{name.capitalize()} {overhead[name]['search']:.2f}x (search), "
        f"{overhead[name]['ask']:.2f}x (ask)"
        for name in ("slack", "discord")
    )
    return "\n".join(
        [
            BEGIN,
            "## Chat connectors: acknowledgement and reply times (issues 5 and 6)",
            "",
            f"Measured {when} on {machine}; reproduce with `python bench/connectors.py`. "
            f"{results['requests_per_connector']} requests per connector (searches and "
            "questions, extractive answers) through the real libraries against the fake "
            "platform APIs on 127.0.0.1, one at a time. *Ack* is the time until the platform "
            "gets its acknowledgement (Slack: the HTTP response to its request; Discord: "
            "the deferred interaction response); *reply* is the time until the answer "
            "reached the platform.",
            "",
            "| request | ack p50 ms | reply p50 ms | reply p95 ms |",
            "|---|---:|---:|---:|",
            *rows,
            "",
            f"Reply time over the core's own time (p50): {ratios}. Both connectors "
            "acknowledge before any work starts, so a slow model never risks the 3 s limits.",
            END,
        ]
    )


def main() -> None:
    results = measure()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "connectors.json").write_text(json.dumps(results, indent=2))
    when = time.strftime("%Y-%m-%d")
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    write_doc(markdown(results, when, machine), BEGIN, END)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
