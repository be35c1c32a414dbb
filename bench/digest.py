"""Benchmarks for issue 4: building a ten-paper digest, and what an LLM card costs.

Offline (extractive): the sample week's ten papers, built cold (no cached cards) and warm
(every card cached), against a baseline of embedding every sentence of those papers once
(the model work a cold build cannot avoid). With an LLM: the same week against a fake
OpenAI-compatible server on 127.0.0.1, counting calls and tokens per card.
Run: `python bench/digest.py`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.digest.builder import DigestBuilder  # noqa: E402
from assistant.digest.cards import CardWriter  # noqa: E402
from assistant.embedding import SentenceTransformerEmbedder  # noqa: E402
from assistant.llm import build_chat_model  # noqa: E402
from assistant.quotes import quote_spans  # noqa: E402
from assistant.sources.potw import PotwSource  # noqa: E402
from bench.run import OUT, Stack, write_doc  # noqa: E402
from tests.fakes.openai_server import FakeOpenAIServer  # noqa: E402
from tests.test_digest import card_reply  # noqa: E402

BEGIN, END = "<!-- bench:digest:begin -->", "<!-- bench:digest:end -->"
SAMPLE = ROOT / "assistant" / "data" / "sample_potw.md"


def timed_build(stack: Stack, cards: CardWriter, language: str) -> tuple[float, object]:
    builder = DigestBuilder(stack.store, cards, stack.settings.digest)
    week = max(PotwSource.from_location(SAMPLE).weeks())
    started = time.perf_counter()
    _, report = builder.build_week(week, "potw", language)
    return time.perf_counter() - started, report


def run(rounds: int) -> dict[str, object]:
    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up"])
    cold, warm, baseline = [], [], []
    for i in range(rounds):
        stack = Stack(f"digest-{i}", embedder)
        stack.ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
        cards = CardWriter(stack.store, stack.searcher, embedder, None, 10)
        cold.append(timed_build(stack, cards, "en")[0])
        warm.append(timed_build(stack, cards, "en")[0])
        texts = [
            p.description[a:b]
            for p in stack.store.papers()
            for a, b in quote_spans(p.description or "")
        ]
        started = time.perf_counter()
        embedder.embed(texts)
        baseline.append(time.perf_counter() - started)
        stack.close()
    stack = Stack("digest-llm", embedder)
    stack.ingestor.ingest(PotwSource.from_location(SAMPLE), offline=True)
    with FakeOpenAIServer(reply=card_reply) as server:
        stack.settings.openai.base_url = server.base_url
        chat = build_chat_model(stack.settings.openai, stack.settings.llm)
        llm_cards = CardWriter(stack.store, stack.searcher, embedder, chat, 10)
        llm_seconds, llm_report = timed_build(stack, llm_cards, "ja")
        requests = len(server.chat_requests)
    stack.close()
    n = llm_report.cards  # type: ignore[attr-defined]
    return {
        "papers": 10,
        "rounds": rounds,
        "cold_s": round(statistics.median(cold), 2),
        "warm_s": round(statistics.median(warm), 3),
        "baseline_embed_s": round(statistics.median(baseline), 3),
        "baseline_sentences": len(texts),
        "llm": {
            "seconds": round(llm_seconds, 2),
            "cards": n,
            "calls_per_card": round(llm_report.llm_calls / n, 2),  # type: ignore[attr-defined]
            "tokens_per_card": round(llm_report.llm_tokens / n),  # type: ignore[attr-defined]
            "requests_seen_by_server": requests,
        },
    }


def markdown(r: dict[str, object], when: str, machine: str) -> str:
    llm = r["llm"]
    assert isinstance(llm, dict)
    cold, warm, base = r["cold_s"], r["warm_s"], r["baseline_embed_s"]
    assert isinstance(cold, float) and isinstance(warm, float) and isinstance(base, float)
    return "\n".join(
        [
            BEGIN,
            "## Issue 4: the weekly digest",
            "",
            f"Measured {when} on {machine}; reproduce with `python bench/digest.py`. The sample "
            f"week (`assistant/data/sample_potw.md`, {r['papers']} papers), ingested offline; "
            f"medians of {r['rounds']} runs.",
            "",
            "| what | seconds | vs baseline |",
            "|---|---:|---:|",
            f"| baseline: embed every sentence of the ten papers once ({r['baseline_sentences']} "
            f"sentences) | {base} | 1.0 |",
            f"| build the ten-paper digest offline, cold (10 cards x 10 Q&A) | {cold} | "
            f"{round(cold / base, 1)}x |",
            f"| build it again, every card from the cache | {warm} | {round(warm / base, 2)}x |",
            "",
            "With an LLM (fake OpenAI-compatible server on 127.0.0.1, Japanese digest):",
            "",
            "| what | value |",
            "|---|---:|",
            f"| LLM calls per card | {llm['calls_per_card']} |",
            f"| LLM tokens per card (prompt + completion, as the server counts them) | "
            f"{llm['tokens_per_card']} |",
            f"| build time for {llm['cards']} cards, server answering instantly | "
            f"{llm['seconds']} s |",
            "",
            "A card is one LLM call: the takeaway, summary and every Q&A pair come back as one "
            "JSON object, answered from up to 14 passages retrieved for the questions; checking "
            "each answer against its cited passage uses the local embedding model, not the LLM.",
            END,
        ]
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    results = run(rounds=3)
    when = time.strftime("%Y-%m-%d")
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    (OUT / "digest.json").write_text(json.dumps(results, indent=2))
    write_doc(markdown(results, when, machine), BEGIN, END)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
