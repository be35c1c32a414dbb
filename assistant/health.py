"""`paperbot serve`'s operations endpoint: liveness, readiness and Prometheus metrics.

- `GET /healthz`: 200 while the process and its event loop run (liveness).
- `GET /readyz`: 200 when every readiness check passes (the index, the state database, each
  enabled connector), else 503; the JSON body names each check and why it failed.
- `GET /metrics`: the Prometheus text format (OpenMetrics when the scraper asks for it).

Checks are blocking callables run in worker threads, each bounded by a timeout, so a slow
index never stalls the endpoint; a check that has not returned yet is not started again.

>>> readiness = Readiness([("state", state_check(store)), ("index", rt.index_ready)])
>>> endpoint = OpsEndpoint(readiness, metrics, "127.0.0.1", 8080)
>>> await endpoint.start()
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web

from assistant.errors import ConfigError
from assistant.metrics import Metrics
from assistant.state import StateStore

log = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, str]]
"""A readiness check: (ready?, why not or a short status). It may block; it should not raise."""

CHECK_TIMEOUT = 2.0


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict."""

    name: str
    ok: bool
    reason: str


class Readiness:
    """Named readiness checks, run concurrently in worker threads, each within `timeout`."""

    def __init__(
        self,
        checks: Iterable[tuple[str, Check]],
        metrics: Metrics | None = None,
        timeout: float = CHECK_TIMEOUT,
    ) -> None:
        self._checks = list(checks)
        self._metrics = metrics
        self._timeout = timeout
        self._running: dict[str, Future[tuple[bool, str]]] = {}
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readiness")
        self.stopping = False

    async def evaluate(self) -> list[CheckResult]:
        """Every check's verdict (all "not ready" once the service is stopping)."""
        if self.stopping:
            return [CheckResult(name, False, "shutting down") for name, _ in self._checks]
        results = await asyncio.gather(*(self._run(name, check) for name, check in self._checks))
        if self._metrics is not None:
            for result in results:
                self._metrics.set_check(result.name, result.ok)
        return list(results)

    async def _run(self, name: str, check: Check) -> CheckResult:
        running = self._running.get(name)
        if running is None or running.done():
            running = self._pool.submit(_guarded, check)
            self._running[name] = running
        try:
            ok, reason = await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(running)), self._timeout
            )
        except TimeoutError:
            return CheckResult(name, False, f"no answer within {self._timeout:g} s")
        return CheckResult(name, ok, reason)

    def close(self) -> None:
        """Stop the worker threads (a check still running is left to finish on its own)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _guarded(check: Check) -> tuple[bool, str]:
    try:
        ok, reason = check()
    except Exception as exc:  # a check reports, it does not fail the endpoint
        log.warning("readiness check failed: %s", exc)
        return False, f"{type(exc).__name__}: {exc}"[:300]
    return bool(ok), str(reason)[:300]


def state_check(store: StateStore) -> Check:
    """The SQLite state database answers a query."""

    def check() -> tuple[bool, str]:
        return True, f"schema version {store.schema_version}"

    return check


class OpsEndpoint:
    """The aiohttp server of /healthz, /readyz and /metrics, on the running event loop."""

    def __init__(self, readiness: Readiness, metrics: Metrics, host: str, port: int) -> None:
        self._readiness = readiness
        self._metrics = metrics
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        """Listen; raises ConfigError naming PAPERBOT_HTTP_PORT when the port is taken."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self._host, self._port).start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(
                f"The health and metrics endpoint cannot listen on {self._host}:{self._port} "
                f"({exc.strerror or exc}): set PAPERBOT_HTTP_PORT to a free port (0 picks one) "
                "or PAPERBOT_HTTP_HOST to another address."
            ) from exc
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        results = await self._readiness.evaluate()
        ready = all(r.ok for r in results)
        body = {
            "ready": ready,
            "checks": {r.name: {"ok": r.ok, "reason": r.reason} for r in results},
        }
        return web.Response(
            text=json.dumps(body, ensure_ascii=False) + "\n",
            status=200 if ready else 503,
            content_type="application/json",
        )

    async def _metrics_page(self, request: web.Request) -> web.Response:
        await self._readiness.evaluate()  # the paperbot_check_ok gauges are fresh per scrape
        body, content_type = self._metrics.exposition(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})
