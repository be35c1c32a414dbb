"""Generate a large synthetic README in the ML-Papers-of-the-Week format.

    python bench/make_potw.py out.md --weeks 100 --rows 10 --seed 0

Papers are invented: unique, well-formed arXiv IDs (yymm.nnnnn), titles and descriptions built
from word lists. Rows use the same variations as the real file (`1)`/`1.`/no rank, title
separators, `<br>` bullets, abs/pdf/versioned links, ~15% non-arXiv links, missing Tweet links,
links in the description column, escaped pipes). Weeks go back from 2024-12-30. Deterministic
for a seed. Every row is well formed, so parsing it gives one record per row and no problems.
"""

from __future__ import annotations

import argparse
import random
from datetime import date, timedelta
from pathlib import Path

FIRST_WEEK = date(2024, 12, 30)
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_ADJECTIVES = (
    "Sparse", "Scalable", "Efficient", "Robust", "Self-Supervised", "Multimodal", "Causal",
    "Hierarchical", "Contrastive", "Adaptive", "Latent", "Compositional", "Federated", "Tiny",
)  # fmt: skip
_NOUNS = (
    "Transformers", "Diffusion Models", "Mixture-of-Experts", "State Space Models", "Agents",
    "Retrievers", "Reward Models", "Vision Encoders", "Tokenizers", "Graph Networks", "Optimizers",
)  # fmt: skip
_TASKS = (
    "Long-Context Reasoning", "Code Generation", "Protein Design", "Speech Recognition",
    "Theorem Proving", "Video Understanding", "Tool Use", "Weather Forecasting", "Robot Control",
    "Machine Translation", "Preference Alignment", "Test-Time Scaling",
)  # fmt: skip
_VERBS = ("proposes", "introduces", "studies", "revisits", "presents", "analyses")
_METHODS = (
    "a routing scheme that skips idle experts", "a curriculum built from synthetic data",
    "a cache that reuses attention keys across layers", "a verifier trained on its own mistakes",
    "a low-rank update applied only at inference", "a planner that decomposes long tasks",
    "a loss that penalises overconfident answers", "a retriever tuned with in-batch negatives",
)  # fmt: skip
_RESULTS = (
    "reports a {n}% gain on standard benchmarks", "matches larger baselines with {n}x less compute",
    "cuts memory use by {n}% without hurting quality", "shows gains grow with model size",
    "finds the effect vanishes beyond {n}B parameters", "releases code and {n}k new examples",
)  # fmt: skip
_HOSTS = (
    "https://openreview.net/forum?id=syn{n}",
    "https://github.com/example-lab/project-{n}",
    "https://lab.example.edu/papers/report-{n}.pdf",
    "https://www.example-journal.org/articles/s{n}",
)


def make_potw(weeks: int, rows_per_week: int, seed: int) -> str:
    """Return a README with `weeks` weekly tables of `rows_per_week` synthetic papers each."""
    rng = random.Random(seed)
    used: set[str] = set()
    parts = ["# ML Papers of The Week", "", "Synthetic benchmark data.", ""]
    for index in range(weeks):
        start = FIRST_WEEK - timedelta(weeks=index)
        parts.append(_heading(rng, start))
        parts += ["| **Paper**  | **Links** |", "| ------------- | ------------- |"]
        parts += [_row(rng, start, rank, used) for rank in range(1, rows_per_week + 1)]
        parts.append("")
    return "\n".join(parts) + "\n"


def _heading(rng: random.Random, start: date) -> str:
    end = start + timedelta(days=6)
    short = rng.random() < 0.3

    def month(day: date) -> str:
        name = _MONTHS[day.month - 1]
        return name[:3] if short else name

    dash = rng.choice([" - ", "-"])
    hashes, kind = rng.choice(["##", "###"]), rng.choice(["ML", "ML", "AI"])
    span = f"{month(start)} {start.day}{dash}{month(end)} {end.day}"
    return f"{hashes} Top {kind} Papers of the Week ({span}) - {end.year}"


def _row(rng: random.Random, week: date, rank: int, used: set[str]) -> str:
    title = _title(rng)
    paper = _paper_url(rng, week, used)
    links = [f"[Paper]({paper})"]
    if rng.random() < 0.8:
        links.append(f"[Tweet](https://x.com/example/status/{rng.randrange(10**15, 10**16)})")
    if rng.random() < 0.2:
        links.append(f"[Code](https://github.com/example/{title.split()[0].lower()}-{rank})")
    if rng.random() < 0.2:
        rng.shuffle(links)
    rank_text = rng.choices([f"{rank}) ", f"{rank}. ", ""], weights=[70, 25, 5])[0]
    separator = rng.choice([" - ", " - ", " – ", ": ", " "])
    cell = f"{rank_text}**{title}**{separator}{_description(rng)}"
    if rng.random() < 0.05:
        return f"| {cell} {', '.join(links)} |  |"
    return f"| {cell} | {', '.join(links)} |"


def _title(rng: random.Random) -> str:
    core = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} for {rng.choice(_TASKS)}"
    if rng.random() < 0.4:
        name = "".join(rng.choice("BCDFGKLMPRSTVZ") + rng.choice("aeiou") for _ in range(3))
        return f"{name}: {core}"
    return core


def _description(rng: random.Random) -> str:
    first = f"{rng.choice(_VERBS)} {rng.choice(_METHODS)}"
    if rng.random() < 0.1:
        first += " \\| evaluated on held-out tasks"
    results = [rng.choice(_RESULTS).format(n=rng.randint(2, 60)) for _ in range(rng.randint(0, 2))]
    if results and rng.random() < 0.3:
        return first + " <br><br> " + " <br> ".join(f"● {result}" for result in results)
    return "; ".join([first, *results]) + "."


def _paper_url(rng: random.Random, week: date, used: set[str]) -> str:
    if rng.random() < 0.15:
        while (url := rng.choice(_HOSTS).format(n=rng.randrange(10**6, 10**7))) in used:
            pass
        used.add(url)
        return url
    while (ident := f"{week:%y%m}.{rng.randrange(10**5):05d}") in used:
        pass
    used.add(ident)
    version = f"v{rng.randint(1, 4)}" if rng.random() < 0.3 else ""
    kind = rng.choices(["abs", "pdf", "pdf.pdf"], weights=[70, 20, 10])[0]
    if kind == "abs":
        return f"https://arxiv.org/abs/{ident}{version}"
    suffix = ".pdf" if kind == "pdf.pdf" else ""
    return f"https://arxiv.org/pdf/{ident}{version}{suffix}"


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic ML-Papers-of-the-Week README.")
    parser.add_argument("path", type=Path, help="where to write the README")
    parser.add_argument("--weeks", type=int, default=100, help="number of weeks (default 100)")
    parser.add_argument("--rows", type=int, default=10, help="rows per week (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args()
    args.path.write_text(make_potw(args.weeks, args.rows, args.seed), encoding="utf-8")


if __name__ == "__main__":
    main()
