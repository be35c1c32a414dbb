"""`paperbot serve --slack`: settings, the scheduler posting to Slack, and the HTTP mode end
to end (a real `paperbot` process answering a signed `/paper search` through the fake
Slack Web API)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.conversations import ConversationStore
from assistant.errors import ConfigError
from assistant.settings import SlackSettings, load_settings
from assistant.state import StateStore
from tests.conftest import ROOT
from tests.fakes.slack_api import FakeSlackAPI, texts
from tests.test_cli import run
from tests.test_slack import SECRET, TOKEN, command_body, signed

SAMPLE = ROOT / "assistant" / "data" / "sample_potw.md"


@pytest.fixture(autouse=True)
def _no_slack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SLACK_"):
            monkeypatch.delenv(name)


@pytest.fixture
def api() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI(bot_token=TOKEN) as fake:
        yield fake


def test_missing_slack_secrets_name_the_variable_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN and SLACK_APP_TOKEN"):
        SlackSettings().require(socket_mode=True)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        load_settings().slack.require(socket_mode=False)
    assert load_settings().slack.require(socket_mode=True, receive=False)[0] == "xoxb-1"
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("SLACK_ALLOWED_CHANNELS", " C1, C2 ,")
    settings = load_settings().slack
    assert settings.require(socket_mode=False) == ("xoxb-1", None, "s")
    assert settings.allowed_channel_ids == {"C1", "C2"}
    assert "xoxb-1" not in repr(settings)  # secrets stay out of logs


def test_serve_refuses_a_slack_setup_it_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PAPERBOT_DATA_DIR", str(tmp_path / "data"))
    code, _, err = run(capsys, "serve", "--slack")
    assert code == 2 and "SLACK_BOT_TOKEN and SLACK_APP_TOKEN" in err
    code, _, err = run(capsys, "serve", "--http")
    assert code == 2 and "--slack --http" in err


def test_the_scheduler_posts_the_digest_to_subscribed_slack_channels(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    api: FakeSlackAPI,
) -> None:
    data = tmp_path / "data"
    for name, value in {
        "PAPERBOT_DATA_DIR": str(data),
        "PAPERBOT_INGEST_POTW_URL": str(SAMPLE),  # the "online" list, locally
        "PAPERBOT_ARXIV_API_URL": "http://127.0.0.1:9/api",  # arXiv is down
        "PAPERBOT_ARXIV_MAX_RETRIES": "0",
        "PAPERBOT_DIGEST_TOP_N": "2",
        "PAPERBOT_DIGEST_QA_PAIRS": "3",
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_API_BASE_URL": api.base_url,
    }.items():
        monkeypatch.setenv(name, value)
    store = StateStore.open(data / "paperbot.sqlite3")
    ConversationStore(store).subscribe("slack", "CDIGEST", "UADMIN")
    store.close()
    code, _, err = run(capsys, "serve", "--slack", "--catch-up-only")
    assert code == 0, err
    posts = api.calls_to("chat.postMessage")
    assert [c.params["channel"] for c in posts] == ["CDIGEST"] * 3  # header + 2 cards
    assert "FlashAttention-3" in "\n".join(texts(posts))
    assert not api.calls_to("auth.test")  # posting digests needs no listener


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"paperbot serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"paperbot serve did not come up within {timeout} s")


def test_serve_slack_http_answers_a_signed_search_end_to_end(
    tmp_path: Path, api: FakeSlackAPI
) -> None:
    data = tmp_path / "data"
    env = {
        **os.environ,
        "PAPERBOT_DATA_DIR": str(data),
        "HF_HUB_OFFLINE": "1",
        "SLACK_API_BASE_URL": api.base_url,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "PAPERBOT_HTTP_PORT": "0",  # the health endpoint on any free port, not 8080
    }
    paperbot = [sys.executable, "-m", "assistant"]
    ingest = subprocess.run(
        [*paperbot, "ingest", "potw", "--file", str(SAMPLE), "--offline"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )
    assert ingest.returncode == 0, ingest.stderr.decode()
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [*paperbot, "serve", "--slack", "--http", "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", process, timeout=180)
        body = command_body("search faster attention on Hopper", "U1", "C1", api.response_url())
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/slack/events",
            data=body.encode(),
            headers=signed(body, "application/x-www-form-urlencoded"),
            method="POST",
        )
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        assert time.monotonic() - started < 3.0
        answer = api.wait_for("chat.postEphemeral", timeout=120)[0]
        assert answer.params["user"] == "U1" and answer.params["channel"] == "C1"
        assert "FlashAttention-3" in json.dumps(answer.params["blocks"])
        forged = urllib.request.Request(
            f"http://127.0.0.1:{port}/slack/events",
            data=body.encode(),
            headers=signed(body, "application/x-www-form-urlencoded", secret="wrong"),
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=10)
        assert refused.value.code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
    output = (tmp_path / "serve.log").read_text(errors="replace")
    assert process.returncode == 0, output
    assert "Slack connector on HTTP on http://127.0.0.1:" in output


def test_the_manifest_declares_what_the_connector_uses() -> None:
    yaml = pytest.importorskip("yaml")
    from connectors.slack.app import COMMAND

    manifest = yaml.safe_load((ROOT / "connectors" / "slack" / "manifest.yml").read_text())
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [COMMAND]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert scopes >= {
        "commands",
        "chat:write",
        "reactions:write",
        "channels:history",
        "groups:history",
        "app_mentions:read",
        "users:read",
        "metadata.message:read",
    }
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert events == {"app_mention", "message.channels", "message.groups"}
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert not scopes & {"chat:write.public", "im:history"}  # see test_platform_rules.py
