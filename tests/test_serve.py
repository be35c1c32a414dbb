"""`paperbot serve` run for real: its health, readiness and metrics endpoint, a clean stop on
SIGTERM, and what other commands say while it holds the embedded index. The parts
(readiness checks, the endpoint, digest runs interrupted by a shutdown, the Slack
connector's bounded stop) are also tested in-process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import pytest

from assistant.digest.schedule import JOB, ScheduleRunner, WeeklySchedule
from assistant.errors import ConfigError
from assistant.health import OpsEndpoint, Readiness, state_check
from assistant.metrics import Metrics
from assistant.serving import DigestJobs, Service
from assistant.state import StateStore
from connectors.slack.serve import RunningSlack
from tests.conftest import FIXTURES, ROOT
from tests.test_cli import run

SAMPLE = ROOT / "assistant" / "data" / "sample_potw.md"
MORE_PAPERS = FIXTURES / "potw_sample.md"
PAPERBOT = [sys.executable, "-m", "assistant"]


def get(url: str, timeout: float = 10.0) -> tuple[int, str, Mapping[str, str]]:
    """(status, body, headers) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers


class Served:
    """`paperbot serve ...` as a subprocess, its output in a file; `url` is its health and
    metrics endpoint (PAPERBOT_HTTP_PORT=0: the port it printed)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self._args = args
        self._env = {**env, "PAPERBOT_HTTP_PORT": "0"}
        self._log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 180.0) -> Self:
        with self._log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*PAPERBOT, "serve", *self._args],
                env=self._env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"health and metrics on (http://\S+)", self.output)
            if found:
                self.url = found.group(1)
                return self
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}:\n{self.output}")
            time.sleep(0.1)
        raise AssertionError(f"serve did not start within {timeout} s:\n{self.output}")

    @property
    def output(self) -> str:
        return self._log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status, body, _ = get(f"{self.url}/readyz")
            if status == 200 or time.monotonic() > deadline:
                assert status == 200, body
                return dict(json.loads(body))
            time.sleep(0.2)

    def terminate(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds it took to exit)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"serve ignored SIGTERM for {timeout} s:\n{self.output}") from None
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def offline_env(data: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PAPERBOT_DATA_DIR": str(data),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


@pytest.fixture
def ingested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(data))
    code, _, err = run(capsys, "ingest", "potw", "--file", str(SAMPLE), "--offline")
    assert code == 0, err
    return data


@pytest.mark.slow
def test_serve_answers_probes_and_metrics_refuses_a_second_user_of_the_index_and_stops_on_sigterm(
    ingested: Path, tmp_path: Path, capsys: Any
) -> None:
    env = offline_env(ingested)
    served = Served([], env, tmp_path / "serve.log").start()
    try:
        status, body, _ = get(f"{served.url}/healthz")
        assert (status, body) == (200, "ok\n")
        checks = served.wait_ready()["checks"]
        assert checks["index"]["ok"] and checks["state"]["ok"]

        status, page, headers = get(f"{served.url}/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        assert 'paperbot_check_ok{check="index"} 1.0' in page
        for family in ("requests_total", "answer_seconds", "llm_tokens_total", "errors_total"):
            assert f"# TYPE paperbot_{family} " in page
        assert "process_resident_memory_bytes" in page

        # The embedded index is serve's now: other users are told why, and what to do.
        for command in (
            ["ingest", "potw", "--file", str(MORE_PAPERS), "--all", "--offline"],
            ["serve"],
        ):
            other = subprocess.run(
                [*PAPERBOT, *command],
                env={**env, "PAPERBOT_HTTP_PORT": "0"},
                cwd=ROOT,
                capture_output=True,
                timeout=120,
            )
            said = " ".join(other.stderr.decode().split())  # rich wraps at 80 columns
            assert other.returncode == 2, said
            assert "in use by another paperbot process" in said and "QDRANT_URL" in said
            assert "Traceback" not in said
        code, seconds = served.terminate()
    finally:
        served.kill()
    assert code == 0, served.output
    assert seconds < 10, f"took {seconds:.1f} s to stop"
    assert "paperbot serve: stopped" in served.output
    # The index lock is released: the ingest refused above now goes through.
    code, out, err = run(
        capsys, "ingest", "potw", "--file", str(MORE_PAPERS), "--all", "--offline", "--json"
    )
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["indexed_papers"] == 16


# -- readiness and the endpoint, in-process ----------------------------------------------


class SlowCheck:
    """A check that takes `seconds`; counts how often it was started."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = 0

    def __call__(self) -> tuple[bool, str]:
        self.started += 1
        time.sleep(self.seconds)
        return True, "slow but fine"


def broken_check() -> tuple[bool, str]:
    raise RuntimeError("database is locked")


async def fetch(url: str) -> tuple[int, str, Mapping[str, str]]:
    return await asyncio.to_thread(get, url)


