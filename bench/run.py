"""Benchmarks for issue 2: retrieval quality, ingest throughput and search latency.

Run with `make bench` (or `python bench/run.py`). Everything is offline and local:
the packaged all-MiniLM-L6-v2, embedded Qdrant, SQLite. Figures go to
docs/benchmarks.md (between the markers of this benchmark) and bench/out/results.json.
Baselines run in the same process, so the ratios hold on a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.embedding import SentenceTransformerEmbedder  # noqa: E402
from assistant.evaluation import Qrel, evaluate, load_qrels  # noqa: E402
from assistant.fusion import Fusion  # noqa: E402
from assistant.index import IndexSchema, SearchMode, open_index  # noqa: E402
from assistant.index_edge import EdgeIndex  # noqa: E402
from assistant.indexing import embedding_text  # noqa: E402
from assistant.ingest import Ingestor  # noqa: E402
from assistant.search import Searcher  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from assistant.sources.potw import PotwSource  # noqa: E402
from assistant.state import StateStore  # noqa: E402
from bench.make_potw import make_potw  # noqa: E402

DATA = ROOT / "bench" / "data"
OUT = ROOT / "bench" / "out"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:retrieval:begin -->", "<!-- bench:retrieval:end -->"


class Stack:
    """A fresh data dir with the same parts the CLI builds, sharing one loaded model."""

    def __init__(self, name: str, embedder: SentenceTransformerEmbedder) -> None:
        path = OUT / name
        shutil.rmtree(path, ignore_errors=True)
        self.settings = Settings(data_dir=path)
        s = self.settings
        self.store = StateStore.open(s.state_path)
        schema = IndexSchema.single(embedder.name, embedder.dimension)
        self.index = open_index(s.qdrant, s.index_path, schema, "bench")
        self.ingestor = Ingestor(self.store, self.index, embedder, s.ingest, s.arxiv)
        self.searcher = Searcher(embedder, self.index, s.search)

    def close(self) -> None:
        self.index.close()
        self.store.close()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# name -> (mode, fusion, fused in the engine rather than here with per-query weights)
VARIANTS = {
    "hybrid": (SearchMode.HYBRID, Fusion.DBSF, False),
    "hybrid-rrf": (SearchMode.HYBRID, Fusion.RRF, False),
    "hybrid-engine-dbsf": (SearchMode.HYBRID, Fusion.DBSF, True),
    "hybrid-engine-rrf": (SearchMode.HYBRID, Fusion.RRF, True),
    "dense": (SearchMode.DENSE, Fusion.DBSF, False),
    "sparse": (SearchMode.SPARSE, Fusion.DBSF, False),
}


def retrieval(embedder: SentenceTransformerEmbedder) -> dict[str, object]:
    stack = Stack("retrieval", embedder)
    stack.ingestor.ingest(PotwSource.from_location(DATA / "corpus_potw.md"), offline=True)
    qrels = load_qrels(DATA / "qrels.jsonl")
    groups: dict[str, list[Qrel]] = defaultdict(list)
    for q in qrels:
        groups["all"].append(q)
        groups[f"lang={q.tags.get('lang', '?')}"].append(q)
        groups[f"kind={q.tags.get('kind', '?')}"].append(q)
    results: dict[str, dict[str, object]] = {}
    for name, (mode, fusion, in_engine) in VARIANTS.items():
        if isinstance(stack.index, EdgeIndex):
            stack.index.fusion_in_engine = in_engine

        def rank(query: str, m: SearchMode = mode, f: Fusion = fusion) -> list[str]:
            return [h.paper_id for h in stack.searcher.search(query, k=10, mode=m, fusion=f)]

        results[name] = {g: evaluate(qs, rank).as_dict() for g, qs in groups.items()}
    papers = stack.store.stats()["papers"]
    stack.close()
    return {"papers": papers, "queries": len(qrels), "by_mode": results}


def ingest_throughput(embedder: SentenceTransformerEmbedder, rounds: int) -> dict[str, object]:
    readme = make_potw(weeks=100, rows_per_week=10, seed=1)
    raw_rates, pipeline_rates, texts_count = [], [], 0
    for i in range(rounds):
        stack = Stack(f"ingest-{i}", embedder)
        started = time.perf_counter()
        report = stack.ingestor.ingest(PotwSource(readme), offline=True)
        pipeline_seconds = time.perf_counter() - started
        texts = [
            embedding_text(p, c) for p in stack.store.papers() for c in stack.ingestor.passages(p)
        ]
        stack.close()
        started = time.perf_counter()
        embedder.embed(texts)  # the baseline: the model alone on the very same texts
        raw_seconds = time.perf_counter() - started
        texts_count = len(texts)
        assert report.indexed_chunks == len(texts)
        raw_rates.append(len(texts) / raw_seconds)
        pipeline_rates.append(report.records / pipeline_seconds)
    raw, pipe = statistics.median(raw_rates), statistics.median(pipeline_rates)
    return {
        "rows": 1000,
        "passages": texts_count,
        "rounds": rounds,
        "pipeline_rows_per_s": round(pipe, 1),
        "raw_encode_texts_per_s": round(raw, 1),
        "ratio": round(pipe / raw, 3),
        "pipeline_seconds_1000_rows": round(1000 / pipe, 2),
    }


def latency(embedder: SentenceTransformerEmbedder, repeats: int) -> dict[str, object]:
    stack = Stack("latency", embedder)
    stack.ingestor.ingest(PotwSource(make_potw(weeks=100, rows_per_week=10, seed=2)), offline=True)
    stack.ingestor.ingest(PotwSource.from_location(DATA / "corpus_potw.md"), offline=True)
    queries = [q.query for q in load_qrels(DATA / "qrels.jsonl")]
    out: dict[str, object] = {"points": stack.index.count(), "queries": len(queries) * repeats}

    def timed(fn: Callable[[str], object]) -> dict[str, float]:
        fn(queries[0])  # warm up
        samples = []
        for _ in range(repeats):
            for q in queries:
                started = time.perf_counter()
                fn(q)
                samples.append((time.perf_counter() - started) * 1000)
        return {
            "p50_ms": round(percentile(samples, 0.5), 2),
            "p95_ms": round(percentile(samples, 0.95), 2),
        }

    out["encode_only"] = timed(lambda q: embedder.embed([q]))
    for mode in SearchMode:
        out[mode.value] = timed(lambda q, m=mode: stack.searcher.search(q, k=10, mode=m))
    stack.close()
    return out


def markdown(results: dict[str, object]) -> str:
    r = results["retrieval"]
    assert isinstance(r, dict)
    lines = [
        BEGIN,
        "## Issue 2: retrieval, ingest, search",
        "",
        f"Measured {results['date']} on {results['machine']}; reproduce with `make bench`.",
        "",
        f"### Retrieval quality ({r['queries']} labelled queries over {r['papers']} papers)",
        "",
        "Corpus and queries: `bench/data/` (written for this project): English paraphrase and",
        "keyword queries, English *recall* queries that describe a paper in other words than",
        "its description (at most 25% shared content words), and Japanese questions naming a",
        "paper. Index: list descriptions and titles. `hybrid` is the default (dense + sparse,",
        "score-distribution fusion, dense weighted by the query's share of Latin letters,",
        "sparse shrunk when its best passage holds under 40% of an English query's terms);",
        "`hybrid-rrf` is the same with reciprocal rank fusion (k=2). The `-engine-` rows fuse",
        "in Qdrant Edge instead (one query, two prefetches): its DBSF takes no weights, its",
        "RRF does. Before the sparse gate (issue 13), `hybrid` scored recall 0.300 / 0.500 /",
        "0.650 / 0.394 and all 0.705 / 0.855 / 0.900 / 0.787 (same columns).",
        "",
        "| mode | group | queries | Recall@1 | Recall@5 | Recall@10 | MRR@10 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    by_mode = r["by_mode"]
    groups = list(next(iter(by_mode.values())).keys())
    for group in groups:
        for mode in VARIANTS:
            s = by_mode[mode][group]
            name = f"**{mode}**" if mode == "hybrid" else mode
            lines.append(
                f"| {name} | {group} | {s['queries']} | {s['recall@1']:.3f} | {s['recall@5']:.3f}"
                f" | {s['recall@10']:.3f} | {s['mrr@10']:.3f} |"
            )
    t = results["ingest"]
    lat = results["latency"]
    assert isinstance(t, dict) and isinstance(lat, dict)
    lines += [
        "",
        f"### Ingest throughput (1,000-row list, offline, median of {t['rounds']} runs)",
        "",
        "| what | rate |",
        "|---|---:|",
        f"| `paperbot ingest potw --all --offline` pipeline (parse, SQLite, embed, sparse, "
        f"Qdrant) | {t['pipeline_rows_per_s']} rows/s |",
        f"| raw `model.encode` of the same {t['passages']} passages (baseline) | "
        f"{t['raw_encode_texts_per_s']} texts/s |",
        f"| **ratio pipeline / raw encode** | **{t['ratio']}** |",
        "",
        f"1,000 rows take {t['pipeline_seconds_1000_rows']} s in the pipeline (model already "
        "loaded; the CLI adds about 4 s to load it).",
        "",
        f"### Search latency ({lat['points']} passages, {lat['queries']} queries, k=10)",
        "",
        "| what | p50 ms | p95 ms |",
        "|---|---:|---:|",
    ]
    for key in ("encode_only", "hybrid", "dense", "sparse"):
        s = lat[key]
        label = "query embedding alone (baseline)" if key == "encode_only" else f"search {key}"
        lines.append(f"| {label} | {s['p50_ms']} | {s['p95_ms']} |")
    lines += ["", END]
    return "\n".join(lines)


def write_doc(section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace this benchmark's section of docs/benchmarks.md (between its markers)."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="ingest throughput runs")
    parser.add_argument("--repeats", type=int, default=2, help="latency passes over the queries")
    parser.add_argument(
        "--retrieval-only",
        action="store_true",
        help="measure retrieval quality only, print it, and leave docs/benchmarks.md alone",
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up"])
    results: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}",
    }
    results["retrieval"] = retrieval(embedder)
    if args.retrieval_only:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return
    results["ingest"] = ingest_throughput(embedder, args.rounds)
    results["latency"] = latency(embedder, args.repeats)
    (OUT / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    write_doc(markdown(results))
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
