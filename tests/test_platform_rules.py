"""The fakes refuse what Slack and Discord refuse: each rule they hold, shown refusing.

A fake that accepts anything proves nothing, so every rule the connector tests rely on is
tried here on its own, with the error code and the pointer the real platform answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.conftest import ROOT
from tests.fakes import slack_rules
from tests.fakes.slack_api import FakeSlackAPI

TOKEN = "xoxb-rules"


# -- Slack -----------------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[tuple[FakeSlackAPI, WebClient]]:
    with FakeSlackAPI(bot_token=TOKEN) as api:
        yield api, WebClient(token=TOKEN, base_url=api.base_url)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(action_id: str, text: str = "Go", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id}


def refused(client: WebClient, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as error:
        client.chat_postMessage(channel="C1", **kwargs)
    return dict(error.value.response.data)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "blocks, pointer",
    [
        ([section("x")] * 51, "/blocks"),
        ([section("x" * 3001)], "/blocks/0/text/text"),
        ([{"type": "carousel", "elements": []}], "/blocks/0/type"),
        ([{"type": "actions", "elements": [button("a"), button("a")]}], "/blocks/0/elements/1"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/blocks/0/text"),
        ([{"type": "actions", "elements": [button("a", "b" * 76)]}], "/blocks/0/elements/0/text"),
        ([{"type": "actions", "elements": [button("a" * 256)]}], "/blocks/0/elements/0/action_id"),
        ([section("x") | {"block_id": "b"}, section("y") | {"block_id": "b"}], "/blocks/1/"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}], "/blocks/0/text"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], "/fields"),
        ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}], "/elements"),
        ([section("")], "/blocks/0/text/text"),
    ],
    ids=[
        "51-blocks",
        "section-3001",
        "unknown-type",
        "duplicate-action-id",
        "header-151",
        "button-text-76",
        "action-id-256",
        "duplicate-block-id",
        "mrkdwn-header",
        "11-fields",
        "11-context-elements",
        "empty-text",
    ],
)
def test_slack_refuses_blocks_outside_block_kit_with_invalid_blocks(
    slack: tuple[FakeSlackAPI, WebClient], blocks: list[dict[str, Any]], pointer: str
) -> None:
    api, client = slack
    answer = refused(client, text="fallback", blocks=blocks)
    assert answer["error"] == "invalid_blocks"
    assert any(pointer in m for m in answer["response_metadata"]["messages"]), answer
    assert api.invalid_requests()[-1].error == "invalid_blocks"
    assert api.messages == []  # nothing was posted


def test_slack_refuses_a_missing_or_too_long_text(slack: tuple[FakeSlackAPI, WebClient]) -> None:
    _, client = slack
    assert refused(client, text="")["error"] == "no_text"
    assert refused(client, text="x" * 40_001)["error"] == "msg_too_long"
    client.chat_postMessage(channel="C1", text="x" * 40_000)  # the limit itself is fine


def test_slack_refuses_posts_and_history_where_the_bot_is_not_a_member(
    slack: tuple[FakeSlackAPI, WebClient],
) -> None:
    api, client = slack
    api.add_channel("COUT", bot_member=False)
    api.add_channel("GSECRET", private=True, bot_member=False)
    assert "chat:write.public" not in api.scopes  # our manifest does not ask for it
    for channel, error in (("COUT", "not_in_channel"), ("GSECRET", "channel_not_found")):
        for method in (client.chat_postMessage, client.chat_postEphemeral):
            with pytest.raises(SlackApiError) as caught:
                method(channel=channel, user="U1", text="hi")
            assert caught.value.response["error"] == error
        with pytest.raises(SlackApiError) as caught:
            client.conversations_history(channel=channel)
        assert caught.value.response["error"] == error
    event = {"type": "message", "channel": "COUT", "user": "U1", "text": "hi", "ts": "1.0"}
    assert not api.delivers(event)  # and Slack sends the app nothing from there

    api.scopes.add("chat:write.public")  # an app that asks for it may post, not read
    client.chat_postMessage(channel="COUT", text="hi")
    with pytest.raises(SlackApiError, match="not_in_channel"):
        client.conversations_history(channel="COUT")


def test_slack_refuses_modals_outside_the_view_rules_and_stale_trigger_ids(
    slack: tuple[FakeSlackAPI, WebClient],
) -> None:
    api, client = slack
    text_input = {"type": "plain_text_input", "action_id": "q"}
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Ask about this paper"},
        "submit": {"type": "plain_text", "text": "Ask"},
        "blocks": [
            {"type": "input", "label": {"type": "plain_text", "text": "Q"}, "element": text_input}
        ],
    }
    client.views_open(trigger_id=api.trigger_id(), view=view)
    long_title = view | {"title": {"type": "plain_text", "text": "t" * 25}}
    with pytest.raises(SlackApiError) as caught:
        client.views_open(trigger_id=api.trigger_id(), view=long_title)
    assert caught.value.response["error"] == "invalid_arguments"
    assert "/view/title/text" in caught.value.response["response_metadata"]["messages"][0]
    without_submit = {k: v for k, v in view.items() if k != "submit"}
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        client.views_open(trigger_id=api.trigger_id(), view=without_submit)
    with pytest.raises(SlackApiError, match="invalid_trigger_id"):
        client.views_open(trigger_id="made-up", view=view)
    stale = api.trigger_id()
    api._triggers[stale] -= 3.5  # issued 3.5 s ago
    with pytest.raises(SlackApiError, match="expired_trigger_id"):
        client.views_open(trigger_id=stale, view=view)


def test_slack_times_acknowledgements(slack: tuple[FakeSlackAPI, WebClient]) -> None:
    api, _ = slack
    assert api.deliver("command", lambda: "ok") == "ok"
    api.deliver("action", lambda: time.sleep(0.05))
    assert api.late_acks == [] and [kind for kind, _ in api.acks] == ["command", "action"]
    api.acks.append(("view", 3.2))  # what a slow app would have taken
    assert api.late_acks == [("view", 3.2)]


def test_distributed_apps_get_15_messages_a_request_and_one_request_a_window(
    slack: tuple[FakeSlackAPI, WebClient],
) -> None:
    api, client = slack
    api.distribution, api.history_window = "distributed", 30.0
    for n in range(40):
        client.chat_postMessage(channel="C1", text=f"m{n}")
    first = client.conversations_history(channel="C1", limit=200)
    assert len(first["messages"]) == 15 and first["has_more"]
    with pytest.raises(SlackApiError) as caught:
        client.conversations_history(channel="C1", cursor=first["response_metadata"]["next_cursor"])
    assert caught.value.response.status_code == 429
    assert int(caught.value.response.headers["Retry-After"]) > 25
    api.distribution = "internal"  # an internal app: the old limits
    assert len(client.conversations_history(channel="C1", limit=200)["messages"]) == 40


def test_the_manifest_rules_catch_what_slack_and_the_connector_refuse() -> None:
    good = {
        "display_information": {"name": "paperbot", "description": "Papers."},
        "features": {
            "bot_user": {"display_name": "paperbot"},
            "slash_commands": [{"command": "/paper", "description": "Papers"}],
        },
        "oauth_config": {"scopes": {"bot": ["channels:history", "chat:write"]}},
        "settings": {"event_subscriptions": {"bot_events": ["message.channels"]}},
    }
    assert slack_rules.manifest_problems(good) == []
    bad = yaml.safe_load(yaml.safe_dump(good))
    bad["display_information"]["name"] = "p" * 36
    bad["features"]["slash_commands"][0]["command"] = "paper"
    bad["oauth_config"]["scopes"]["bot"] += ["im:history", "chat:write.public"]
    bad["settings"]["event_subscriptions"]["bot_events"].append("message.groups")
    problems = "\n".join(slack_rules.manifest_problems(bad))
    for expected in (
        "display_information.name",
        "must start with /",
        "im:history is requested without the message.im event",
        "message.groups needs the groups:history scope",
        "chat:write.public",
    ):
        assert expected in problems


def test_our_slack_manifest_keeps_every_rule() -> None:
    manifest = yaml.safe_load((ROOT / "connectors" / "slack" / "manifest.yml").read_text())
    assert slack_rules.manifest_problems(manifest) == []
