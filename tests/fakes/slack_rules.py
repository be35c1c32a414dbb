"""What Slack refuses, as compact checks: the fake Web API runs them on every request.

Taken from Slack's Web API spec (`slackapi/slack-api-specs`: required arguments and the
error codes each method answers), the app manifest schema (`slackapi/manifest-schema`) and
the documented Block Kit limits (api.slack.com/reference/block-kit: blocks, block elements,
composition objects, views). Each check returns the problems found, each with the JSON
pointer Slack puts in `response_metadata.messages`; an empty list means Slack accepts it.

    problems = message_problems({"channel": "C1", "text": "hi", "blocks": [...]})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Problems = list[str]

MESSAGE_BLOCKS = 50  # a message; 100 in a modal or the Home tab
VIEW_BLOCKS = 100
MESSAGE_TEXT = 40_000  # longer `text`: msg_too_long
TEXT_OBJECT = 3000  # any text object, unless its field says less
SECTION_FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
URL = 3000
ID = 255  # action_id, block_id, callback_id
VIEW_TITLE = 24  # title, submit and close of a modal
PRIVATE_METADATA = 3000
INPUT_LABEL = 2000
INPUT_HINT = 2000
PLACEHOLDER = 150
TEXT_INPUT_MAX = 3000
# Blocks a message may carry (input needs a modal or the Home tab to be useful, but is
# accepted); anything else is `invalid_blocks`.
MESSAGE_BLOCK_TYPES = frozenset(
    {"actions", "context", "divider", "file", "header", "image", "input", "markdown",
     "rich_text", "section", "video"}
)  # fmt: skip
VIEW_BLOCK_TYPES = MESSAGE_BLOCK_TYPES - {"file", "markdown"}
BUTTON_STYLES = frozenset({"primary", "danger"})


def message_problems(params: Mapping[str, Any]) -> Problems:
    """Problems of a chat.postMessage / postEphemeral / update body's `text` and `blocks`."""
    problems: Problems = []
    blocks = params.get("blocks")
    if blocks is None:
        return problems
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    if len(blocks) > MESSAGE_BLOCKS:
        problems.append(f"no more than {MESSAGE_BLOCKS} items allowed [json-pointer:/blocks]")
    return problems + _blocks(blocks, MESSAGE_BLOCK_TYPES, "/blocks")


def text_too_long(params: Mapping[str, Any]) -> bool:
    text = params.get("text")
    return isinstance(text, str) and len(text) > MESSAGE_TEXT


def view_problems(view: Any) -> Problems:
    """Problems of a modal view (views.open / views.update / views.push)."""
    if not isinstance(view, dict):
        return ["must be an object [json-pointer:/view]"]
    problems: Problems = []
    if view.get("type") != "modal":
        problems.append("must be one of modal, home [json-pointer:/view/type]")
    _text(problems, view.get("title"), "/view/title", VIEW_TITLE, plain=True, required=True)
    for key in ("submit", "close"):
        if key in view:
            _text(problems, view[key], f"/view/{key}", VIEW_TITLE, plain=True)
    _length(problems, view.get("callback_id"), "/view/callback_id", ID)
    _length(problems, view.get("private_metadata"), "/view/private_metadata", PRIVATE_METADATA)
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return [*problems, "must provide at least 1 item [json-pointer:/view/blocks]"]
    if len(blocks) > VIEW_BLOCKS:
        problems.append(f"no more than {VIEW_BLOCKS} items allowed [json-pointer:/view/blocks]")
    has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
    if has_input and "submit" not in view:
        problems.append("a view with input blocks needs submit [json-pointer:/view/submit]")
    return problems + _blocks(blocks, VIEW_BLOCK_TYPES, "/view/blocks")


# -- blocks ----------------------------------------------------------------------------


