"""Prometheus metrics of the core: requests, answer latency, LLM tokens, errors, digest posts.

Every metric lives in the registry of one `Metrics` object, never in prometheus_client's
global one, so a test can build its own and nothing is registered twice. The process has
one shared instance (`process_metrics()`), which the core's classes use unless they are
given another, and which `paperbot serve` exposes on `GET /metrics`.

>>> metrics = Metrics()
>>> metrics.count_request("slack", "search", "ok")
>>> body, content_type = metrics.exposition(accept="text/plain")
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

Outcome = Literal["ok", "error", "refused"]
PostOutcome = Literal["posted", "already_posted", "recovered"]

ANSWER_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 120.0)
"""Seconds: an extractive answer takes well under a second, a generated one many."""


class Metrics:
    """The metrics of one process, in their own `CollectorRegistry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "paperbot_requests",
            "Commands and questions handled by the core, by platform, kind (a /paper verb, "
            "follow_up or ask) and outcome (ok, refused: the user's input or a limit; "
            "error: the assistant could not answer).",
            ["platform", "kind", "outcome"],
            registry=r,
        )
        self.answer_seconds = Histogram(
            "paperbot_answer_seconds",
            "Time to answer a question, by mode (llm, extractive, none).",
            ["mode"],
            buckets=ANSWER_BUCKETS,
            registry=r,
        )
        self.llm_tokens = Counter(
            "paperbot_llm_tokens",
            "LLM tokens used, by kind (prompt, completion); estimated when the server "
            "reports none.",
            ["kind"],
            registry=r,
        )
        self.errors = Counter(
            "paperbot_errors",
            "Failures, by where they happened (core: a request the core could not answer; "
            "llm: the LLM server unavailable; digest: a scheduled digest run).",
            ["where"],
            registry=r,
        )
        self.digest_posts = Counter(
            "paperbot_digest_posts",
            "Digest messages by platform and outcome (posted; already_posted: found recorded, "
            "skipped; recovered: found on the platform after a crash, recorded).",
            ["platform", "outcome"],
            registry=r,
        )
        self.check_ok = Gauge(
            "paperbot_check_ok",
            "1 when a readiness check (index, state, a connector) passed when last run, else 0.",
            ["check"],
            registry=r,
        )
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)

    def count_request(self, platform: str, kind: str, outcome: Outcome) -> None:
        self.requests.labels(platform=platform, kind=kind, outcome=outcome).inc()

    def observe_answer(self, mode: str, seconds: float) -> None:
        self.answer_seconds.labels(mode=mode).observe(seconds)

    def count_tokens(self, prompt: int, completion: int) -> None:
        self.llm_tokens.labels(kind="prompt").inc(max(0, prompt))
        self.llm_tokens.labels(kind="completion").inc(max(0, completion))

    def count_error(self, where: str) -> None:
        self.errors.labels(where=where).inc()

    def count_digest_post(self, platform: str, outcome: PostOutcome) -> None:
        self.digest_posts.labels(platform=platform, outcome=outcome).inc()

    def set_check(self, check: str, ok: bool) -> None:
        self.check_ok.labels(check=check).set(1 if ok else 0)

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The registry in the format the scraper asked for (`Accept`), and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


@cache
def process_metrics() -> Metrics:
    """The process's metrics: what the core counts into unless given its own `Metrics`,
    and what `paperbot serve` exposes. Built on first use."""
    return Metrics()
