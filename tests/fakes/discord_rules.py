"""What Discord refuses, as compact checks: the fake REST API runs them on every request.

Taken from Discord's OpenAPI spec (`discord/discord-api-spec`: MessageCreateRequest,
RichEmbed, ActionRowComponentForMessageRequest, ButtonComponentForMessageRequest,
ModalInteractionCallbackRequestData, ApplicationCommandCreateRequest and its options,
CreateTextThreadWithMessageRequest) and Discord's documented limits (message content 2,000;
embeds 10 a message, 6,000 characters in all; 5 action rows of 5 buttons; command and option
names lowercase 1-32). Each problem is (path, code, message); `error_tree` makes Discord's
50035 `errors` object of them.

    problems = message_problems(body)
    if problems:  # answer 400: {"code": 50035, "errors": error_tree(problems), ...}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

Path = tuple[str | int, ...]
Problem = tuple[Path, str, str]  # where, Discord's error code, its message

CONTENT = 2000
EMBEDS = 10
EMBEDS_TOTAL = 6000
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
EMBED_FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER_TEXT = 2048
AUTHOR_NAME = 256
EMBED_URL = 2048
ACTION_ROWS = 5
ROW_BUTTONS = 5
CUSTOM_ID = 100
BUTTON_LABEL = 80
BUTTON_URL = 512
LINK = 5
PREMIUM = 6
BUTTON_STYLES = frozenset({1, 2, 3, 4, LINK, PREMIUM})
NONCE = 25
MODAL_TITLE = 45
MODAL_COMPONENTS = 5
LABEL = 45
LABEL_DESCRIPTION = 100
TEXT_INPUT_VALUE = 4000
CHOICES = 25
CHOICE_NAME = 100
CHOICE_VALUE = 6000
COMMANDS = 100
COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")
DESCRIPTION = 100
OPTIONS = 25
THREAD_NAME = 100
ARCHIVE_MINUTES = frozenset({60, 1440, 4320, 10080})
CALLBACK_TYPES = frozenset({1, 4, 5, 6, 7, 8, 9, 12})
MENTION_TYPES = frozenset({"users", "roles", "everyone"})


def error_tree(problems: Sequence[Problem]) -> dict[str, Any]:
    """Discord's `errors` object: nested by path, `_errors` lists at the leaves."""
    tree: dict[str, Any] = {}
    for path, code, message in problems:
        node = tree
        for key in path:
            node = node.setdefault(str(key), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return tree


def message_problems(body: Any, path: Path = (), edit: bool = False) -> list[Problem]:
    """A message body (create, edit, webhook, interaction response data)."""
    if not isinstance(body, dict):
        return [(path, "MODEL_TYPE_CONVERT", "Expected an object.")]
    problems: list[Problem] = []
    content = body.get("content")
    if content is not None:
        _length(problems, (*path, "content"), content, CONTENT)
    embeds = body.get("embeds") or []
    if not isinstance(embeds, list):
        problems.append(((*path, "embeds"), "BASE_TYPE_ARRAY", "Must be an array."))
        embeds = []
    if len(embeds) > EMBEDS:
        problems.append(_max_items((*path, "embeds"), EMBEDS))
    for i, embed in enumerate(embeds):
        problems += _embed(embed, (*path, "embeds", i))
    total = sum(_embed_size(e) for e in embeds if isinstance(e, dict))
    if total > EMBEDS_TOTAL:
        problems.append(
            (
                (*path, "embeds"),
                "MAX_EMBED_SIZE_EXCEEDED",
                "Embed size exceeds maximum size of 6000",
            )
        )
    problems += components_problems(body.get("components"), (*path, "components"))
    mentions = body.get("allowed_mentions")
    if isinstance(mentions, dict):
        for j, kind in enumerate(mentions.get("parse") or []):
            if kind not in MENTION_TYPES:
                problems.append(((*path, "allowed_mentions", "parse", j), "ENUM_TYPE_COERCE", ""))
    nonce = body.get("nonce")
    if isinstance(nonce, str) and len(nonce) > NONCE:
        problems.append(_too_long((*path, "nonce"), NONCE))
    has_body = any(body.get(k) for k in ("content", "embeds", "components", "attachments"))
    if not edit and not has_body and "sticker_ids" not in body and "poll" not in body:
        problems.append((path, "MESSAGE_EMPTY", "Cannot send an empty message"))
    return problems


def components_problems(rows: Any, path: Path) -> list[Problem]:
    """Action rows of buttons: at most 5 rows of 5, custom_ids unique in the message."""
    if rows is None:
        return []
    if not isinstance(rows, list):
        return [(path, "BASE_TYPE_ARRAY", "Must be an array.")]
    problems: list[Problem] = []
    if len(rows) > ACTION_ROWS:
        problems.append(_max_items(path, ACTION_ROWS))
    seen: set[str] = set()
    for r, row in enumerate(rows):
        at = (*path, r)
        if not isinstance(row, dict) or row.get("type") != 1:
            problems.append(((*at, "type"), "COMPONENT_TYPE_INVALID", "Expected an action row."))
            continue
        buttons = row.get("components")
        if not isinstance(buttons, list) or not buttons:
            problems.append(((*at, "components"), "BASE_TYPE_MIN_LENGTH", "Must be 1 or more."))
            continue
        if len(buttons) > ROW_BUTTONS:
            problems.append(_max_items((*at, "components"), ROW_BUTTONS))
        for b, item in enumerate(buttons):
            problems += _button(item, (*at, "components", b), seen)
    return problems


def _button(button: Any, at: Path, seen: set[str]) -> list[Problem]:
    if not isinstance(button, dict) or button.get("type") != 2:
        return [((*at, "type"), "UNION_TYPE_CHOICES", "Only buttons are sent by this app.")]
    problems: list[Problem] = []
    style = button.get("style")
    if style not in BUTTON_STYLES:
        problems.append(((*at, "style"), "ENUM_TYPE_COERCE", f"{style!r} is not a valid style."))
    label = button.get("label")
    if label is not None:
        _length(problems, (*at, "label"), label, BUTTON_LABEL)
    custom_id, url = button.get("custom_id"), button.get("url")
    if style == LINK:
        if custom_id is not None:
            problems.append(
                ((*at, "custom_id"), "BUTTON_LINK_CUSTOM_ID", "Link buttons have none.")
            )
        if not isinstance(url, str) or not url:
            problems.append(((*at, "url"), "BASE_TYPE_REQUIRED", "This field is required"))
        else:
            _length(problems, (*at, "url"), url, BUTTON_URL)
            if not re.match(r"^(https?|discord)://", url):
                problems.append(((*at, "url"), "URL_TYPE_INVALID_URL", "Not a well formed URL."))
    elif style != PREMIUM:
        if url is not None:
            problems.append(((*at, "url"), "BUTTON_NON_LINK_URL", "Only link buttons have a url."))
        if not isinstance(custom_id, str) or not custom_id:
            problems.append(((*at, "custom_id"), "BASE_TYPE_REQUIRED", "This field is required"))
        else:
            _length(problems, (*at, "custom_id"), custom_id, CUSTOM_ID)
            if custom_id in seen:
                problems.append(((*at, "custom_id"), "COMPONENT_CUSTOM_ID_DUPLICATED", ""))
            seen.add(custom_id)
    return problems


def _embed(embed: Any, at: Path) -> list[Problem]:
    if not isinstance(embed, dict):
        return [(at, "MODEL_TYPE_CONVERT", "Expected an object.")]
    problems: list[Problem] = []
    for key, limit in (("title", EMBED_TITLE), ("description", EMBED_DESCRIPTION)):
        if embed.get(key) is not None:
            _length(problems, (*at, key), embed[key], limit)
    url = embed.get("url")
    if url is not None:
        _length(problems, (*at, "url"), url, EMBED_URL)
        if not (isinstance(url, str) and re.match(r"^https?://", url)):
            problems.append(((*at, "url"), "URL_TYPE_INVALID_URL", "Not a well formed URL."))
    color = embed.get("color")
    if color is not None and not (isinstance(color, int) and 0 <= color <= 0xFFFFFF):
        problems.append(((*at, "color"), "NUMBER_TYPE_MAX", "Not a colour."))
    fields = embed.get("fields") or []
    if len(fields) > EMBED_FIELDS:
        problems.append(_max_items((*at, "fields"), EMBED_FIELDS))
    for f, field in enumerate(fields):
        where = (*at, "fields", f)
        if not isinstance(field, dict):
            problems.append((where, "MODEL_TYPE_CONVERT", "Expected an object."))
            continue
        _length(problems, (*where, "name"), field.get("name"), FIELD_NAME, required=True)
        _length(problems, (*where, "value"), field.get("value"), FIELD_VALUE, required=True)
    for key, attr, limit in (("footer", "text", FOOTER_TEXT), ("author", "name", AUTHOR_NAME)):
        part = embed.get(key)
        if part is not None:
            value = part.get(attr) if isinstance(part, dict) else None
            _length(problems, (*at, key, attr), value, limit, required=True)
    return problems


def _embed_size(embed: dict[str, Any]) -> int:
    size = len(str(embed.get("title") or "")) + len(str(embed.get("description") or ""))
    for field in embed.get("fields") or []:
        size += len(str(field.get("name") or "")) + len(str(field.get("value") or ""))
    size += len(str((embed.get("footer") or {}).get("text") or ""))
    return size + len(str((embed.get("author") or {}).get("name") or ""))


# -- interaction responses -------------------------------------------------------------


def callback_problems(body: Any) -> list[Problem]:
    """The initial response to an interaction (POST /interactions/{id}/{token}/callback)."""
    if not isinstance(body, dict):
        return [((), "MODEL_TYPE_CONVERT", "Expected an object.")]
    kind = body.get("type")
    if kind not in CALLBACK_TYPES:
        return [(("type",), "ENUM_TYPE_COERCE", f"{kind!r} is not a valid callback type.")]
    data = body.get("data")
    if kind in (4, 7):
        return message_problems(data, ("data",), edit=kind == 7)
    if kind == 8:
        return _choices(data)
    if kind == 9:
        return _modal(data)
    return []


def _choices(data: Any) -> list[Problem]:
    choices = (data or {}).get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list):
        return [(("data", "choices"), "BASE_TYPE_REQUIRED", "This field is required")]
    problems: list[Problem] = []
    if len(choices) > CHOICES:
        problems.append(_max_items(("data", "choices"), CHOICES))
    for c, choice in enumerate(choices):
        at = ("data", "choices", c)
        _length(problems, (*at, "name"), choice.get("name"), CHOICE_NAME, required=True)
        _length(problems, (*at, "value"), choice.get("value"), CHOICE_VALUE)
    return problems