def _blocks(blocks: list[Any], allowed: frozenset[str], where: str) -> Problems:
    problems: Problems = []
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"{where}/{i}"
        if not isinstance(block, dict):
            problems.append(f"must be an object [json-pointer:{at}]")
            continue
        kind = block.get("type")
        if kind not in allowed:
            problems.append(f"unsupported type: {kind!r} [json-pointer:{at}/type]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            _length(problems, block_id, f"{at}/block_id", ID)
            if block_id in block_ids:
                problems.append(f"duplicate block_id {block_id!r} [json-pointer:{at}/block_id]")
            block_ids.add(block_id)
        check = _BLOCKS.get(kind)
        if check is not None:
            check(problems, block, at)
    return problems


def _section(problems: Problems, block: dict[str, Any], at: str) -> None:
    if "text" not in block and "fields" not in block:
        problems.append(f"must provide text or fields [json-pointer:{at}]")
    if "text" in block:
        _text(problems, block["text"], f"{at}/text", TEXT_OBJECT)
    if "fields" in block:
        fields = block["fields"]
        if not isinstance(fields, list) or not fields:
            problems.append(f"must provide at least 1 item [json-pointer:{at}/fields]")
            fields = []
        if len(fields) > SECTION_FIELDS:
            problems.append(f"no more than {SECTION_FIELDS} items [json-pointer:{at}/fields]")
        for j, field in enumerate(fields):
            _text(problems, field, f"{at}/fields/{j}", FIELD_TEXT)
    if "accessory" in block:
        _elements(problems, [block["accessory"]], f"{at}/accessory", single=True)


def _header(problems: Problems, block: dict[str, Any], at: str) -> None:
    _text(problems, block.get("text"), f"{at}/text", HEADER_TEXT, plain=True, required=True)


def _context(problems: Problems, block: dict[str, Any], at: str) -> None:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        problems.append(f"must provide at least 1 item [json-pointer:{at}/elements]")
        return
    if len(elements) > CONTEXT_ELEMENTS:
        problems.append(f"no more than {CONTEXT_ELEMENTS} items [json-pointer:{at}/elements]")
    for j, element in enumerate(elements):
        if isinstance(element, dict) and element.get("type") == "image":
            continue
        _text(problems, element, f"{at}/elements/{j}", TEXT_OBJECT)


def _actions(problems: Problems, block: dict[str, Any], at: str) -> None:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        problems.append(f"must provide at least 1 item [json-pointer:{at}/elements]")
        return
    if len(elements) > ACTIONS_ELEMENTS:
        problems.append(f"no more than {ACTIONS_ELEMENTS} items [json-pointer:{at}/elements]")
    _elements(problems, elements, f"{at}/elements")


def _input(problems: Problems, block: dict[str, Any], at: str) -> None:
    _text(problems, block.get("label"), f"{at}/label", INPUT_LABEL, plain=True, required=True)
    if "hint" in block:
        _text(problems, block["hint"], f"{at}/hint", INPUT_HINT, plain=True)
    element = block.get("element")
    if not isinstance(element, dict):
        problems.append(f"must provide an element [json-pointer:{at}/element]")
        return
    _elements(problems, [element], f"{at}/element", single=True)


def _divider(problems: Problems, block: dict[str, Any], at: str) -> None:
    return None


_BLOCKS: dict[str, Callable[[Problems, dict[str, Any], str], None]] = {
    "section": _section,
    "header": _header,
    "context": _context,
    "actions": _actions,
    "input": _input,
    "divider": _divider,
}


def _elements(problems: Problems, elements: list[Any], at: str, single: bool = False) -> None:
    """Interactive elements: their own limits, and action_ids unique in the block."""
    seen: set[str] = set()
    for j, element in enumerate(elements):
        where = at if single else f"{at}/{j}"
        if not isinstance(element, dict):
            problems.append(f"must be an object [json-pointer:{where}]")
            continue
        action_id = element.get("action_id")
        if action_id is not None:
            _length(problems, action_id, f"{where}/action_id", ID)
            if action_id in seen:
                problems.append(f"duplicate action_id {action_id!r} [json-pointer:{where}]")
            seen.add(action_id)
        kind = element.get("type")
        if kind == "button":
            _button(problems, element, where)
        elif kind == "plain_text_input":
            _text_input(problems, element, where)


def _button(problems: Problems, button: dict[str, Any], at: str) -> None:
    _text(problems, button.get("text"), f"{at}/text", BUTTON_TEXT, plain=True, required=True)
    _length(problems, button.get("value"), f"{at}/value", BUTTON_VALUE)
    _length(problems, button.get("url"), f"{at}/url", URL)
    style = button.get("style")
    if style is not None and style not in BUTTON_STYLES:
        problems.append(f"must be one of primary, danger [json-pointer:{at}/style]")


def _text_input(problems: Problems, element: dict[str, Any], at: str) -> None:
    for key in ("max_length", "min_length"):
        value = element.get(key)
        if value is not None and not (isinstance(value, int) and 0 <= value <= TEXT_INPUT_MAX):
            problems.append(f"must be 0 to {TEXT_INPUT_MAX} [json-pointer:{at}/{key}]")
    if "placeholder" in element:
        _text(problems, element["placeholder"], f"{at}/placeholder", PLACEHOLDER, plain=True)


# -- composition objects ---------------------------------------------------------------


def _text(
    problems: Problems,
    obj: Any,
    at: str,
    limit: int,
    plain: bool = False,
    required: bool = False,
) -> None:
    """A text object: `plain_text` (or `mrkdwn` where allowed), 1 to `limit` characters."""
    if obj is None:
        if required:
            problems.append(f"must provide an object [json-pointer:{at}]")
        return
    kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        problems.append(f"must be a {' or '.join(kinds)} text object [json-pointer:{at}]")
        return
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"must be more than 0 characters [json-pointer:{at}/text]")
    elif len(text) > limit:
        problems.append(f"must be less than {limit + 1} characters [json-pointer:{at}/text]")
    if "emoji" in obj and obj.get("type") != "plain_text":
        problems.append(f"emoji is for plain_text only [json-pointer:{at}/emoji]")


