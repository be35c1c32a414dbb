"""Slack's Events API over HTTP: aiohttp's web server in front of the bolt `App`.

bolt-python's web adapters are two conversion functions and a handler; this is that shape
for the sync `App` on aiohttp's server (bolt's aiohttp adapter is written for `AsyncApp`:
its response conversion is used as is, the request conversion builds the sync
`BoltRequest` the same way). aiohttp gives what the stdlib server lacked: a real listen
backlog, thousands of connections on one event loop, a body size limit and a deadline for
a connection to send its request.

In front of bolt, every request is checked the way Slack signs it, so junk costs one log
line and a 4xx instead of a traceback: a missing, malformed or stale timestamp, a bad
signature or a replayed one gets 401; a body over the limit 413; a body that is not UTF-8,
JSON or a form 400; a body not sent within the deadline 408. The checks and bolt's
dispatch run on a thread pool, never on the event loop.

    server = SlackHttpServer(app, "0.0.0.0", 3000, first_time=store.first_time)
    server.start()      # a background thread; returns once listening
    ...
    server.stop()
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import resource
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.aiohttp import to_aiohttp_response

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
MAX_AGE_SECONDS = 5 * 60  # Slack's rule: older signed requests are refused


@dataclass(frozen=True)
class HttpLimits:
    """What one HTTP request may cost. Slack's requests are a few kB, sent at once."""

    backlog: int = 2048  # connections the kernel queues before accept
    max_body_bytes: int = 1024 * 1024  # larger bodies get 413 without being read
    read_timeout: float = 5.0  # seconds to send the headers, and again the body
    dispatch_threads: int = 16  # requests checked and handed to bolt at once
    # How often a busy thread hands over the GIL (Python's default is 5 ms): shorter lets
    # the acknowledging threads in between answers being computed. None leaves it alone.
    gil_switch_interval: float | None = 0.001


def to_bolt_request(body: str, query: str, headers: Mapping[str, str]) -> BoltRequest:
    """The sync `BoltRequest` for an HTTP request (as bolt's aiohttp adapter builds its
    async one). Raises ValueError when the body is not the JSON or form it says it is."""
    try:
        return BoltRequest(body=body, query=query, headers=dict(headers))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ValueError(f"malformed body ({type(exc).__name__})") from None