def _modal(data: Any) -> list[Problem]:
    if not isinstance(data, dict):
        return [(("data",), "BASE_TYPE_REQUIRED", "This field is required")]
    problems: list[Problem] = []
    _length(problems, ("data", "custom_id"), data.get("custom_id"), CUSTOM_ID, required=True)
    _length(problems, ("data", "title"), data.get("title"), MODAL_TITLE, required=True)
    components = data.get("components")
    if not isinstance(components, list) or not components:
        return [*problems, (("data", "components"), "BASE_TYPE_MIN_LENGTH", "Must be 1 or more.")]
    if len(components) > MODAL_COMPONENTS:
        problems.append(_max_items(("data", "components"), MODAL_COMPONENTS))
    for c, component in enumerate(components):
        at: Path = ("data", "components", c)
        if component.get("type") == 18:  # a label around one input
            _length(problems, (*at, "label"), component.get("label"), LABEL, required=True)
            if component.get("description") is not None:
                _length(problems, (*at, "description"), component["description"], LABEL_DESCRIPTION)
            problems += _text_input(component.get("component"), (*at, "component"))
        elif component.get("type") == 1:
            for i, item in enumerate(component.get("components") or []):
                problems += _text_input(item, (*at, "components", i))
        else:
            problems.append(((*at, "type"), "UNION_TYPE_CHOICES", "Not a modal component."))
    return problems


