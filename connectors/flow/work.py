"""The connectors' work queue: blocking work (the core) on threads, fair between users.

Answers are slow (an LLM writes them for seconds) and a thread pool is first come, first
served, so ten questions from one person used to make everyone else's `/paper help` wait
behind them. Here work goes in lanes:

- `answer` (ask, follow-ups, search, show...): `workers` threads shared fairly. Each user's
  jobs wait in their own line, users take turns, and no user holds more than `per_user`
  threads at once, so another user always finds a thread free or next in turn.
- `quick` (help, votes, forms, autocomplete, small lookups): its own threads, never behind
  an answer.
- `admin` (subscribe, `digest post`): its own thread, never behind an answer.

    queue = WorkQueue(workers=4)
    reply = await queue.run("answer", user, assistant.run, command, origin)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Lane = Literal["answer", "quick", "admin"]


@dataclass
class _Job:
    user: str
    run: Callable[[], Any]
    future: concurrent.futures.Future[Any]


class _FairLane:
    """Threads that take jobs user by user, in turns, at most `per_user` at once each."""

    def __init__(self, name: str, workers: int, per_user: int) -> None:
        self._per_user = per_user
        self._waiting: dict[str, deque[_Job]] = {}
        self._turns: deque[str] = deque()  # users with waiting jobs, next first
        self._running: dict[str, int] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, user: str, run: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the work queue is shut down")
            if user not in self._waiting:
                self._waiting[user] = deque()
                self._turns.append(user)
            self._waiting[user].append(_Job(user, run, future))
            self._cond.notify()
        return future

    def waiting(self) -> int:
        with self._cond:
            return sum(len(jobs) for jobs in self._waiting.values())

    def shutdown(self, wait: bool, cancel_waiting: bool) -> None:
        with self._cond:
            self._closed = True
            if cancel_waiting:
                for jobs in self._waiting.values():
                    for job in jobs:
                        job.future.cancel()
                self._waiting.clear()
                self._turns.clear()
            self._cond.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()

    def _next(self) -> _Job | None:
        """The first waiting job of the first user in turn below their cap (lock held)."""
        for _ in range(len(self._turns)):
            user = self._turns[0]
            self._turns.rotate(-1)  # whoever is picked or skipped goes to the back
            if self._running.get(user, 0) >= self._per_user:
                continue
            jobs = self._waiting[user]
            job = jobs.popleft()
            if not jobs:
                del self._waiting[user]
                self._turns.remove(user)
            return job
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                job = self._next()
                while job is None:
                    if self._closed and not self._waiting:
                        return
                    self._cond.wait()
                    job = self._next()
                self._running[job.user] = self._running.get(job.user, 0) + 1
            try:
                _settle(job.future, job.run)
            finally:
                with self._cond:
                    self._running[job.user] -= 1
                    if not self._running[job.user]:
                        del self._running[job.user]
                    self._cond.notify_all()


def _settle(future: concurrent.futures.Future[Any], run: Callable[[], Any]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(run())
    except BaseException as exc:  # handed to whoever awaits it
        future.set_exception(exc)


class WorkQueue:
    """Blocking work in lanes (see the module docstring); one per connector."""

    def __init__(
        self,
        workers: int = 4,
        quick_workers: int = 2,
        admin_workers: int = 1,
        per_user: int | None = None,
        name: str = "work",
    ) -> None:
        cap = per_user if per_user is not None else max(1, workers // 2)
        self._answers = _FairLane(f"{name}-answer", workers, cap)
        self._quick = concurrent.futures.ThreadPoolExecutor(quick_workers, f"{name}-quick")
        self._admin = concurrent.futures.ThreadPoolExecutor(admin_workers, f"{name}-admin")

    def submit(
        self, lane: Lane, user: str, fn: Callable[..., T], *args: Any
    ) -> concurrent.futures.Future[T]:
        """Queue `fn(*args)` in `lane` for `user`; its future."""
        if lane == "answer":
            return self._answers.submit(user, lambda: fn(*args))
        pool = self._quick if lane == "quick" else self._admin
        return pool.submit(fn, *args)

    async def run(self, lane: Lane, user: str, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in `lane` for `user`, awaited from an event loop."""
        return await asyncio.wrap_future(self.submit(lane, user, fn, *args))

    def waiting(self) -> int:
        """Answer jobs not started yet."""
        return self._answers.waiting()

    def shutdown(self, wait: bool = True, cancel_waiting: bool = False) -> None:
        """Stop taking work; with `wait`, finish what is running (and, unless
        `cancel_waiting`, what is queued) first."""
        self._answers.shutdown(wait, cancel_waiting)
        self._quick.shutdown(wait=wait, cancel_futures=cancel_waiting)
        self._admin.shutdown(wait=wait, cancel_futures=cancel_waiting)