class SlackRequestCheck:
    """Slack's request signing, checked on the raw bytes: (status, reason) to refuse a
    request, or None to pass it on. A signature is accepted once (`first_time`, shared
    through SQLite by every process on the data dir), so a replay within the five minutes
    a timestamp is valid gets 401 too."""

    def __init__(
        self,
        signing_secret: str,
        first_time: Callable[[str], bool] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = signing_secret.encode()
        self._first_time = first_time
        self._clock = clock

    def refusal(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, str] | None:
        lower = {k.lower(): v for k, v in headers.items()}
        timestamp = lower.get("x-slack-request-timestamp", "")
        signature = lower.get("x-slack-signature", "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return 401, "missing or malformed X-Slack-Request-Timestamp"
        if abs(self._clock() - int(timestamp)) > MAX_AGE_SECONDS:
            return 401, "stale X-Slack-Request-Timestamp (over 5 minutes)"
        mac = hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
        if not hmac.compare_digest(f"v0={mac.hexdigest()}", signature):
            return 401, "invalid X-Slack-Signature"
        if self._first_time is not None and not self._first_time(f"slack-sig:{signature}"):
            return 401, "replayed request (this signature was already used)"
        return None


class SlackHttpHandler:
    """`POST /slack/events` to bolt after the checks; `GET /healthz` for load balancers."""

    def __init__(
        self,
        app: App,
        check: SlackRequestCheck,
        limits: HttpLimits,
        path: str = EVENTS_PATH,
    ) -> None:
        self._app = app
        self._check = check
        self._limits = limits
        self._path = path
        self._pool = ThreadPoolExecutor(limits.dispatch_threads, thread_name_prefix="slack-http")

    def web_app(self) -> web.Application:
        webapp = web.Application(client_max_size=self._limits.max_body_bytes)
        webapp.router.add_post(self._path, self.events)
        webapp.router.add_get(HEALTH_PATH, self.health)
        return webapp

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def events(self, request: web.Request) -> web.StreamResponse:
        limit = self._limits.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _refuse(
                request, 413, f"body of {request.content_length:,} bytes (limit {limit:,})"
            )
        try:
            async with asyncio.timeout(self._limits.read_timeout):
                body = await request.read()
        except TimeoutError:
            return _refuse(request, 408, f"body not sent within {self._limits.read_timeout:g} s")
        except web.HTTPRequestEntityTooLarge:
            return _refuse(request, 413, f"body over {limit:,} bytes")
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(
            self._pool, self.dispatch, body, request.query_string, request.headers
        )
        if isinstance(response, tuple):
            return _refuse(request, *response)
        return await to_aiohttp_response(response)

    def dispatch(
        self, body: bytes, query: str, headers: Mapping[str, str]
    ) -> BoltResponse | tuple[int, str]:
        """Bolt's response, or (status, reason) to refuse the request. Runs on a pool
        thread: bolt waits there for the listener's ack."""
        refused = self._check.refusal(body, headers)
        if refused is not None:
            return refused
        try:
            bolt_request = to_bolt_request(body.decode("utf-8"), query, headers)
        except UnicodeDecodeError:
            return 400, "the body is not UTF-8"
        except ValueError as exc:
            return 400, str(exc)
        return self._app.dispatch(bolt_request)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _refuse(request: web.Request, status: int, reason: str) -> web.Response:
    log.warning("slack http: %d for %s from %s: %s", status, request.path, request.remote, reason)
    return web.Response(status=status, text=f"{reason}\n")


class SlackHttpServer:
    """The handler on aiohttp's server, on its own event loop in a background thread
    (a `connectors.slack.serve.SlackRunner`)."""

    def __init__(
        self,
        app: App,
        host: str,
        port: int,
        signing_secret: str,
        first_time: Callable[[str], bool] | None = None,
        limits: HttpLimits | None = None,
        path: str = EVENTS_PATH,
    ) -> None:
        self._limits = limits or HttpLimits()
        check = SlackRequestCheck(signing_secret, first_time)
        self._handler = SlackHttpHandler(app, check, self._limits, path)
        self._host, self._port, self._path = host, port, path
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="slack-http")
        self._thread.daemon = True
        self.description = f"HTTP on http://{host}:{port}{path}"

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> None:
        """Listen (raises OSError when the port is taken), then serve in the background."""
        raise_open_file_limit()
        if self._limits.gil_switch_interval is not None:
            sys.setswitchinterval(min(sys.getswitchinterval(), self._limits.gil_switch_interval))
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        try:
            future.result(timeout=30)
        except BaseException:
            self._stop_loop()
            raise
        self.description = f"HTTP on http://{self._host}:{self._port}{self._path}"

    async def _listen(self) -> None:
        runner = web.AppRunner(
            self._handler.web_app(),
            access_log=None,
            keepalive_timeout=self._limits.read_timeout,  # also: to send the first request
            shutdown_timeout=5.0,
        )
        await runner.setup()
        site = web.TCPSite(
            runner, self._host, self._port, backlog=self._limits.backlog, reuse_address=True
        )
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    @staticmethod
    async def _close(runner: web.AppRunner) -> None:
        await runner.cleanup()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:  # connections still open (slow or idle clients)
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def ready(self) -> tuple[bool, str]:
        if self._thread.is_alive() and self._runner is not None:
            return True, f"listening on port {self._port}"
        return False, "the HTTP server is not running"

    def stop(self) -> None:
        if self._runner is not None and self._thread.is_alive():
            cleanup = asyncio.run_coroutine_threadsafe(self._close(self._runner), self._loop)
            try:
                cleanup.result(timeout=10)
            except Exception:
                log.warning("slack http: the server did not close cleanly", exc_info=True)
        self._stop_loop()
        self._handler.close()

    def _stop_loop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()


def raise_open_file_limit(wanted: int = 65536) -> int:
    """Raise this process's soft limit on open files towards the hard limit (many
    systems start services at 1,024, which a few hundred idle connections exhaust);
    returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            log.info("could not raise the open file limit from %d", soft)
    return soft
