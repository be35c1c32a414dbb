"""The fakes refuse what Slack and Discord refuse: each rule they hold, shown refusing.

A fake that accepts anything proves nothing, so every rule the connector tests rely on is
tried here on its own, with the error code and the pointer the real platform answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.conftest import ROOT
from tests.fakes import slack_rules
from tests.fakes.discord_api import APP_ID as DISCORD_APP
from tests.fakes.discord_api import TOKEN as DISCORD_TOKEN
from tests.fakes.discord_api import FakeDiscordAPI
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


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
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


# -- Discord ---------------------------------------------------------------------------

POST = "/channels/{channel}/messages"


@pytest.fixture
def discord_api() -> Iterator[tuple[FakeDiscordAPI, httpx.Client]]:
    with FakeDiscordAPI() as api:
        headers = {"Authorization": f"Bot {DISCORD_TOKEN}"}
        with httpx.Client(base_url=api.base_url, headers=headers) as http:
            yield api, http


def discord_button(custom_id: str = "paper:x", **extra: Any) -> dict[str, Any]:
    return {"type": 2, "style": 2, "label": "Go", "custom_id": custom_id} | extra


def row(*buttons: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(buttons)}


def errors_at(answer: dict[str, Any], *path: str | int) -> list[dict[str, str]]:
    node = answer["errors"]
    for key in path:
        node = node[str(key)]
    return list(node["_errors"])


LINK = {"type": 2, "style": 5, "label": "PDF"}


@pytest.mark.parametrize(
    "body, path",
    [
        ({"content": "x" * 2001}, ("content",)),
        ({"embeds": [{"description": "d"}] * 11}, ("embeds",)),
        ({"embeds": [{"description": "d" * 4097}]}, ("embeds", 0, "description")),
        ({"embeds": [{"description": "d" * 4000}, {"description": "e" * 2001}]}, ("embeds",)),
        ({"embeds": [{"title": "t", "fields": [{"name": "n", "value": "v"}] * 26}]},
         ("embeds", 0, "fields")),
        ({"content": "c", "components": [row(discord_button("c" * 101))]},
         ("components", 0, "components", 0, "custom_id")),
        ({"content": "c", "components": [row(*[discord_button(f"b{i}") for i in range(6)])]},
         ("components", 0, "components")),
        ({"content": "c", "components": [row(discord_button(f"r{i}")) for i in range(6)]},
         ("components",)),
        ({"content": "c", "components": [row(LINK | {"url": "https://x.org/" + "p" * 600})]},
         ("components", 0, "components", 0, "url")),
        ({"content": "c", "components": [row(discord_button(label="l" * 81))]},
         ("components", 0, "components", 0, "label")),
        ({"content": "c", "components": [row(LINK | {"url": "https://x.org", "custom_id": "a"})]},
         ("components", 0, "components", 0, "custom_id")),
        ({"content": "c", "components": [row(discord_button("a"), discord_button("a"))]},
         ("components", 0, "components", 1, "custom_id")),
        ({"content": "c", "components": [row(discord_button(style=7))]},
         ("components", 0, "components", 0, "style")),
    ],
    ids=[
        "content-2001", "11-embeds", "description-4097", "embeds-total-6001", "26-fields",
        "custom-id-101", "6-buttons-a-row", "6-rows", "link-url-600", "label-81",
        "link-with-custom-id", "duplicate-custom-id", "unknown-style",
    ],
)  # fmt: skip
def test_discord_refuses_messages_outside_its_rules_with_50035_and_an_errors_tree(
    discord_api: tuple[FakeDiscordAPI, httpx.Client],
    body: dict[str, Any],
    path: tuple[str | int, ...],
) -> None:
    api, http = discord_api
    channel = api.add_channel()
    answer = http.post(POST.format(channel=channel), json=body)
    assert answer.status_code == 400 and answer.json()["code"] == 50035
    assert errors_at(answer.json(), *path)
    assert api.history(channel) == [] and api.refused()


def test_discord_refuses_an_empty_message_with_50006(
    discord_api: tuple[FakeDiscordAPI, httpx.Client],
) -> None:
    api, http = discord_api
    answer = http.post(POST.format(channel=api.add_channel()), json={"content": ""})
    assert answer.status_code == 400 and answer.json()["code"] == 50006


def test_discord_forgets_an_interaction_not_answered_within_3_s(
    discord_api: tuple[FakeDiscordAPI, httpx.Client],
) -> None:
    api, http = discord_api
    channel = api.add_channel()
    late, prompt = api.command("help", channel), api.command("help", channel)
    api._interactions[late["token"]].created -= 3.2  # it arrived 3.2 s ago
    route = "/interactions/{id}/{token}/callback"
    answer = http.post(route.format(**late), json={"type": 5})
    assert answer.status_code == 404 and answer.json()["code"] == 10062
    assert http.post(route.format(**prompt), json={"type": 5}).status_code == 200
    assert [c.status for c in api.late_responses] == [404]


def test_discord_refuses_modals_and_choices_outside_the_rules(
    discord_api: tuple[FakeDiscordAPI, httpx.Client],
) -> None:
    api, http = discord_api
    channel = api.add_channel()
    route = "/interactions/{id}/{token}/callback"
    text_input = {"type": 4, "custom_id": "q", "style": 2}
    modal = {"custom_id": "ask", "title": "t" * 46, "components": [
        {"type": 18, "label": "Your question", "component": text_input}]}  # fmt: skip
    answer = http.post(
        route.format(**api.command("help", channel)), json={"type": 9, "data": modal}
    )
    assert answer.status_code == 400 and errors_at(answer.json(), "data", "title")
    choices = [{"name": f"c{n}", "value": str(n)} for n in range(26)]
    typed = api.autocomplete("show", "paper", "x", channel)
    answer = http.post(route.format(**typed), json={"type": 8, "data": {"choices": choices}})
    assert answer.status_code == 400 and errors_at(answer.json(), "data", "choices")


@pytest.mark.parametrize(
    "change, path",
    [
        ({"name": "Paper"}, (0, "name")),
        ({"name": "p" * 33}, (0, "name")),
        ({"description": "d" * 101}, (0, "description")),
        ({"description": ""}, (0, "description")),
        (
            {"options": [{"type": 1, "name": "Search", "description": "s"}]},
            (0, "options", 0, "name"),
        ),
        ({"options": [{"type": 3, "name": "q", "description": "d"}] * 26}, (0, "options")),
    ],
    ids=["uppercase", "name-33", "description-101", "no-description", "option-case", "26-options"],
)
def test_discord_refuses_commands_outside_the_naming_rules(
    discord_api: tuple[FakeDiscordAPI, httpx.Client], change: dict[str, Any], path: tuple[Any, ...]
) -> None:
    _, http = discord_api
    command = {"name": "paper", "type": 1, "description": "Find papers"} | change
    answer = http.put(f"/applications/{DISCORD_APP}/commands", json=[command])
    assert answer.status_code == 400 and errors_at(answer.json(), *path)
    good = {"name": "paper", "type": 1, "description": "Find papers"}
    assert http.put(f"/applications/{DISCORD_APP}/commands", json=[good]).status_code == 200
