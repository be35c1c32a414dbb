"""The digest's use cases: prepare a week (ingest its list, build the cards) and post it.

Used by `paperbot digest ...` and by the scheduler inside `paperbot serve`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from assistant.conversations import ConversationStore
from assistant.digest.builder import BuildReport, DigestBuilder, monday_of
from assistant.digest.model import Digest
from assistant.digest.publisher import DigestChannel, DigestPublisher, Notify, PublishReport
from assistant.errors import (
    IndexUnavailableError,
    InvalidInputError,
    NotFoundError,
    SourceUnavailableError,
)
from assistant.ingest import Ingestor, IngestReport, Progress
from assistant.settings import DigestSettings
from assistant.sources.base import PaperSource
from assistant.versions import VersionLog

log = logging.getLogger(__name__)

# (source name, week or None, file or URL or None) -> the source to ingest
SourceFactory = Callable[[str, date | None, str | None], PaperSource]


@dataclass
class Prepared:
    """A built digest and what it took."""

    digest: Digest
    build: BuildReport
    ingest: IngestReport | None


class DigestService:
    """Prepares and posts weekly digests."""

    def __init__(
        self,
        ingestor: Ingestor,
        builder: DigestBuilder,
        publisher: DigestPublisher,
        conversations: ConversationStore,
        settings: DigestSettings,
        sources: SourceFactory,
    ) -> None:
        self._ingestor = ingestor
        self._builder = builder
        self._publisher = publisher
        self._conversations = conversations
        self._settings = settings
        self._sources = sources
        self._channels: dict[str, DigestChannel] = {}

    def register_channel(self, platform: str, channel: DigestChannel) -> None:
        """Where `post_now` posts for `platform` (a running connector's digest channel)."""
        self._channels[platform] = channel

    def prepare(
        self,
        day: date | None,
        source: str | None = None,
        language: str | None = None,
        location: str | None = None,
        offline: bool = False,
        progress: Progress | None = None,
    ) -> Prepared:
        """Ingest the week's list (from `location`, or online), then build its digest."""
        source = source or self._settings.source
        language = language or self._settings.language
        ingest = None
        if location is not None or not offline:
            week = monday_of(day) if day and source != "potw" else day
            paper_source = self._sources(source, week, location)
            ingest = self._ingestor.ingest(paper_source, offline=offline, progress=progress)
        week = self._builder.resolve_week(source, day)
        digest, build = self._builder.build_week(week, source, language)
        return Prepared(digest, build, ingest)

    def post_now(
        self, platform: str, target: str, day: date | None, notify: Notify | None = None
    ) -> tuple[date, PublishReport]:
        """`/paper digest post`: the digest of the listed week containing `day` (default:
        the newest), from the stored papers, posted to `target` exactly once. Blocking:
        connectors call it from their worker threads. `notify` hears when the post waits
        for another one or resumes an interrupted one."""
        channel = self._channels.get(platform)
        if channel is None:
            raise InvalidInputError(
                f"Posting the digest here needs `paperbot serve --{platform}`; in a terminal, "
                "use `paperbot digest post`."
            )
        language, source = self._settings.language, self._settings.source
        week = self._builder.resolve_week(source, day)
        try:
            digest = self._builder.load(week, language, source)
        except NotFoundError:  # not built yet: build it from the stored papers
            digest, _ = self._builder.build_week(week, source, language)
        return week, asyncio.run(self.publish(digest, channel, target, notify))

    async def publish(
        self,
        digest: Digest,
        channel: DigestChannel,
        target: str,
        notify: Notify | None = None,
    ) -> PublishReport:
        return await self._publisher.publish(digest, channel, target, notify)

    async def run_slot(self, slot: datetime, channels: Mapping[str, DigestChannel]) -> None:
        """The scheduled job: prepare the week that just ended, post it to subscribers."""
        subscribers = [
            (platform, target)
            for platform, target in self._conversations.subscriptions()
            if platform in channels
        ]
        if not subscribers:
            log.info("no subscribed channel on the enabled connectors; nothing to post")
            return
        source = self._settings.source
        day = None if source == "potw" else monday_of(slot.date()) - timedelta(days=7)
        # ingest and card writing block for minutes: keep the event loop (health, connectors) free
        prepared = await asyncio.to_thread(self.prepare, day, source)
        for platform, target in subscribers:
            report = await self.publish(prepared.digest, channels[platform], target)
            log.info(
                "digest %s to %s:%s: %d posted, %d already there",
                prepared.digest.week,
                platform,
                target,
                report.posted,
                report.already_posted,
            )
        try:  # new versions of the papers posted lately are news in their threads
            await asyncio.to_thread(self.check_versions)
        except (SourceUnavailableError, IndexUnavailableError) as exc:
            log.warning("checking posted papers for new versions failed: %s", exc)
        await self.post_updates(channels)

    def check_versions(self, progress: Progress | None = None) -> IngestReport:
        """Ask arXiv for new versions of the papers whose cards went out in the last
        `PAPERBOT_DIGEST_VERSION_WATCH_DAYS` days (blocking: arXiv is asked politely)."""
        watched = VersionLog(self._ingestor.store).watched(self._settings.version_watch_days)
        return self._ingestor.check_versions(watched, progress)

    async def post_updates(self, channels: Mapping[str, DigestChannel]) -> int:
        """Post the due version notes on every platform in `channels`; how many went out."""
        posted = 0
        for platform, channel in channels.items():
            try:
                report = await self._publisher.publish_updates(channel)
            except Exception:  # one platform's trouble does not keep the others' notes
                log.exception("posting version notes on %s failed", platform)
                continue
            posted += report.posted
            if report.posted:
                log.info("posted %d version note(s) on %s", report.posted, platform)
        return posted