def _text_input(item: Any, at: Path) -> list[Problem]:
    if not isinstance(item, dict) or item.get("type") != 4:
        return [((*at, "type"), "UNION_TYPE_CHOICES", "Only text inputs are sent.")]
    problems: list[Problem] = []
    _length(problems, (*at, "custom_id"), item.get("custom_id"), CUSTOM_ID, required=True)
    if item.get("style") not in (1, 2):
        problems.append(((*at, "style"), "ENUM_TYPE_COERCE", "Not a text input style."))
    for key in ("min_length", "max_length"):
        value = item.get(key)
        if value is not None and not (isinstance(value, int) and 0 <= value <= TEXT_INPUT_VALUE):
            problems.append(((*at, key), "NUMBER_TYPE_MAX", "Must be 0 to 4000."))
    return problems


# -- commands and threads --------------------------------------------------------------


def commands_problems(commands: Any) -> list[Problem]:
    """A bulk overwrite of application commands (PUT .../commands)."""
    if not isinstance(commands, list):
        return [((), "BASE_TYPE_ARRAY", "Must be an array.")]
    problems: list[Problem] = []
    if len(commands) > COMMANDS:
        problems.append(_max_items((), COMMANDS))
    names: set[str] = set()
    for c, command in enumerate(commands):
        if not isinstance(command, dict):
            problems.append(((c,), "MODEL_TYPE_CONVERT", "Expected an object."))
            continue
        chat_input = command.get("type", 1) == 1
        problems += _named((c,), command, chat_input, description=chat_input)
        if command.get("name") in names:
            problems.append(((c, "name"), "APPLICATION_COMMANDS_DUPLICATE_NAME", ""))
        names.add(str(command.get("name")))
        problems += _options(command.get("options"), (c, "options"))
    return problems


