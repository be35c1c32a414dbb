"""`paperbot serve`'s lifecycle: connectors, the weekly digest schedule and the operations
endpoint run together until SIGTERM or SIGINT, then stop in order within a grace period.

A connector is anything that satisfies `RunningConnector`; `serve` starts a list of them.

    connectors = start_connectors([lambda: start_slack(...), lambda: start_discord(...)])
    jobs = DigestJobs(lambda slot: digest_service.run_slot(slot, channels))
    service = Service(ScheduleRunner(store, schedule, jobs), jobs, connectors, grace_seconds=20)
    asyncio.run(service.run())
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from assistant.digest.publisher import DigestChannel
from assistant.digest.schedule import ScheduleRunner
from assistant.health import OpsEndpoint, Readiness
from assistant.metrics import Metrics, process_metrics

log = logging.getLogger(__name__)

T = TypeVar("T")
DigestJob = Callable[[datetime], Coroutine[Any, Any, None]]


class RunningConnector(Protocol):
    """A chat connector that `paperbot serve` started: receiving, until `stop`."""

    name: str
    """The platform ("slack", "discord"): the name of its readiness check, and the
    platform of its digest subscriptions."""
    digest_channel: DigestChannel | None
    """Where the scheduler posts this platform's digests (None: the connector posts none)."""

    def ready(self) -> tuple[bool, str]:
        """(connected and receiving?, why not or a short status). Fast; never raises."""
        ...

    def stop(self) -> None:
        """Stop receiving, finish in-flight work within the connector's grace period (or
        hand it back), release resources. Blocking; a second call does nothing."""
        ...


def start_connectors(starters: Sequence[Callable[[], RunningConnector]]) -> list[RunningConnector]:
    """Start each connector in order; if one fails, stop those already started and raise."""
    started: list[RunningConnector] = []
    try:
        for start in starters:
            started.append(start())
    except BaseException:
        for connector in reversed(started):
            connector.stop()
        raise
    return started


class DigestInterruptedError(Exception):
    """`paperbot serve` stopped before a digest run finished; the next start resumes it."""