def _length(problems: Problems, value: Any, at: str, limit: int) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value:
        problems.append(f"must be a non-empty string [json-pointer:{at}]")
    elif len(value) > limit:
        problems.append(f"must be less than {limit + 1} characters [json-pointer:{at}]")


# -- the app manifest ------------------------------------------------------------------

# Which history scope each message event needs (Slack refuses the manifest otherwise), and
# the reverse: a history scope without its event only widens what the app may read.
EVENT_SCOPES = {
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "message.mpim": "mpim:history",
    "app_mention": "app_mentions:read",
}


def manifest_problems(manifest: Mapping[str, Any]) -> Problems:
    """What Slack's manifest schema refuses, plus what the connector cannot work with:
    every history scope matched by its message event, and no `chat:write.public` (posting
    where the bot is not a member gets no replies or mentions there, and
    `conversations.history` answers `not_in_channel`, which breaks digest recovery)."""
    problems: Problems = []
    info = manifest.get("display_information") or {}
    _bounded(problems, info.get("name"), "display_information.name", 1, 35)
    _bounded(problems, info.get("description"), "display_information.description", 1, 140)
    bot = (manifest.get("features") or {}).get("bot_user") or {}
    _bounded(problems, bot.get("display_name"), "features.bot_user.display_name", 1, 80)
    for n, command in enumerate((manifest.get("features") or {}).get("slash_commands") or []):
        where = f"features.slash_commands[{n}]"
        name = command.get("command")
        _bounded(problems, name, f"{where}.command", 2, 32)
        if isinstance(name, str) and not name.startswith("/"):
            problems.append(f"{where}.command: must start with /")
        _bounded(problems, command.get("description"), f"{where}.description", 1, 2000)
        if "usage_hint" in command:
            _bounded(problems, command["usage_hint"], f"{where}.usage_hint", 1, 1000)
    scopes = set(((manifest.get("oauth_config") or {}).get("scopes") or {}).get("bot") or [])
    settings = manifest.get("settings") or {}
    events = set((settings.get("event_subscriptions") or {}).get("bot_events") or [])
    for event, scope in EVENT_SCOPES.items():
        if event in events and scope not in scopes:
            problems.append(f"bot_events: {event} needs the {scope} scope")
        if scope in scopes and event not in events:
            problems.append(f"scopes: {scope} is requested without the {event} event")
    if "chat:write.public" in scopes:
        problems.append(
            "scopes: chat:write.public posts where the bot is not a member; it then gets no "
            "thread replies or mentions there and conversations.history says not_in_channel"
        )
    if "interactivity" in settings and "is_enabled" not in settings["interactivity"]:
        problems.append("settings.interactivity.is_enabled: required")
    return problems


def _bounded(problems: Problems, value: Any, where: str, low: int, high: int) -> None:
    if not isinstance(value, str) or not low <= len(value) <= high:
        problems.append(f"{where}: must be a string of {low} to {high} characters")