async def test_readyz_is_503_naming_each_failing_check_and_never_waits_on_a_slow_one(
    store: StateStore,
) -> None:
    slow = SlowCheck(1.5)
    metrics = Metrics()
    readiness = Readiness(
        [
            ("state", state_check(store)),
            ("index", slow),
            ("slack", lambda: (False, "Socket Mode is not connected")),
            ("discord", broken_check),
        ],
        metrics,
        timeout=0.3,
    )
    endpoint = OpsEndpoint(readiness, metrics, "127.0.0.1", 0)
    await endpoint.start()
    try:
        started = time.monotonic()
        status, body, headers = await fetch(f"{endpoint.url}/readyz")
        assert time.monotonic() - started < 1.2
        assert status == 503 and headers["Content-Type"].startswith("application/json")
        checks = json.loads(body)["checks"]
        assert checks["state"]["ok"] and "schema version" in checks["state"]["reason"]
        assert checks["index"] == {"ok": False, "reason": "no answer within 0.3 s"}
        assert checks["slack"] == {"ok": False, "reason": "Socket Mode is not connected"}
        assert checks["discord"] == {"ok": False, "reason": "RuntimeError: database is locked"}
        await fetch(f"{endpoint.url}/readyz")
        assert slow.started == 1  # still running: not started a second time
        _, page, _ = await fetch(f"{endpoint.url}/metrics")
        assert 'paperbot_check_ok{check="slack"} 0.0' in page
        assert 'paperbot_check_ok{check="state"} 1.0' in page
        await asyncio.sleep(1.5)  # it has returned now: the next probe runs it again
        await fetch(f"{endpoint.url}/readyz")
        assert slow.started == 2
        readiness.stopping = True
        status, body, _ = await fetch(f"{endpoint.url}/readyz")
        assert status == 503 and json.loads(body)["checks"]["state"]["reason"] == "shutting down"
        status, body, _ = await fetch(f"{endpoint.url}/healthz")
        assert status == 200
    finally:
        await endpoint.stop()
        readiness.close()


async def test_a_taken_port_is_a_message_naming_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        endpoint = OpsEndpoint(Readiness([]), Metrics(), "127.0.0.1", port)
        with pytest.raises(ConfigError, match="PAPERBOT_HTTP_PORT"):
            await endpoint.start()


# -- shutdown while a digest runs --------------------------------------------------------


class RecordingConnector:
    """A `RunningConnector` that records its stop."""

    name = "fake"
    digest_channel = None

    def __init__(self) -> None:
        self.stops = 0

    def ready(self) -> tuple[bool, str]:
        return True, "ok"

    def stop(self) -> None:
        self.stops += 1


def slot_status(store: StateStore) -> tuple[str, str | None]:
    row = store.query("SELECT status, detail FROM schedule_runs WHERE job = ?", (JOB,))[0]
    return row["status"], row["detail"]


async def test_sigterm_during_a_long_digest_run_stops_in_time_and_the_next_start_resumes_it(
    store: StateStore,
) -> None:
    running = threading.Event()

    async def long_digest_run(slot: datetime) -> None:
        running.set()
        time.sleep(1.0)  # a blocking build: it must not stall serve's own loop
        await asyncio.sleep(60)  # then a long post

    schedule = WeeklySchedule("* * * * *", "UTC")  # the current minute is a missed slot
    now = datetime.now(UTC)
    jobs = DigestJobs(long_digest_run, Metrics())
    connector = RecordingConnector()
    readiness = Readiness([("state", state_check(store))])
    endpoint = OpsEndpoint(readiness, Metrics(), "127.0.0.1", 0)
    service = Service(
        ScheduleRunner(store, schedule, jobs, clock=lambda: now),
        jobs,
        [connector],
        readiness,
        endpoint,
        grace_seconds=0.5,
    )
    serving = asyncio.create_task(service.run())
    assert await asyncio.to_thread(running.wait, 10)
    started = time.monotonic()
    status, _, _ = await fetch(f"{endpoint.url}/healthz")
    assert status == 200 and time.monotonic() - started < 0.5  # answered during the build
    service.request_stop()
    await asyncio.wait_for(serving, timeout=5)
    assert time.monotonic() - started < 3.5
    assert connector.stops == 1
    status, detail = slot_status(store)
    assert status == "failed" and "the next start resumes it" in (detail or "")

    ran: list[datetime] = []

    async def quick_run(slot: datetime) -> None:
        ran.append(slot)

    restarted = ScheduleRunner(store, schedule, DigestJobs(quick_run), clock=lambda: now)
    resumed = await restarted.catch_up()
    assert resumed is not None and ran == [resumed]
    assert slot_status(store)[0] == "done"


# -- the Slack connector's stop ----------------------------------------------------------


class StubReceiver:
    description = "stub"

    def __init__(self) -> None:
        self.stopped = False

    def start(self) -> None: ...

    def ready(self) -> tuple[bool, str]:
        return (not self.stopped), "listening"

    def stop(self) -> None:
        self.stopped = True


class BusyConnector:
    """A Slack connector whose in-flight answer takes `seconds` to finish."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.closed = 0
        self.abandoned = 0

    def close(self) -> None:
        self.closed += 1
        time.sleep(self.seconds)

    def abandon(self) -> None:
        self.abandoned += 1


@pytest.fixture
def slow_slack() -> Iterator[tuple[RunningSlack, StubReceiver, BusyConnector]]:
    receiver, busy = StubReceiver(), BusyConnector(3.0)
    yield RunningSlack(object(), receiver, busy, grace_seconds=0.3), receiver, busy  # type: ignore[arg-type]


def test_the_slack_connector_stops_receiving_and_waits_for_answers_only_so_long(
    slow_slack: tuple[RunningSlack, StubReceiver, BusyConnector],
) -> None:
    slack, receiver, busy = slow_slack
    assert slack.ready() == (True, "listening")
    started = time.monotonic()
    slack.stop()
    assert time.monotonic() - started < 1.5
    assert receiver.stopped and busy.closed == 1
    assert busy.abandoned == 1  # the queued work past the grace period is dropped
    slack.stop()  # the second call does nothing
    assert busy.closed == 1
    assert slack.ready() == (False, "stopped")
    assert RunningSlack(object()).ready()[0]  # type: ignore[arg-type]  # posting digests only
