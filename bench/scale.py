"""Benchmark for issue 12: the embedded index (Qdrant Edge) at the real corpus's size.

    python bench/scale.py                               # 1k, 20k, 100k passages + the CLI check
    python bench/scale.py --sizes 1000,20000 --cli-rows 0   # quicker, no CLI check

1. Size points: N synthetic passages (180 words from a Zipf vocabulary, through the real
   tokenizer into real sparse vectors; random unit dense vectors, which the issue allows),
   written with the product's `EdgeIndex` and optimised, then per query (k=50, as `search`
   asks for k=10): dense, hybrid, hybrid + week filter, and `search` with the embedding
   model (packaged all-MiniLM-L6-v2) on real query texts (bench/data/qrels.jsonl).
   Baseline in the same run: numpy brute force over the same dense vectors. Then
   throughput with 1, 4 and 8 searcher threads, index calls and whole searches.
2. The CLI check: `paperbot ingest potw --file <bench/make_potw.py, --cli-rows rows> --all
   --offline`, then `paperbot search --queries` over 200 queries (their "ms"), and the raw
   `model.encode` of the same passages in this process (the ingest throughput baseline).

Results go to bench/out/scale.json and docs/benchmarks.md (between this benchmark's
markers). Figures from a busy machine are marked so: compare ratios and medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from assistant.coalescing import CoalescingEmbedder  # noqa: E402
from assistant.embedding import SentenceTransformerEmbedder  # noqa: E402
from assistant.evaluation import load_qrels  # noqa: E402
from assistant.index import IndexedChunk, IndexSchema, SearchFilter, SearchMode  # noqa: E402
from assistant.index_edge import EdgeIndex  # noqa: E402
from assistant.indexing import embedding_text  # noqa: E402
from assistant.models import Chunk, PaperRecord  # noqa: E402
from assistant.search import Searcher  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from assistant.sources.potw import PotwSource  # noqa: E402
from assistant.sparse import document_vector, query_vector  # noqa: E402
from assistant.state import StateStore  # noqa: E402
from bench.make_potw import make_potw  # noqa: E402
from bench.run import percentile, write_doc  # noqa: E402

OUT = ROOT / "bench" / "out" / "scale"
QRELS = ROOT / "bench" / "data" / "qrels.jsonl"
BEGIN, END = "<!-- bench:scale:begin -->", "<!-- bench:scale:end -->"
DIMENSION = 384
LIMIT = 50  # passages an index call returns for `search --k 10`
PASSAGES_PER_PAPER = 40
WEEKS = 150  # the list's weeks: a week filter keeps about 1/150 of the passages
VOCABULARY = 30_000


def machine() -> dict[str, Any]:
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    return {
        "cores": cores,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "load_average": round(load, 2),
        "busy": load > cores * 0.75,
    }


# -- synthetic corpus ---------------------------------------------------------------------


class Corpus:
    """Deterministic synthetic passages: words from a Zipf vocabulary of made-up words
    (some hyphenated or camel-cased, as paper names are), papers of 40 passages, each
    paper listed in one of 150 weeks."""

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        syllables = [c + v for c in "bcdfgklmnprstvz" for v in "aeiou"]
        words: list[str] = []
        while len(words) < VOCABULARY:
            word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
            roll = rng.random()
            if roll < 0.03:
                word = (
                    f"{word.capitalize()}{rng.choice(syllables).capitalize()}-{rng.randint(1, 9)}"
                )
            elif roll < 0.06:
                word = f"{word}-{rng.choice(syllables)}"
            words.append(word)
        self.words = np.array(words, dtype=object)
        ranks = np.arange(1, VOCABULARY + 1, dtype=np.float64)
        self.probabilities = (1 / ranks) / (1 / ranks).sum()
        self.seed = seed

    def passages(self, start: int, count: int) -> list[str]:
        rng = np.random.default_rng(self.seed + start)
        picks = rng.choice(VOCABULARY, size=(count, 180), p=self.probabilities)
        return [" ".join(self.words[row]) for row in picks]

    def query_terms(self, rng: random.Random) -> str:
        """A few mid-frequency words (the ones a query names)."""
        return " ".join(str(self.words[rng.randint(50, 5_000)]) for _ in range(rng.randint(3, 7)))


def week_of(paper: int) -> str:
    return (date(2024, 12, 30) - timedelta(weeks=paper % WEEKS)).isoformat()


def build(
    path: Path, size: int, corpus: Corpus, vectors: np.ndarray
) -> tuple[EdgeIndex, dict[str, float]]:
    """Write `size` passages with the product's EdgeIndex, then optimise; time both."""
    shutil.rmtree(path, ignore_errors=True)
    index = EdgeIndex.open(path, IndexSchema.single("synthetic-random-384", DIMENSION), "bench")
    started = time.perf_counter()
    sparse_seconds = 0.0
    for start in range(0, size, 2_000):
        texts = corpus.passages(start, min(2_000, size - start))
        began = time.perf_counter()
        sparse = [document_vector(text) for text in texts]
        sparse_seconds += time.perf_counter() - began
        items = []
        for offset, (text, vector) in enumerate(zip(texts, sparse, strict=True)):
            n = start + offset
            paper = f"syn.{n // PASSAGES_PER_PAPER:06d}"
            items.append(
                IndexedChunk(
                    chunk=Chunk(paper, n % PASSAGES_PER_PAPER, "body", text, "Method", 1),
                    title=f"Paper {paper}",
                    url=None,
                    weeks=(week_of(n // PASSAGES_PER_PAPER),),
                    categories=("cs.LG",),
                    content_hash="0" * 32,
                    dense=vectors[n].tolist(),
                    sparse=vector,
                )
            )
        index.upsert(items)
    written = time.perf_counter()
    index.optimize()
    done = time.perf_counter()
    return index, {
        "write_s": round(written - started - sparse_seconds, 2),
        "sparse_vectors_s": round(sparse_seconds, 2),
        "optimize_s": round(done - written, 2),
    }


def unit_vectors(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def timed(call: Callable[[int], object], count: int) -> dict[str, float]:
    """Wall time per call (p50, p95), and the CPU time the process spent (all its threads,
    the engine's search pool and torch's included): on a busy machine the wall time also
    counts waiting for a core, the CPU time does not."""
    call(0)  # warm up
    samples, cpu = [], []
    for i in range(count):
        started, cpu_started = time.perf_counter(), time.process_time()
        call(i)
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return {
        "p50_ms": round(percentile(samples, 0.5), 2),
        "p95_ms": round(percentile(samples, 0.95), 2),
        "cpu_p50_ms": round(percentile(cpu, 0.5), 2),
    }


def throughputs(
    call: Callable[[int], object], searchers: list[int], total: int, rounds: int
) -> tuple[dict[int, float], dict[int, float]]:
    """Queries per second for each number of searchers, and the process's CPU ms a query
    (all threads: the model's, the engine's, Python's): the medians of `rounds` runs, the
    thread counts interleaved (so a change in the machine's load hits all of them). On
    C cores, N searchers cannot exceed C * 1000 / (CPU ms a query at N) queries a second."""
    runs: dict[int, list[tuple[float, float]]] = {n: [] for n in searchers}
    for _ in range(rounds):
        for n in searchers:
            runs[n].append(throughput(call, n, total))
    qps = {n: round(statistics.median(r[0] for r in rs), 1) for n, rs in runs.items()}
    cpu = {n: round(statistics.median(r[1] for r in rs), 2) for n, rs in runs.items()}
    return qps, cpu


def throughput(call: Callable[[int], object], threads: int, total: int) -> tuple[float, float]:
    """Queries per second with `threads` searchers sharing `total` queries, and the CPU ms
    the process spent a query."""
    counter = iter(range(total))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def work() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                call(i)
            except BaseException as exc:  # reported after the run
                failures.append(exc)
                return

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started, cpu_started = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return round(total / seconds, 1), round(cpu * 1000 / total, 2)


def size_point(
    size: int, corpus: Corpus, embedder: SentenceTransformerEmbedder, args: argparse.Namespace
) -> dict[str, Any]:
    vectors = unit_vectors(size, seed=size)
    index, build_times = build(OUT / f"index-{size}", size, corpus, vectors)
    rng = random.Random(size)
    count = args.queries
    dense_q = unit_vectors(count, seed=size + 1)
    papers = min(WEEKS, size // PASSAGES_PER_PAPER)  # a filter on a week that has papers
    sparse_q = [query_vector(corpus.query_terms(rng)) for _ in range(count)]
    weeks = [
        SearchFilter(week=date.fromisoformat(week_of(rng.randrange(papers)))) for _ in range(count)
    ]
    texts = [q.query for q in load_qrels(QRELS)]
    none = SearchFilter()

    def call(mode: SearchMode, week: bool) -> Callable[[int], object]:
        def run(i: int) -> object:
            where = weeks[i % count] if week else none
            return index.query(
                dense_q[i % count].tolist(), sparse_q[i % count], where, LIMIT, mode, LIMIT
            )

        return run

    def brute(i: int) -> object:
        scores = vectors @ dense_q[i % count]
        top = np.argpartition(-scores, LIMIT)[:LIMIT]
        return top[np.argsort(-scores[top])]

    settings = Settings(data_dir=OUT / "unused")
    searcher = Searcher(CoalescingEmbedder(embedder), index, settings.search)  # as Runtime
    uncoalesced = Searcher(embedder, index, settings.search)

    def search(i: int) -> object:
        return searcher.search(texts[i % len(texts)], k=10, where=weeks[i % count])

    def search_uncoalesced(i: int) -> object:
        return uncoalesced.search(texts[i % len(texts)], k=10, where=weeks[i % count])

    result: dict[str, Any] = {"passages": index.count(), **build_times}
    result["numpy_brute_force_dense"] = timed(brute, count)
    result["dense"] = timed(call(SearchMode.DENSE, False), count)
    result["hybrid"] = timed(call(SearchMode.HYBRID, False), count)
    result["hybrid_week"] = timed(call(SearchMode.HYBRID, True), count)
    index.fusion_in_engine = True
    result["hybrid_engine_fusion"] = timed(call(SearchMode.HYBRID, False), count)
    result["hybrid_week_engine_fusion"] = timed(call(SearchMode.HYBRID, True), count)
    index.fusion_in_engine = False
    result["search_with_embedding"] = timed(search, count)
    result["embedding_only"] = timed(lambda i: embedder.embed([texts[i % len(texts)]]), count)
    total, rounds, n = count, args.rounds, args.searchers
    for key, run in (
        ("threads_index", call(SearchMode.HYBRID, True)),
        ("threads_search", search),
        ("threads_search_uncoalesced", search_uncoalesced),
    ):
        result[f"{key}_qps"], result[f"{key}_cpu_ms"] = throughputs(run, n, total, rounds)
    index.close()
    shutil.rmtree(OUT / f"index-{size}", ignore_errors=True)
    print(json.dumps({size: result}), flush=True)
    return result


# -- the CLI check ------------------------------------------------------------------------


def cli_check(rows: int, embedder: SentenceTransformerEmbedder) -> dict[str, Any]:
    data = OUT / "cli-data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    readme = OUT / f"potw-{rows}.md"
    readme.write_text(make_potw(weeks=rows // 10, rows_per_week=10, seed=12))
    queries = OUT / "queries.jsonl"
    texts = [q.query for q in load_qrels(QRELS)][:200]
    queries.write_text("".join(json.dumps({"query": t}) + "\n" for t in texts))
    env = {**os.environ, "PAPERBOT_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "assistant"]
    passages = texts_to_embed(readme)  # what the ingest will embed, from a scratch store
    sample = random.Random(5).sample(passages, min(len(passages), 20_000))
    before = raw_encode(embedder, sample)
    cpu_before = children_cpu()
    ingest = subprocess.run(
        [*command, "ingest", "potw", "--file", str(readme), "--all", "--offline", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    ingest_cpu = children_cpu() - cpu_before
    report = json.loads(ingest.stdout.splitlines()[-1])
    search = subprocess.run(
        [*command, "search", "--queries", str(queries), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [json.loads(line) for line in search.stdout.splitlines() if line.strip()]
    times = [line["ms"] for line in lines if "ms" in line]
    after = raw_encode(embedder, sample)  # the same texts again: the load may have changed
    raw_rate = statistics.mean([before["texts_per_s"], after["texts_per_s"]])
    raw_cpu = statistics.mean([before["cpu_ms_per_text"], after["cpu_ms_per_text"]])
    rate = report["indexed_chunks"] / report["seconds"]
    cpu_per_passage = ingest_cpu * 1000 / report["indexed_chunks"]
    return {
        "rows": rows,
        "passages": report["indexed_chunks"],
        "ingest_seconds": report["seconds"],
        "ingest_passages_per_s": round(rate, 1),
        "ingest_cpu_ms_per_passage": round(cpu_per_passage, 2),
        "raw_encode_before": before,
        "raw_encode_after": after,
        "raw_encode_texts_per_s": round(raw_rate, 1),
        "raw_encode_cpu_ms_per_text": round(raw_cpu, 2),
        "ratio": round(rate / raw_rate, 3),
        "cpu_ratio": round(raw_cpu / cpu_per_passage, 3),
        "queries": len(lines),
        "lines_with_ms": len(times),
        "search_p50_ms": round(percentile(times, 0.5), 2),
        "search_p95_ms": round(percentile(times, 0.95), 2),
        "search_max_ms": round(max(times), 2),
    }


def raw_encode(embedder: SentenceTransformerEmbedder, texts: list[str]) -> dict[str, float]:
    """The model alone on `texts`, in one call (its best case: one length-sorted batch)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    embedder.embed(texts)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "texts": len(texts),
        "seconds": round(seconds, 2),
        "texts_per_s": round(len(texts) / seconds, 1),
        "cpu_ms_per_text": round(cpu * 1000 / len(texts), 3),
    }


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def texts_to_embed(readme: Path) -> list[str]:
    """Every passage an offline ingest of `readme` embeds, as it embeds them (stored in a
    scratch SQLite through the same code)."""
    from assistant.ingest import Ingestor

    settings = Settings(data_dir=OUT / "scratch")
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    store = StateStore.open(settings.state_path)
    try:
        for record in PotwSource(readme.read_text()).read():
            if isinstance(record, PaperRecord):
                store.upsert_record(record)
        ingestor = Ingestor(store, None, None, settings.ingest, settings.arxiv)  # type: ignore[arg-type]
        return [embedding_text(p, c) for p in store.papers() for c in ingestor.passages(p)]
    finally:
        store.close()
        shutil.rmtree(settings.data_dir, ignore_errors=True)


# -- report -------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    results = json.loads(json.dumps(results))  # keys as in results.json: "8", not 8
    m = results["machine"]
    busy = (
        f" **Busy machine** (load average {m['load_average']} on {m['cores']} cores while it "
        "ran, other jobs sharing the cores): absolute figures are pessimistic, compare ratios."
        if m["busy"]
        else ""
    )
    lines = [
        BEGIN,
        "## Issue 12: the embedded index at 100k passages (Qdrant Edge)",
        "",
        f"Measured {results['date']} on {m['cores']} cores, {m['machine']}, Python "
        f"{m['python']} with `python bench/scale.py {results['args']}`.{busy}",
        "",
        "Synthetic passages (180 words, real tokenizer and sparse vectors, random 384-d dense "
        "vectors), 40 per paper, 150 weeks; each index call asks for 50 passages (what "
        "`search --k 10` asks for). `search` is the whole call: the packaged model embeds a "
        "real query text (bench/data/qrels.jsonl), then hybrid + week filter. Cells: wall "
        "ms p50 / p95 (CPU ms p50, all the process's threads: on a busy machine the wall time "
        "also counts waiting for a core).",
        "",
        "| passages | numpy brute force (dense) p50 / p95 | dense | hybrid | hybrid + week "
        "| `search` with embedding (hybrid + week) | embedding alone |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(s: dict[str, float]) -> str:
        return f"{s['p50_ms']} / {s['p95_ms']} ({s['cpu_p50_ms']})"

    sizes = results["sizes"]
    for size, r in sizes.items():
        lines.append(
            f"| {int(size):,} | {cell(r['numpy_brute_force_dense'])} | {cell(r['dense'])} | "
            f"{cell(r['hybrid'])} | {cell(r['hybrid_week'])} | "
            f"{cell(r['search_with_embedding'])} | {cell(r['embedding_only'])} |"
        )
    lines += [
        "",
        "Fusion in the engine (one query, two prefetches, Edge's DBSF, which takes no weights) "
        "against fusion here (the two candidate lists from one planned `query_batch`, fused "
        "with the per-query dense weight, then the winners' payloads):",
        "",
        "| passages | hybrid, fused here | hybrid, fused in Edge | + week, fused here "
        "| + week, fused in Edge |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size, r in sizes.items():
        lines.append(
            f"| {int(size):,} | {cell(r['hybrid'])} | {cell(r['hybrid_engine_fusion'])} | "
            f"{cell(r['hybrid_week'])} | {cell(r['hybrid_week_engine_fusion'])} |"
        )
    lines += [
        "",
        "Writing and optimising (seconds): sparse vectors are computed in Python, "
        "`optimize` builds the HNSW graph and merges segments once at the end.",
        "",
        "| passages | sparse vectors | write (batched upserts) | optimize |",
        "|---:|---:|---:|---:|",
    ]
    for size, r in sizes.items():
        lines.append(
            f"| {int(size):,} | {r['sparse_vectors_s']} | {r['write_s']} | {r['optimize_s']} |"
        )
    threads = [str(n) for n in results["searchers"]]
    lines += [
        "",
        "Parallel searchers (threads of one process sharing the index): queries per second, "
        "then the CPU ms the process spent a query (all threads) at 1 and at "
        f"{threads[-1]} searchers, and what that CPU cost allows at most on "
        f"{m['cores']} cores ({m['cores']} x 1000 / CPU ms a query) against 1 searcher:",
        "",
        "| passages | what | " + " | ".join(f"{n} searcher(s)" for n in threads) + " | "
        f"{threads[-1]} vs 1 | CPU ms a query, 1 / {threads[-1]} | at most, {threads[-1]} vs 1 |",
        "|---:|---|" + "---:|" * (len(threads) + 3),
    ]
    for size, r in sizes.items():
        for key, label in (
            ("threads_index", "index call (hybrid + week)"),
            ("threads_search", "`search` with embedding"),
            ("threads_search_uncoalesced", "`search`, each query embedded alone"),
        ):
            qps, cpu = r[f"{key}_qps"], r.get(f"{key}_cpu_ms")
            ratio = qps[threads[-1]] / qps[threads[0]]
            row = " | ".join(str(qps[n]) for n in threads)
            bound = "-"
            if cpu:
                ceiling = m["cores"] * 1000 / cpu[threads[-1]]
                cpu_cell = f"{cpu[threads[0]]} / {cpu[threads[-1]]}"
                bound = f"{ceiling / qps[threads[0]]:.2f}x"
            else:
                cpu_cell = "-"
            lines.append(
                f"| {int(size):,} | {label} | {row} | {ratio:.2f}x | {cpu_cell} | {bound} |"
            )
    lines += [
        "",
        "Why threads gain little here: qdrant-edge-py 0.9 holds the GIL for the whole of "
        "each engine call (a thread counting in Python stalls while another thread queries; "
        "two threads querying get fewer queries a second than one), so index calls from "
        "threads run one at a time and only add contention. A search spends most of its CPU "
        "in the embedding model, which releases the GIL, but one query already runs the "
        "model on every core (torch's intra-op threads), so more searchers can only win what "
        "sharing a model call saves (the coalescing row against the row that embeds each "
        "query alone) and the cores left idle between model calls. The last column is the "
        "ceiling that CPU cost sets; where it is under 3x, 3x is out of reach on this "
        "machine whatever the scheduling.",
    ]
    cli = results.get("cli")
    if cli:
        lines += [
            "",
            f"### The CLI at {cli['rows']:,} rows",
            "",
            f"`paperbot ingest potw --file <bench/make_potw.py, {cli['rows']:,} rows> --all "
            f"--offline` then `paperbot search --queries` ({cli['queries']} queries from "
            "bench/data/qrels.jsonl, English and Japanese) over the result:",
            "",
            "| what | value |",
            "|---|---:|",
            f"| passages indexed | {cli['passages']:,} |",
            f"| ingest (parse, SQLite, embed, sparse, Edge, optimize; model load included) | "
            f"{cli['ingest_seconds']} s, {cli['ingest_passages_per_s']} passages/s, "
            f"{cli['ingest_cpu_ms_per_passage']} CPU ms a passage |",
            f"| raw `model.encode` of 20,000 of the same passages in one call, before and "
            f"after the ingest (baseline) | {cli['raw_encode_texts_per_s']} texts/s, "
            f"{cli['raw_encode_cpu_ms_per_text']} CPU ms a text |",
            f"| **ingest throughput / raw encode** (wall; CPU) | **{cli['ratio']}**; "
            f"{cli['cpu_ratio']} |",
            f"| answer lines with `ms` | {cli['lines_with_ms']} of {cli['queries']} |",
            f"| `search` p50 / p95 / max (embedding included) | {cli['search_p50_ms']} / "
            f"{cli['search_p95_ms']} / {cli['search_max_ms']} ms |",
        ]
    lines += ["", END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,20000,100000", help="passages per size point")
    parser.add_argument("--queries", type=int, default=200, help="queries per measurement")
    parser.add_argument("--searchers", default="1,4,8", help="parallel searcher threads")
    parser.add_argument("--rounds", type=int, default=3, help="throughput runs (median)")
    parser.add_argument(
        "--cli-rows", type=int, default=100_000, help="rows for the CLI check (0: skip it)"
    )
    parser.add_argument("--no-doc", action="store_true", help="leave docs/benchmarks.md alone")
    args = parser.parse_args()
    args.searchers = [int(n) for n in args.searchers.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up"])
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "args": " ".join(sys.argv[1:]),
        "searchers": args.searchers,
        "machine": machine(),
    }
    corpus = Corpus()
    results["sizes"] = {
        int(size): size_point(int(size), corpus, embedder, args) for size in args.sizes.split(",")
    }
    if args.cli_rows:
        results["cli"] = cli_check(args.cli_rows, embedder)
    after, m = machine(), results["machine"]
    m["load_average"] = max(m["load_average"], after["load_average"])
    m["busy"] = m["busy"] or after["busy"]
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    if not args.no_doc:
        write_doc(markdown(results), BEGIN, END)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