def _options(options: Any, at: Path) -> list[Problem]:
    if options is None:
        return []
    problems: list[Problem] = []
    if len(options) > OPTIONS:
        problems.append(_max_items(at, OPTIONS))
    optional_seen = False
    for o, option in enumerate(options):
        where = (*at, o)
        problems += _named(where, option, chat_input=True, description=True)
        if option.get("type") in (1, 2):  # a subcommand (group): its own options
            problems += _options(option.get("options"), (*where, "options"))
            continue
        if option.get("required") and optional_seen:
            message = "Required options must be placed before non-required options"
            code = "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID"
            problems.append(((*where, "required"), code, message))
        optional_seen = optional_seen or not option.get("required")
        choices = option.get("choices") or []
        if len(choices) > CHOICES:
            problems.append(_max_items((*where, "choices"), CHOICES))
    return problems


def _named(at: Path, item: Mapping[str, Any], chat_input: bool, description: bool) -> list[Problem]:
    problems: list[Problem] = []
    name = item.get("name")
    if not isinstance(name, str) or not COMMAND_NAME.match(name):
        problems.append(((*at, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Invalid name."))
    elif chat_input and name != name.lower():
        problems.append(((*at, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Must be lowercase."))
    if description:
        _length(problems, (*at, "description"), item.get("description"), DESCRIPTION, True)
    return problems


def thread_problems(body: Any) -> list[Problem]:
    """Starting a thread on a message (POST .../messages/{id}/threads)."""
    if not isinstance(body, dict):
        return [((), "MODEL_TYPE_CONVERT", "Expected an object.")]
    problems: list[Problem] = []
    _length(problems, ("name",), body.get("name"), THREAD_NAME, required=True)
    duration = body.get("auto_archive_duration")
    if duration is not None and duration not in ARCHIVE_MINUTES:
        problems.append((("auto_archive_duration",), "ENUM_TYPE_COERCE", "Not a duration."))
    return problems


# -- helpers ---------------------------------------------------------------------------


def _length(
    problems: list[Problem], at: Path, value: Any, limit: int, required: bool = False
) -> None:
    if value is None or value == "":
        if required:
            problems.append((at, "BASE_TYPE_REQUIRED", "This field is required"))
        return
    if not isinstance(value, str):
        problems.append((at, "BASE_TYPE_STRING", "Must be a string."))
    elif len(value) > limit:
        problems.append(_too_long(at, limit))


def _too_long(at: Path, limit: int) -> Problem:
    return (at, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _max_items(at: Path, limit: int) -> Problem:
    return (at, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
