"""A soak run: thousands of mixed requests through the console connector, with faults.

Several console sessions (one thread each, like several people at terminals) send searches,
`/paper ask`, `/paper show`, digests and threaded follow-ups to one `Runtime`, the
composition root `paperbot serve` uses. The LLM is the fake OpenAI-compatible server and
the index a Qdrant server (the fake REST server over the embedded engine), both on
127.0.0.1, and both are made to fail on a seeded schedule: LLM errors, timeouts and garbage,
and whole index outages. Meanwhile the week's digest is posted to the console channel by
publishers that crash and race each other.

At the end every request must have been answered or refused with a message, every answered
question must have left exactly its two conversation turns, every digest message must be
posted exactly once, and memory must have stopped growing.

    report = run_soak(SoakConfig(requests=2000), tmp_path)
    assert report.problems() == []

`tests/test_soak.py` runs it; `bench/soak.py` runs it and writes the figures to
docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from rich.console import Console

from assistant.cli import SAMPLE_WEEK
from assistant.digest.publisher import DigestPublisher, PostedRef, plan_posts
from assistant.messages import Reply
from assistant.runtime import Runtime
from assistant.settings import Settings
from assistant.sources.potw import PotwSource
from connectors.console.chat import ConsoleChat
from connectors.console.digest import ConsoleDigestChannel
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.qdrant_server import FakeQdrantServer

QUESTIONS = (
    "What problem does {title} address?",
    "Which method does {title} propose?",
    "How does {title} compare with earlier work?",
    "What numbers does {title} report?",
    "What are the limitations of {title}?",
)
FOLLOW_UPS = (
    "What are its limitations?",
    "How is it evaluated?",
    "Which baselines does it beat?",
    "What would be a next step?",
    "Does it need special hardware?",
)
SEARCHES = (
    "faster attention on GPUs",
    "long context language models",
    "retrieval augmented generation",
    "reasoning with small models",
    "agents that use tools",
    "FP8 low precision kernels",
)


@dataclass(frozen=True)
class SoakConfig:
    """How big the run is and how often things break (all on a seeded schedule)."""

    requests: int = 2000
    sessions: int = 4
    seed: int = 7
    llm_fault_rate: float = 0.08  # of questions: the next LLM call fails somehow
    index_outages: int = 4  # the Qdrant server goes away this many times...
    outage_seconds: float = 1.5  # ...for this long each
    index_retry_seconds: float = 0.5  # QDRANT_RETRY_SECONDS: fail fast this long after
    refused_pause: float = 0.25  # a person told "try again" waits a moment
    digest_rounds: int = 3
    memory_every: int = 100  # requests between two memory samples
    llm_timeout: float = 1.0


@dataclass(frozen=True)
class Outcome:
    """One request: what was sent and what came back."""

    session: int
    kind: str
    thread: str
    seconds: float
    reply_kind: str | None
    mode: str | None
    text: str
    error: str | None = None  # an exception escaped the connector (never acceptable)

    @property
    def answered(self) -> bool:
        return self.error is None and self.reply_kind not in (None, "error") and bool(self.text)

    @property
    def refused(self) -> bool:
        return self.error is None and self.reply_kind == "error" and bool(self.text.strip())


@dataclass
class SoakReport:
    """What happened, and the checks the run must pass."""

    config: SoakConfig
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    rss_mb: list[float] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    turns_expected: dict[tuple[str, str], int] = field(default_factory=dict)
    turns_found: dict[tuple[str, str], int] = field(default_factory=dict)
    digest_keys: Counter[tuple[str, str]] = field(default_factory=Counter)
    digest_planned: int = 0
    digest_targets: int = 0
    digest_recovered: int = 0

    def latencies(self, kind: str | None = None) -> list[float]:
        return sorted(o.seconds for o in self.outcomes if kind is None or o.kind == kind)

    def memory_growth_mb(self) -> float:
        """Resident memory at the end minus after warm-up (the median of each quarter)."""
        if len(self.rss_mb) < 8:
            return 0.0
        quarter = len(self.rss_mb) // 4
        return statistics.median(self.rss_mb[-quarter:]) - statistics.median(
            self.rss_mb[quarter : 2 * quarter]
        )

    def problems(self, max_growth_mb: float = 40.0) -> list[str]:
        found = []
        unanswered = [o for o in self.outcomes if not (o.answered or o.refused)]
        if len(self.outcomes) < self.config.requests:
            found.append(f"only {len(self.outcomes)} of {self.config.requests} requests ran")
        for o in unanswered[:5]:
            found.append(f"not answered: {o.kind} in {o.thread}: {o.error or o.text[:80]!r}")
        lost = {k: (v, self.turns_found.get(k, 0)) for k, v in self.turns_expected.items()}
        for key, (expected, got) in lost.items():
            if expected != got:
                found.append(f"thread {key}: {got} turns stored, {expected} expected")
        twice = [k for k, n in self.digest_keys.items() if n > 1]
        if twice:
            found.append(f"digest messages posted more than once: {twice[:3]}")
        posted = len(self.digest_keys)
        if posted != self.digest_planned * self.digest_targets:
            found.append(
                f"{posted} digest messages posted, "
                f"{self.digest_planned * self.digest_targets} planned"
            )
        if self.memory_growth_mb() > max_growth_mb:
            found.append(f"memory grew {self.memory_growth_mb():.1f} MB after warm-up")
        return found

    def summary(self) -> dict[str, object]:
        kinds = Counter(o.kind for o in self.outcomes)
        all_ms = [s * 1000 for s in self.latencies()]
        return {
            "requests": len(self.outcomes),
            "by_kind": dict(kinds),
            "answered": sum(o.answered for o in self.outcomes),
            "refused": sum(o.refused for o in self.outcomes),
            "unanswered": sum(not (o.answered or o.refused) for o in self.outcomes),
            "llm_fallbacks": sum(
                o.kind in ("ask", "follow_up") and o.mode == "extractive" for o in self.outcomes
            ),
            "index_unavailable": sum(
                o.refused and "index" in o.text.lower() for o in self.outcomes
            ),
            "faults": dict(self.faults),
            "seconds": round(self.seconds, 1),
            "requests_per_second": round(len(self.outcomes) / self.seconds, 1)
            if self.seconds
            else 0,
            "p50_ms": round(_percentile(all_ms, 50), 1),
            "p95_ms": round(_percentile(all_ms, 95), 1),
            "max_ms": round(max(all_ms, default=0.0), 1),
            "p50_ms_by_kind": {
                kind: round(_percentile([s * 1000 for s in self.latencies(kind)], 50), 1)
                for kind in sorted(kinds)
            },
            "threads": len(self.turns_expected),
            "turns": sum(self.turns_found.values()),
            "digest_posts": sum(self.digest_keys.values()),
            "digest_unique": len(self.digest_keys),
            "digest_recovered": self.digest_recovered,
            "rss_start_mb": round(self.rss_mb[0], 1) if self.rss_mb else 0,
            "rss_end_mb": round(self.rss_mb[-1], 1) if self.rss_mb else 0,
            "rss_growth_after_warmup_mb": round(self.memory_growth_mb(), 1),
        }


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def rss_mb() -> float:
    """This process's resident memory, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _DyingChannel(ConsoleDigestChannel):
    """The console digest channel of a publisher process that dies after its n-th post
    (the post is out, the publisher never records it)."""

    def __init__(self, console: Console, log_path: Path, die_after: int) -> None:
        super().__init__(console, log_path)
        self._left = die_after

    async def post(self, channel: str, payload: object, key: str, thread: str | None) -> PostedRef:
        ref = await super().post(channel, payload, key, thread)
        self._left -= 1
        if self._left <= 0:
            raise _Killed(key)
        return ref


