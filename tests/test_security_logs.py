"""Secrets never reach the logs: a whole run at DEBUG (ingest, `serve --slack --http` with an
LLM, a search, a question, a follow-up, a forged request, SIGTERM) with distinctive tokens,
then every byte it wrote (output, logs, the data dir) is searched for them."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_serve import PAPERBOT, SAMPLE, Served, get, offline_env
from tests.test_slack import command_body, event_body, signed, user_message
from tests.test_slack_serve import free_port

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-4242-SECRETbot-q8Zt3Vw",
    "SLACK_APP_TOKEN": "xapp-1-SECRETapp-Hk27Lm",
    "SLACK_SIGNING_SECRET": "SECRETsign-9f8e7d6c5b4a",
    "OPENAI_API_KEY": "sk-SECRETopenai-Qx93Vb1Lr",
    "QDRANT_API_KEY": "SECRETqdrant-7Yt4Wp",
}


def post_signed(url: str, body: str, content_type: str, secret: str) -> int:
    request = urllib.request.Request(
        url, data=body.encode(), headers=signed(body, content_type, secret), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def answer(body: dict[str, Any]) -> str:
    return "FlashAttention-3 makes FP8 attention accurate with incoherent processing [1]."


@pytest.mark.slow
def test_no_secret_appears_in_any_output_log_or_file_of_a_debug_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with (
        FakeSlackAPI(bot_token=SECRETS["SLACK_BOT_TOKEN"]) as slack,
        FakeOpenAIServer(reply=answer, api_key=SECRETS["OPENAI_API_KEY"]) as llm,
    ):
        env = {
            **offline_env(data),
            **SECRETS,
            "PAPERBOT_LOG_LEVEL": "DEBUG",
            "SLACK_API_BASE_URL": slack.base_url,
            "OPENAI_BASE_URL": llm.base_url,
            "OPENAI_MAX_RETRIES": "0",
        }
        ingest = subprocess.run(
            [*PAPERBOT, "ingest", "potw", "--file", str(SAMPLE), "--offline"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            timeout=300,
        )
        assert ingest.returncode == 0, ingest.stderr.decode()
        port = free_port()
        args = ["--slack", "--http", "--port", str(port), "--host", "127.0.0.1"]
        served = Served(args, env, tmp_path / "serve.log").start()
        try:
            assert served.wait_ready()["checks"]["slack"]["ok"]
            events = f"http://127.0.0.1:{port}/slack/events"
            form = "application/x-www-form-urlencoded"
            secret = SECRETS["SLACK_SIGNING_SECRET"]
            search = command_body("search FP8 attention", "U1", "C1", slack.response_url())
            assert post_signed(events, search, form, secret) == 200
            ask = command_body("ask How is FP8 attention kept accurate?", "U1", "C1", "")
            assert post_signed(events, ask, form, secret) == 200
            root = slack.wait_for("chat.update", timeout=120)[0].params["ts"]  # the answer
            follow_up = user_message("And on which GPUs?", "1000.5", thread_ts=root)
            event = event_body(follow_up, "Ev1")
            assert post_signed(events, event, "application/json", secret) == 200
            slack.wait_for("chat.postMessage", count=2, timeout=120)
            assert post_signed(events, search, form, "a-forged-secret") == 401
            _, metrics_page, _ = get(f"{served.url}/metrics")
            code, _ = served.terminate()
        finally:
            served.kill()
        used_tokens = {c.token for c in slack.calls if c.method != "response_url"}
        llm_calls = [r for r in llm.requests if r.path.endswith("/chat/completions")]
    assert code == 0, served.output
    assert used_tokens == {SECRETS["SLACK_BOT_TOKEN"]}  # the secrets were really in use
    assert llm_calls and all(r.authorized for r in llm_calls)
    outputs = {
        "ingest stdout": ingest.stdout,
        "ingest stderr": ingest.stderr,
        "serve output": served.output.encode(),
        "/metrics": metrics_page.encode(),
    }
    assert b" DEBUG " in ingest.stderr + outputs["serve output"]  # DEBUG logging was on
    outputs.update({str(f): f.read_bytes() for f in tmp_path.rglob("*") if f.is_file()})
    leaks = [
        f"{name} in {where}"
        for where, content in outputs.items()
        for name, value in SECRETS.items()
        if value.encode() in content or json.dumps(value).encode() in content
    ]
    assert not leaks, leaks
