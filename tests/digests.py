"""Small hand-made digests for the publisher tests (no model, no ingest): real paper IDs
and titles, our own one-line texts."""

from __future__ import annotations

from datetime import date

from assistant.digest.model import Digest, DigestCard

PAPERS = {
    "2407.08608": "FlashAttention-3: Fast and Accurate Attention with Asynchrony and Low-precision",
    "2407.04153": "Mixture of A Million Experts",
    "2407.07726": "PaliGemma: A versatile 3B VLM for transfer",
    "2407.10671": "Qwen2 Technical Report",
    "2407.01219": "Searching for Best Practices in Retrieval-Augmented Generation",
}


def hand_digest(
    week: date = date(2024, 7, 8),
    paper_ids: tuple[str, ...] = tuple(PAPERS),
    source: str = "potw",
    language: str = "en",
) -> Digest:
    """A digest of `paper_ids` with short cards written for the tests."""
    cards = tuple(
        DigestCard(
            rank=rank,
            paper_id=paper_id,
            title=PAPERS.get(paper_id, f"Paper {paper_id}"),
            url=f"https://arxiv.org/abs/{paper_id}",
            pdf_url=f"https://arxiv.org/pdf/{paper_id}",
            authors=(),
            published=None,
            updated=None,
            categories=("cs.LG",),
            takeaway=f"A test takeaway for {paper_id}.",
            summary=f"A short test summary of {paper_id}, written for these tests.",
        )
        for rank, paper_id in enumerate(paper_ids, start=1)
    )
    return Digest(week, language, source, cards)
