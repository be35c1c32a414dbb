"""Benchmark for issue 15: a burst of signed `/paper search` commands over Slack's HTTP mode.

The Slack connector (real bolt `App`, the core over the 120-paper benchmark corpus, real
embedding model, embedded Qdrant, the fake Web API on 127.0.0.1) is served by (a) the
baseline: bolt's WSGI adapter on the standard library's threaded WSGI server (what HTTP
mode used before: listen backlog 5), and (b) `connectors.slack.http.SlackHttpServer`
(aiohttp). N signed commands are sent at once, each on its own connection, from a separate
client process; for each front: connection errors, HTTP statuses, the acknowledgement time
(p50/p99/max) and how many commands were answered (a reply reached the fake Web API).
Run: `python bench/slack_http.py [N ...]` (default 200 and 500).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_bolt.adapter.wsgi import SlackRequestHandler  # noqa: E402

from assistant.embedding import SentenceTransformerEmbedder  # noqa: E402
from bench.connectors import stack_over_the_corpus, workload  # noqa: E402
from bench.run import percentile, write_doc  # noqa: E402
from connectors.slack.http import SlackHttpServer  # noqa: E402
from tests.fakes.slack_api import FakeSlackAPI  # noqa: E402
from tests.test_slack import SECRET, TOKEN, command_body  # noqa: E402
from tests.test_slack import Bot as SlackBot  # noqa: E402
from tests.test_slack_http import burst as fire_burst  # noqa: E402

BEGIN, END = "<!-- bench:slack-http:begin -->", "<!-- bench:slack-http:end -->"
FORM = "application/x-www-form-urlencoded"
ANSWER_METHODS = ("chat.postEphemeral", "response_url")


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class StdlibFront:
    """The baseline: bolt's WSGI adapter on wsgiref's threaded server (backlog 5)."""

    def __init__(self, bot: SlackBot) -> None:
        self._server = make_server(
            "127.0.0.1", 0, SlackRequestHandler(bot.app), _ThreadingWSGIServer, _Quiet
        )
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def answered(api: FakeSlackAPI, users: str) -> int:
    """Replies that reached the Web API for the users whose ids start with `users` (one
    burst's: a late reply to a request of an earlier burst, which its client gave up on,
    is not counted)."""
    return sum(
        1
        for method in ANSWER_METHODS
        for call in api.calls_to(method)
        if str(call.params.get("user", "")).startswith(users)
    )


def burst(bot: SlackBot, api: FakeSlackAPI, port: int, n: int, run: int) -> dict[str, Any]:
    queries = [q for _, q in workload(200, 0)]
    bodies = [
        command_body(f"search {queries[i % len(queries)]}", f"U{run}x{i}", f"C{i % 50}", "")
        for i in range(n)
    ]
    users = f"U{run}x"
    replies = fire_burst(f"http://127.0.0.1:{port}/slack/events", bodies)
    ok = [seconds for status, seconds in replies if status == "200"]
    deadline = time.monotonic() + 300
    while answered(api, users) < len(ok) and time.monotonic() < deadline:
        time.sleep(0.2)
    statuses = Counter(status for status, _ in replies)
    errors = sum(count for status, count in statuses.items() if not status.isdigit())
    return {
        "requests": n,
        "connection_errors": errors,
        "statuses": dict(statuses),
        "ack_p50": percentile(ok, 0.5) if ok else None,
        "ack_p99": percentile(ok, 0.99) if ok else None,
        "ack_max": max(ok) if ok else None,
        "answered": answered(api, users),
    }


def measure(sizes: list[int]) -> dict[str, Any]:
    embedder = SentenceTransformerEmbedder()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeSlackAPI(bot_token=TOKEN) as api:
        stack = stack_over_the_corpus(Path(tmp), embedder)
        bot = SlackBot(stack, api, workers=4)
        embedder.embed(["warm up"])
        baseline = StdlibFront(bot)
        aio = SlackHttpServer(bot.app, "127.0.0.1", 0, SECRET, first_time=stack.store.first_time)
        baseline.start()
        aio.start()
        try:
            for run, n in enumerate(sizes):
                results[f"stdlib/{n}"] = burst(bot, api, baseline.port, n, 2 * run)
                results[f"aiohttp/{n}"] = burst(bot, api, aio.port, n, 2 * run + 1)
                print(
                    json.dumps(
                        {"n": n, **{k: v for k, v in results.items() if k.endswith(f"/{n}")}}
                    )
                )
        finally:
            aio.stop()
            baseline.stop()
            bot.connector.close()
    return results


def markdown(results: dict[str, Any], when: str, machine: str) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:,.0f} ms"

    rows = []
    for key, r in results.items():
        front, n = key.split("/")
        name = "stdlib WSGI (before)" if front == "stdlib" else "aiohttp (SlackHttpServer)"
        rows.append(
            f"| {name} | {n} | {r['connection_errors']} | {ms(r['ack_p50'])} | "
            f"{ms(r['ack_p99'])} | {ms(r['ack_max'])} | {r['answered']} |"
        )
    return "\n".join(
        [
            BEGIN,
            "## Slack HTTP mode under a burst (issue 15)",
            "",
            f"Measured {when} on {machine}; reproduce with `python bench/slack_http.py`. "
            "N signed `/paper search` commands sent at once (one connection each, from a "
            "separate client process) to the Slack connector over the 120-paper corpus "
            "(real bolt App, real embedding model, embedded Qdrant, fake Web API on "
            "127.0.0.1, rate limits off). *Ack* is the HTTP response time of the requests "
            "that got one; *answered* counts replies that reached the Web API.",
            "",
            "| front | N | connection errors | ack p50 | ack p99 | ack max | answered |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            END,
        ]
    )


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [200, 500]
    results = measure(sizes)
    when = time.strftime("%Y-%m-%d")
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    write_doc(markdown(results, when, machine), BEGIN, END)
    print(markdown(results, when, machine))


if __name__ == "__main__":
    main()
