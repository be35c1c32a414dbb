"""Benchmarks for issue 3: how long `ask` takes, and what the assistant adds around an LLM.

Extractive mode: time to first output and total time of `Assistant.ask` over the benchmark
corpus, with retrieval alone as the baseline. LLM mode: the same questions against a fake
OpenAI-compatible server on 127.0.0.1 that answers instantly, compared with the bare
openai call carrying the very same messages, so the difference is the assistant's own
cost (condensing is skipped: first questions in English). Run: `python bench/ask.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.answering import Answerer, build_messages  # noqa: E402
from assistant.conversations import ConversationStore  # noqa: E402
from assistant.core import Assistant  # noqa: E402
from assistant.embedding import SentenceTransformerEmbedder  # noqa: E402
from assistant.evaluation import load_qrels  # noqa: E402
from assistant.llm import build_chat_model  # noqa: E402
from assistant.messages import IncomingMessage  # noqa: E402
from assistant.sources.potw import PotwSource  # noqa: E402
from bench.run import DATA, OUT, Stack, percentile, write_doc  # noqa: E402
from tests.fakes.openai_server import FakeOpenAIServer  # noqa: E402

BEGIN, END = "<!-- bench:answers:begin -->", "<!-- bench:answers:end -->"


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples, 0.5), 1),
        "p95_ms": round(percentile(samples, 0.95), 1),
    }


def build(stack: Stack, embedder: SentenceTransformerEmbedder, base_url: str | None) -> Assistant:
    s = stack.settings
    s.answer.user_per_minute = s.answer.channel_per_minute = 1_000_000
    s.openai.base_url = base_url
    s.openai.max_retries = 0
    conversations = ConversationStore(stack.store, s.answer.history_turns)
    chat = build_chat_model(s.openai, s.llm)

    def title(paper_id: str) -> str | None:
        paper = stack.store.get_paper(paper_id)
        return paper.title if paper else None

    answerer = Answerer(stack.searcher, chat, conversations, s.answer, s.llm, title, embedder)
    return Assistant(stack.store, conversations, stack.searcher, answerer, s.answer)


def timed_asks(assistant: Assistant, questions: list[str], stream: bool) -> dict[str, object]:
    first, total, modes = [], [], {}
    for i, question in enumerate(questions):
        started = time.perf_counter()
        seen: list[float] = []

        def on_delta(_: str, seen: list[float] = seen) -> None:
            if not seen:
                seen.append(time.perf_counter())

        reply = assistant.ask(
            IncomingMessage("bench", "u", "c", question, thread=f"q{i}"),
            on_delta=on_delta if stream else None,
        )
        done = time.perf_counter()
        total.append((done - started) * 1000)
        first.append(((seen[0] if seen else done) - started) * 1000)
        modes[reply.mode or "error"] = modes.get(reply.mode or "error", 0) + 1
    return {"first_output": summary(first), "total": summary(total), "modes": modes}


def timed(fn: Callable[[str], object], questions: list[str]) -> dict[str, float]:
    samples = []
    for q in questions:
        started = time.perf_counter()
        fn(q)
        samples.append((time.perf_counter() - started) * 1000)
    return summary(samples)


def bare_llm(base_url: str, stack: Stack, questions: list[str]) -> dict[str, object]:
    """The openai call alone, with the messages the assistant would send."""
    s = stack.settings
    s.openai.base_url = base_url
    chat = build_chat_model(s.openai, s.llm)
    assert chat is not None
    prepared = [
        build_messages(q, "en", stack.searcher.passages(q, s.answer.passages), ())
        for q in questions
    ]
    first, total = [], []
    for messages in prepared:
        seen: list[float] = []
        started = time.perf_counter()
        chat.complete(messages, on_delta=lambda _, seen=seen: seen.append(time.perf_counter()))
        done = time.perf_counter()
        total.append((done - started) * 1000)
        first.append(((seen[0] if seen else done) - started) * 1000)
    return {"first_output": summary(first), "total": summary(total)}


def run(repeats: int) -> dict[str, object]:
    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up"])
    stack = Stack("answers", embedder)
    stack.ingestor.ingest(PotwSource.from_location(DATA / "corpus_potw.md"), offline=True)
    english = [q.query for q in load_qrels(DATA / "qrels.jsonl") if q.tags.get("lang") == "en"]
    questions = english[:60] * repeats
    results: dict[str, object] = {"questions": len(questions), "papers": 120}
    extractive = build(stack, embedder, None)
    extractive.ask(IncomingMessage("bench", "u", "c", questions[0], thread="warm"))
    results["retrieval_only"] = timed(lambda q: stack.searcher.passages(q, 6), questions)
    results["extractive"] = timed_asks(extractive, questions, stream=False)
    with FakeOpenAIServer() as server:
        results["bare_llm_call"] = bare_llm(server.base_url, stack, questions)
        with_llm = build(stack, embedder, server.base_url)
        results["llm"] = timed_asks(with_llm, questions, stream=True)
    stack.close()
    return results


def markdown(r: dict[str, object], when: str, machine: str) -> str:
    def row(label: str, data: object, key: str) -> str:
        assert isinstance(data, dict)
        s = data[key] if key else data
        return f"| {label} | {s['p50_ms']} | {s['p95_ms']} |"

    ext, llm, bare = r["extractive"], r["llm"], r["bare_llm_call"]
    assert isinstance(ext, dict) and isinstance(llm, dict) and isinstance(bare, dict)
    overhead50 = round(llm["total"]["p50_ms"] - bare["total"]["p50_ms"], 1)
    overhead95 = round(llm["total"]["p95_ms"] - bare["total"]["p95_ms"], 1)
    return "\n".join(
        [
            BEGIN,
            "## Issue 3: answers",
            "",
            f"Measured {when} on {machine}; reproduce with `python bench/ask.py`. "
            f"{r['questions']} English questions from `bench/data/qrels.jsonl` over the "
            f"{r['papers']}-paper benchmark corpus, each in a new thread.",
            "",
            "### `ask` without an LLM (extractive answers)",
            "",
            "| what | p50 ms | p95 ms |",
            "|---|---:|---:|",
            row("retrieval alone (baseline: embed + hybrid search)", r["retrieval_only"], ""),
            row("ask: time to first output", ext, "first_output"),
            row(
                "ask: total (retrieve, choose and quote sentences, store both turns)", ext, "total"
            ),
            "",
            f"Answer modes: {ext['modes']}. Extractive answers are not streamed, so the first "
            "output is the whole answer.",
            "",
            "### Overhead around an LLM call (fake server on 127.0.0.1, instant answers)",
            "",
            "| what | p50 ms | p95 ms |",
            "|---|---:|---:|",
            row("bare openai call, same messages (baseline): first token", bare, "first_output"),
            row("bare openai call, same messages (baseline): total", bare, "total"),
            row("ask with the LLM: first streamed token", llm, "first_output"),
            row("ask with the LLM: total", llm, "total"),
            f"| **assistant overhead (ask total - bare call total)** | **{overhead50}** | "
            f"**{overhead95}** |",
            "",
            f"Answer modes: {llm['modes']}. The overhead is retrieval, prompt building, "
            "quoting the cited sentences (one embedding call), and two SQLite writes.",
            END,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results = run(args.repeats)
    when = time.strftime("%Y-%m-%d")
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    (OUT / "answers.json").write_text(json.dumps(results, indent=2))
    write_doc(markdown(results, when, machine), BEGIN, END)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