class _Killed(Exception):
    pass


class _Schedule:
    """Which request numbers get which fault, decided up front from the seed."""

    def __init__(self, config: SoakConfig) -> None:
        rng = random.Random(config.seed)
        self.llm: dict[int, str] = {}
        kinds = ("error_retried", "error_fallback", "timeout", "garbage")
        for i in range(config.requests):
            if rng.random() < config.llm_fault_rate:
                self.llm[i] = rng.choice(kinds)
        gap = config.requests // (config.index_outages + 1)
        self.outage_starts = {gap * (k + 1) for k in range(config.index_outages)}
        self.digest_at = {
            config.requests * (k + 1) // (config.digest_rounds + 1)
            for k in range(config.digest_rounds)
        }


class Soak:
    """One soak run over a fresh data dir."""

    def __init__(self, config: SoakConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.report = SoakReport(config)
        self._schedule = _Schedule(config)
        self._lock = threading.Lock()
        self._next = 0
        self._outages: list[threading.Timer] = []
        self._digest_threads: list[threading.Thread] = []
        self._digest_errors: list[BaseException] = []

    def run(self) -> SoakReport:
        with FakeOpenAIServer() as llm, FakeQdrantServer() as qdrant:
            self.llm, self.qdrant = llm, qdrant
            settings = self._settings(llm.base_url, qdrant.url)
            with Runtime(settings) as rt:
                self.rt = rt
                week = self._prepare()
                digest = rt.digest_builder.load(week, settings.digest.language)
                self._digest = digest
                started = time.perf_counter()
                workers = [
                    threading.Thread(target=self._session, args=(n,), name=f"soak-{n}")
                    for n in range(self.config.sessions)
                ]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
                for thread in self._digest_threads:
                    thread.join()
                self.report.seconds = time.perf_counter() - started
                for timer in self._outages:
                    timer.cancel()
                qdrant.up()
                self._collect()
        if self._digest_errors:
            raise self._digest_errors[0]
        return self.report

    def _settings(self, llm_url: str, qdrant_url: str) -> Settings:
        s = Settings(data_dir=self.workdir / "data")
        s.openai.base_url = llm_url
        s.openai.api_key = None
        s.openai.timeout = self.config.llm_timeout
        s.openai.max_retries = 1
        s.qdrant.url = qdrant_url
        s.qdrant.timeout = 5
        s.qdrant.retry_seconds = self.config.index_retry_seconds
        s.answer.user_per_minute = 100_000  # the soak measures the stack, not the limiter
        s.answer.channel_per_minute = 100_000
        s.digest.claim_seconds = 0.5  # a dead publisher's claim is taken over quickly
        return s

    def _prepare(self) -> date:
        source = PotwSource.from_location(SAMPLE_WEEK)
        self.rt.ingestor.ingest(source, offline=True)
        week = max(PotwSource.from_location(SAMPLE_WEEK).weeks())
        self.rt.digest_builder.build_week(week, "potw", self.rt.settings.digest.language)
        self.papers = [(p.paper_id, p.title) for p in self.rt.store.papers(week=week)]
        return week

    # -- the sessions ------------------------------------------------------------------

    def _session(self, number: int) -> None:
        rng = random.Random(self.config.seed * 1000 + number)
        console = Console(file=io.StringIO(), width=100, color_system=None)
        chat = ConsoleChat(self.rt.assistant, console, user=f"user{number}", channel="soak")
        in_thread = 0
        while True:
            index = self._claim_request()
            if index is None:
                return
            kind, line = self._pick(rng, in_thread)
            if kind == "new_thread":
                chat.handle_line("/thread NEW")
                in_thread = 0
                kind, line = self._pick(rng, in_thread)
            self._inject(index, kind)
            chat.last_reply = None
            thread = chat.thread
            started = time.perf_counter()
            error = None
            try:
                chat.handle_line(line)
            except Exception as exc:  # the connector let an exception out: a failure
                error = f"{type(exc).__name__}: {exc}"
            seconds = time.perf_counter() - started
            self._record(number, kind, thread, seconds, chat.last_reply, error)
            reply = chat.last_reply
            if reply is not None and reply.kind == "error" and "try again" in reply.text:
                time.sleep(self.config.refused_pause)
            if kind in ("ask", "follow_up", "show"):
                in_thread += 1
            console.file.seek(0)  # keep the recorded terminal from growing
            console.file.truncate()

    def _pick(self, rng: random.Random, in_thread: int) -> tuple[str, str]:
        paper_id, title = rng.choice(self.papers)
        roll = rng.random()
        if in_thread >= 4 and roll < 0.25:
            return "new_thread", ""
        if roll < 0.30:
            return "search", f"/paper search {rng.choice(SEARCHES)}"
        if roll < 0.55 or in_thread == 0:
            return "ask", f"/paper ask {rng.choice(QUESTIONS).format(title=title)}"
        if roll < 0.90:
            return "follow_up", rng.choice(FOLLOW_UPS)
        if roll < 0.96:
            return "show", f"/paper show {paper_id}"
        return "digest", "/paper digest"

    def _claim_request(self) -> int | None:
        with self._lock:
            if self._next >= self.config.requests:
                return None
            index = self._next
            self._next += 1
            if index % self.config.memory_every == 0:
                self.report.rss_mb.append(rss_mb())
                self.llm.requests.clear()  # the fakes' own request logs are not ours to keep
                self.qdrant.requests.clear()
            if index in self._schedule.outage_starts:
                self.qdrant.down()
                timer = threading.Timer(self.config.outage_seconds, self.qdrant.up)
                timer.start()
                self._outages.append(timer)
                self.report.faults["index_outage"] += 1
            if index in self._schedule.digest_at:
                self._start_digest_round(len(self._digest_threads))
            return index

    def _inject(self, index: int, kind: str) -> None:
        fault = self._schedule.llm.get(index)
        if fault is None or kind not in ("ask", "follow_up"):
            return
        self.report.faults[f"llm_{fault}"] += 1
        if fault == "error_retried":  # one 500: the client's retry gets an answer
            self.llm.fail_next(1, status=500)
        elif fault == "error_fallback":  # 500 twice: retries exhausted, quotes instead
            self.llm.fail_next(2, status=500)
        elif fault == "timeout":
            self.llm.delay_next(2, self.config.llm_timeout + 0.5)
        else:
            self.llm.garbage_next(2)

    def _record(
        self,
        session: int,
        kind: str,
        thread: str,
        seconds: float,
        reply: Reply | None,
        error: str | None,
    ) -> None:
        outcome = Outcome(
            session,
            kind,
            thread,
            seconds,
            reply.kind if reply else None,
            reply.mode if reply else None,
            reply.text if reply else "",
            error,
        )
        with self._lock:
            self.report.outcomes.append(outcome)
            if kind in ("ask", "follow_up") and outcome.reply_kind == "answer":
                key = (f"user{session}", thread)
                self.report.turns_expected[key] = self.report.turns_expected.get(key, 0) + 2

    # -- the digest --------------------------------------------------------------------

    def _start_digest_round(self, round_number: int) -> None:
        thread = threading.Thread(
            target=self._digest_round, args=(round_number,), name=f"digest-{round_number}"
        )
        self._digest_threads.append(thread)
        thread.start()

    def _digest_round(self, round_number: int) -> None:
        try:
            asyncio.run(self._publish_round(f"digest-{round_number}"))
        except BaseException as exc:
            self._digest_errors.append(exc)

    async def _publish_round(self, target: str) -> None:
        """A publisher dies after its 3rd post; two more then race to finish the job."""
        rt, digest = self.rt, self._digest
        quiet = Console(file=io.StringIO(), color_system=None)
        log_path = self.workdir / "console_posts.jsonl"
        dying = DigestPublisher(rt.store, rt.conversations, claim_seconds=0.5)
        with contextlib.suppress(_Killed):
            await dying.publish(digest, _DyingChannel(quiet, log_path, die_after=3), target)
        await asyncio.sleep(0.6)  # its claim goes stale
        racers = [
            DigestPublisher(rt.store, rt.conversations, claim_seconds=0.5, poll_seconds=0.05)
            for _ in range(2)
        ]
        channel = ConsoleDigestChannel(quiet, log_path)
        reports = await asyncio.gather(*(p.publish(digest, channel, target) for p in racers))
        with self._lock:
            self.report.digest_recovered += sum(r.recovered for r in reports)

    # -- the checks --------------------------------------------------------------------

    def _collect(self) -> None:
        conversations = self.rt.conversations
        for user, thread in self.report.turns_expected:
            conversation = conversations.get("console", "soak", thread)
            found = conversations.count_turns(conversation) if conversation else 0
            self.report.turns_found[(user, thread)] = found
        renderer = ConsoleDigestChannel(Console(file=io.StringIO()), self.workdir / "unused")
        self.report.digest_planned = len(plan_posts(self._digest, renderer))
        self.report.digest_targets = len(self._schedule.digest_at)
        log_path = self.workdir / "console_posts.jsonl"
        for line in log_path.read_text().splitlines() if log_path.exists() else []:
            entry = json.loads(line)
            self.report.digest_keys[(entry["channel"], entry["key"])] += 1


def run_soak(config: SoakConfig, workdir: Path) -> SoakReport:
    return Soak(config, workdir).run()