class DigestJobs:
    """The scheduler's job: each digest run on its own event loop in a daemon thread (a
    digest build blocks for minutes, and serve's loop must keep answering /healthz);
    `drain` waits for running ones at shutdown and interrupts them past the deadline.
    An interrupted run is recorded as failed, so the next start catches it up; the
    publisher's claims make the posts that already went out stay posted once."""

    def __init__(self, job: DigestJob, metrics: Metrics | None = None) -> None:
        self._job = job
        self._metrics = metrics or process_metrics()
        self._running: set[asyncio.Task[Any]] = set()
        self._interrupt = asyncio.Event()

    async def __call__(self, slot: datetime) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            await self._run(slot)
        except Exception:
            self._metrics.count_error("digest")
            raise
        finally:
            self._running.discard(task)

    async def _run(self, slot: datetime) -> None:
        work = asyncio.ensure_future(run_on_own_loop(lambda: self._job(slot), "digest-run"))
        interrupted = asyncio.ensure_future(self._interrupt.wait())
        await asyncio.wait({work, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            interrupted.cancel()
            work.result()
            return
        work.cancel()
        raise DigestInterruptedError(
            f"paperbot serve stopped during the digest run of {slot.isoformat()}; "
            "the next start resumes it"
        )

    async def drain(self, seconds: float) -> None:
        """Wait up to `seconds` for running digest runs, then interrupt the rest."""
        if not self._running:
            return
        log.info("waiting up to %g s for the running digest run", seconds)
        _, pending = await asyncio.wait(set(self._running), timeout=seconds)
        if pending:
            log.warning("the digest run did not finish within %g s: interrupting it", seconds)
            self._interrupt.set()
            await asyncio.wait(pending, timeout=10)


class Service:
    """Runs the schedule, the connectors (already started) and the endpoint until SIGTERM or
    SIGINT, then stops: not ready, no new digest runs, connectors and running digest runs
    finish (within `grace_seconds`), the endpoint closes. The caller closes the index."""

    def __init__(
        self,
        runner: ScheduleRunner,
        jobs: DigestJobs,
        connectors: Sequence[RunningConnector],
        readiness: Readiness | None = None,
        endpoint: OpsEndpoint | None = None,
        grace_seconds: float = 20.0,
        say: Callable[[str], None] = log.info,
    ) -> None:
        self._runner = runner
        self._jobs = jobs
        self._connectors = list(connectors)
        self._readiness = readiness
        self._endpoint = endpoint
        self._grace = grace_seconds
        self._say = say
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        """Begin the shutdown (what SIGTERM and SIGINT do)."""
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, self.request_stop)
        catch_up: asyncio.Task[None] | None = None
        try:
            if self._endpoint is not None:
                await self._endpoint.start()
                self._say(f"health and metrics on {self._endpoint.url} (/healthz /readyz /metrics)")
            catch_up = asyncio.create_task(self._catch_up())
            self._runner.start()
            self._say(f"next digest run {self._runner.next_run().isoformat()}; Ctrl-C stops.")
            await self._stop.wait()
            self._say("stopping")
        finally:
            await self._shutdown(catch_up)
            for sig in signals:
                loop.remove_signal_handler(sig)
        self._say("stopped")

    async def _catch_up(self) -> None:
        try:
            caught = await self._runner.catch_up()
        except Exception:
            log.exception("catching up the missed digest slot failed")
            return
        if caught:
            self._say(f"caught up the digest slot of {caught.isoformat()}")

    async def _shutdown(self, catch_up: asyncio.Task[None] | None) -> None:
        if self._readiness is not None:
            self._readiness.stopping = True  # load balancers stop sending work
        self._runner.stop()
        stops = [in_daemon_thread(c.stop, f"stop-{c.name}") for c in self._connectors]
        await self._jobs.drain(self._grace)
        if catch_up is not None:
            await asyncio.wait({catch_up}, timeout=5)
        if stops:
            _, late = await asyncio.wait(stops, timeout=self._grace + 5)
            if late:
                log.warning("%d connector(s) did not stop in time; exiting anyway", len(late))
        for stopped in stops:
            if stopped.done() and stopped.exception() is not None:
                log.error("stopping a connector failed", exc_info=stopped.exception())
        if self._endpoint is not None:
            await self._endpoint.stop()
        if self._readiness is not None:
            self._readiness.close()


def in_daemon_thread(fn: Callable[[], T], name: str) -> asyncio.Future[T]:
    """`fn()` in a new daemon thread, as a future of the running loop (a thread that never
    returns cannot keep the process from exiting, unlike `asyncio.to_thread`)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, failed: bool) -> None:
        if future.done():
            return
        if failed:
            future.set_exception(value)
        else:
            future.set_result(value)

    def main() -> None:
        try:
            value: Any = fn()
            failed = False
        except BaseException as exc:
            value = RuntimeError("cancelled") if isinstance(exc, asyncio.CancelledError) else exc
            failed = True
        try:
            loop.call_soon_threadsafe(settle, value, failed)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            log.debug("%s finished after its event loop closed", name)

    threading.Thread(target=main, name=name, daemon=True).start()
    return future


async def run_on_own_loop(make: Callable[[], Coroutine[Any, Any, T]], name: str) -> T:
    """Await `make()` run on a fresh event loop in a daemon thread; cancelling this
    cancels it there too (at its next await)."""
    lock = threading.Lock()
    inner: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = []
    cancelled = False

    async def body() -> T:
        with lock:
            if cancelled:
                raise asyncio.CancelledError
            task = asyncio.current_task()
            assert task is not None
            inner.append((asyncio.get_running_loop(), task))
        return await make()

    try:
        return await in_daemon_thread(lambda: asyncio.run(body()), name)
    except asyncio.CancelledError:
        with lock:
            cancelled = True
            for loop, task in inner:
                with contextlib.suppress(RuntimeError):  # it has just finished
                    loop.call_soon_threadsafe(task.cancel)
        raise
