"""When the weekly digest runs: a crontab schedule in a time zone, each slot run once.

At start-up the most recent slot that has not completed is caught up, once; older missed
slots are not replayed. Slots are claimed in SQLite, so two replicas never both run one
(and the publisher's own claims make a repeated run harmless anyway).

>>> runner = ScheduleRunner(store, WeeklySchedule("0 9 * * mon", "Asia/Tokyo"), job)
>>> await runner.run_forever()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from assistant.errors import ConfigError
from assistant.state import StateStore

log = logging.getLogger(__name__)

JOB = "weekly-digest"
EVERY = "version-notes"
STALE_RUN = timedelta(hours=2)  # a "running" slot older than this died with its process


class WeeklySchedule:
    """A crontab expression in a time zone."""

    def __init__(self, expression: str, timezone: str) -> None:
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"PAPERBOT_DIGEST_TIMEZONE={timezone!r} is not a time zone (e.g. Asia/Tokyo)."
            ) from exc
        try:
            self.trigger = CronTrigger.from_crontab(expression, timezone=self.zone)
        except ValueError as exc:
            raise ConfigError(
                f"PAPERBOT_DIGEST_SCHEDULE={expression!r} is not a crontab expression "
                f"(minute hour day month weekday, e.g. '0 9 * * mon'): {exc}"
            ) from exc
        self.expression = expression

    def next_slot(self, after: datetime) -> datetime:
        slot = self.trigger.get_next_fire_time(None, after)
        assert slot is not None
        return slot

    def last_slot(self, now: datetime, horizon: timedelta = timedelta(days=32)) -> datetime | None:
        """The latest slot at or before `now` (within `horizon`)."""
        slot = self.trigger.get_next_fire_time(None, now - horizon)
        latest = None
        while slot is not None and slot <= now:
            latest = slot
            slot = self.trigger.get_next_fire_time(slot, slot + timedelta(seconds=1))
        return latest


class ScheduleRunner:
    """Runs `job(slot)` once per slot; catches up the latest missed slot at start."""

    def __init__(
        self,
        store: StateStore,
        schedule: WeeklySchedule,
        job: Callable[[datetime], Awaitable[None]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        every: tuple[float, Callable[[], Awaitable[object]]] | None = None,
    ) -> None:
        self._store = store
        self._schedule = schedule
        self._job = job
        self._clock = clock
        self._every = every  # (seconds, job): a small job run that often (version notes)
        self._scheduler: AsyncIOScheduler | None = None

    async def catch_up(self) -> datetime | None:
        """Run the latest slot at or before now if it never completed; return it if run."""
        slot = self._schedule.last_slot(self._clock())
        if slot is None or not await asyncio.to_thread(self._claim, slot):
            return None
        log.info("catching up the digest slot of %s", slot.isoformat())
        await self.run_slot(slot, claimed=True)
        return slot

    async def run_slot(self, slot: datetime, claimed: bool = False) -> bool:
        """Run one slot unless it already ran (or is running elsewhere); True if it ran."""
        if not claimed and not await asyncio.to_thread(self._claim, slot):
            return False
        try:
            await self._job(slot)
        except Exception as exc:
            await asyncio.to_thread(self._finish, slot, "failed", repr(exc)[:500])
            log.exception("the digest run of %s failed", slot.isoformat())
            return False
        await asyncio.to_thread(self._finish, slot, "done", None)
        return True

    def start(self) -> None:
        """Schedule future slots on the running event loop."""
        self._scheduler = AsyncIOScheduler(timezone=self._schedule.zone)
        self._scheduler.add_job(
            self._fire,
            self._schedule.trigger,
            id=JOB,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=3600,
        )
        if self._every is not None and self._every[0] > 0:
            self._scheduler.add_job(
                self._run_every,
                "interval",
                seconds=self._every[0],
                id=EVERY,
                coalesce=True,
                max_instances=1,
                next_run_time=datetime.now(self._schedule.zone) + timedelta(seconds=5),
            )
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)

    def next_run(self) -> datetime:
        return self._schedule.next_slot(self._clock())

    async def _run_every(self) -> None:
        assert self._every is not None
        try:
            await self._every[1]()
        except Exception:  # the next round tries again
            log.exception("the periodic job failed")

    async def _fire(self) -> None:
        slot = self._schedule.last_slot(self._clock())
        if slot is not None:
            await self.run_slot(slot)

    def _claim(self, slot: datetime) -> bool:
        key = slot.astimezone(UTC).isoformat()
        now = self._clock()
        with self._store.transaction() as conn:
            row = conn.execute(
                "SELECT status, started_at FROM schedule_runs WHERE job = ? AND slot = ?",
                (JOB, key),
            ).fetchone()
            if row is not None:
                started = datetime.fromisoformat(row["started_at"])
                retry = row["status"] == "failed" or (
                    row["status"] == "running" and now - started > STALE_RUN
                )
                if not retry:
                    return False
            conn.execute(
                "INSERT OR REPLACE INTO schedule_runs (job, slot, status, started_at) "
                "VALUES (?, ?, 'running', ?)",
                (JOB, key, now.isoformat()),
            )
            return True

    def _finish(self, slot: datetime, status: str, detail: str | None) -> None:
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE schedule_runs SET status = ?, finished_at = ?, detail = ? "
                "WHERE job = ? AND slot = ?",
                (status, self._clock().isoformat(), detail, JOB, slot.astimezone(UTC).isoformat()),
            )
