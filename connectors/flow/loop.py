"""An event loop in a daemon thread, for flows started from other threads.

bolt calls its listeners on threads of its own; they acknowledge at once and hand the
event to this loop, where the shared flows run (and blocking SDK calls go to the loop's
own threads, so they never wait behind the work queue).

    loop = FlowLoop("slack")
    loop.call_soon(flows.spawn, event)      # from any thread
    loop.run(flows.drain(20))               # wait for it from another thread
    loop.stop()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class FlowLoop:
    """A running event loop in a daemon thread, with `io_threads` for blocking calls."""

    def __init__(self, name: str, io_threads: int = 16) -> None:
        self.loop = asyncio.new_event_loop()
        self._io = concurrent.futures.ThreadPoolExecutor(io_threads, f"{name}-io")
        self.loop.set_default_executor(self._io)
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """`fn(*args)` on the loop, soon (from any thread)."""
        self.loop.call_soon_threadsafe(fn, *args)

    def run(self, work: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `work` on the loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop the loop and its threads (what is still running is abandoned)."""
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
        self._io.shutdown(wait=False, cancel_futures=True)
