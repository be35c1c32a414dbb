"""What the fake servers share: a stdlib HTTP server (`LocalServer`) or an aiohttp app
(`AiohttpServer`, for WebSockets and async routes) on 127.0.0.1, in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web

T = TypeVar("T")


class LocalServer:
    """A threaded HTTP server on 127.0.0.1:<free port>; use as a context manager.

    Subclasses say how requests are handled (`_handler`) and keep their own state.
    """

    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def _bind_port(self) -> int:
        """The port to listen on; 0 picks a free one."""
        return 0

    def start(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", self._bind_port()), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class FakeHandler(BaseHTTPRequestHandler):
    """A request handler base for the fakes: quiet, and a `_send` that tolerates a client
    that already gave up waiting (the timeout tests)."""

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test)

    def log_message(self, format: str, *args: object) -> None:
        pass


class AiohttpServer:
    """An aiohttp app on 127.0.0.1:<free port>, on its own event loop in a daemon thread;
    use as a context manager.

    Subclasses build the app (`_app`, called on the server's loop) and may close what
    they hold open (`_before_shutdown`) before the runner is cleaned up; every task still left
    on the loop is then cancelled. `_call` runs a coroutine there from a test's thread.
    """

    thread_name = "fake-server"
    port = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    def _app(self) -> web.Application:
        raise NotImplementedError

    async def _before_shutdown(self) -> None:
        """Before shutting down: end what the server holds open (e.g. WebSockets)."""

    def start(self) -> Self:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=self.thread_name, daemon=True
        )
        self._thread.start()
        self._call(self._serve())
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._call(self._shutdown(), timeout=15)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            if not thread.is_alive():
                loop.close()
            self._loop = None

    def _call(self, work: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run `work` on the server's loop (from a test's thread) and return its result."""
        assert self._loop is not None, "start the server first"
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)

    async def _serve(self) -> None:
        self._runner = web.AppRunner(
            self._app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def _shutdown(self) -> None:
        await self._before_shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
        current = asyncio.current_task()
        left = [task for task in asyncio.all_tasks() if task is not current]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
