"""The connectors' work queue: one user's queued answers never hold up anyone else."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from connectors.flow.work import WorkQueue


def slow(seconds: float, log: list[str], name: str) -> str:
    log.append(f"start {name}")
    time.sleep(seconds)
    return name


def test_one_users_twenty_slow_jobs_leave_threads_for_everyone_else() -> None:
    queue = WorkQueue(workers=4, per_user=2)
    log: list[str] = []
    try:
        hogs = [queue.submit("answer", "A", slow, 1.0, log, f"a{n}") for n in range(20)]
        time.sleep(0.1)  # A's jobs are running and waiting
        asked = time.monotonic()
        other = queue.submit("answer", "B", slow, 0.0, log, "b")
        assert other.result(timeout=5) == "b"
        assert time.monotonic() - asked < 0.5  # a thread was free for B
        assert log.count("start a0") == 1 and sum(e.startswith("start a") for e in log) <= 3
    finally:
        for hog in hogs:
            hog.cancel()
        queue.shutdown(wait=True, cancel_waiting=True)


def test_users_take_turns_when_every_thread_is_busy() -> None:
    queue = WorkQueue(workers=1, per_user=1)
    order: list[str] = []
    gate = threading.Event()
    try:
        first = queue.submit("answer", "A", gate.wait, 5)
        jobs = [queue.submit("answer", "A", order.append, f"a{n}") for n in range(3)]
        jobs += [queue.submit("answer", "B", order.append, f"b{n}") for n in range(2)]
        gate.set()
        first.result(timeout=5)
        for job in jobs:
            job.result(timeout=5)
    finally:
        queue.shutdown()
    assert order == ["b0", "a0", "b1", "a1", "a2"]  # B waits for one of A's, not three


def test_quick_and_admin_work_never_waits_behind_answers() -> None:
    queue = WorkQueue(workers=2, per_user=2)
    gate = threading.Event()
    try:
        busy = [queue.submit("answer", f"U{n}", gate.wait, 10) for n in range(6)]
        started = time.monotonic()
        assert queue.submit("quick", "U9", lambda: "help").result(timeout=2) == "help"
        assert queue.submit("admin", "U9", lambda: "subscribed").result(timeout=2)
        assert time.monotonic() - started < 0.5 and queue.waiting() >= 4
    finally:
        gate.set()
        for job in busy:
            job.result(timeout=5)
        queue.shutdown()


async def test_run_awaits_the_result_and_errors_pass_through() -> None:
    queue = WorkQueue(workers=1)

    def broken() -> None:
        raise ValueError("no")

    try:
        assert await queue.run("answer", "A", lambda: 42) == 42
        with pytest.raises(ValueError, match="no"):
            await queue.run("answer", "A", broken)
        results = await asyncio.gather(*(queue.run("quick", "A", str, n) for n in range(5)))
        assert results == ["0", "1", "2", "3", "4"]
    finally:
        queue.shutdown()


def test_shutdown_finishes_running_work_and_can_drop_what_waits() -> None:
    queue = WorkQueue(workers=1, per_user=1)
    gate, began = threading.Event(), threading.Event()
    running = queue.submit("answer", "A", lambda: began.set() or gate.wait(5))
    waiting = queue.submit("answer", "A", lambda: "late")
    assert began.wait(5)
    closing = threading.Thread(target=queue.shutdown, kwargs={"cancel_waiting": True})
    closing.start()
    time.sleep(0.1)
    gate.set()
    closing.join(timeout=5)
    assert running.result() is True and waiting.cancelled()
    with pytest.raises(RuntimeError):
        queue.submit("answer", "A", lambda: None)
