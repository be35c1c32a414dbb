"""The bot's buttons and its "Ask about this paper" form, as discord.py UI items.

Buttons are `DynamicItem`s: what a click needs (the query, the paper, the week) is in
the custom id, so buttons on messages posted long ago (a digest card, after a restart)
still work, and nothing is kept per message. Each item only hands the click to the
connector (`Handlers`), which does the work off the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast

import discord
from discord import ui

from assistant.digest.split import shorten
from connectors.discord import translate as tr

QUESTION_LIMIT = 1500


class Handlers(Protocol):
    """What the connector does with a click or a submitted form."""

    def share(self, interaction: discord.Interaction[Any], command: str) -> None:
        """ "Post to channel": `command` (private results) run again for everyone."""
        ...

    def ask_form(self, interaction: discord.Interaction[Any], paper_id: str) -> None:
        """ "Ask about this paper": open `AskForm` (the interaction's response)."""
        ...

    def all_qa(self, interaction: discord.Interaction[Any], week: str, paper_id: str) -> None:
        """ "All Q&A": the card's Q&A pairs, in its thread."""
        ...

    def vote(self, interaction: discord.Interaction[Any], verdict: str) -> None:
        """ "Helpful" / "Not helpful" on an answer: record the vote."""
        ...

    def form_question(
        self, interaction: discord.Interaction[Any], form: AskForm, question: str
    ) -> None:
        """A submitted `AskForm`: answer `question` in the card's thread."""
        ...


def handlers(interaction: discord.Interaction[Any]) -> Handlers:
    """The connector of the client that received `interaction`."""
    client: Any = interaction.client
    return cast(Handlers, client.connector)


class ShareButton(ui.DynamicItem[ui.Button[Any]], template=tr.SHARE_ID):
    """ "Post to channel" under private results (a search, a paper card)."""

    def __init__(self, command: str, label: str = "Post to channel") -> None:
        super().__init__(
            ui.Button(
                label=label, style=discord.ButtonStyle.secondary, custom_id=f"paper:share:{command}"
            )
        )
        self.command = command

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: Any
    ) -> ShareButton:
        return cls(match["command"], getattr(item, "label", None) or "Post to channel")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        handlers(interaction).share(interaction, self.command)


class AskButton(ui.DynamicItem[ui.Button[Any]], template=tr.ASK_ID):
    """ "Ask about this paper" on a digest card: opens `AskForm`."""

    def __init__(self, paper_id: str, label: str = "Ask about this paper") -> None:
        super().__init__(
            ui.Button(
                label=label, style=discord.ButtonStyle.primary, custom_id=f"paper:ask:{paper_id}"
            )
        )
        self.paper_id = paper_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: Any
    ) -> AskButton:
        return cls(match["paper"], getattr(item, "label", None) or "Ask about this paper")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        handlers(interaction).ask_form(interaction, self.paper_id)


class AllQAButton(ui.DynamicItem[ui.Button[Any]], template=tr.ALL_QA_ID):
    """ "All Q&A" on a digest card: every Q&A pair of the card, in its thread."""

    def __init__(self, week: str, paper_id: str, label: str = "All Q&A") -> None:
        custom_id = f"paper:qa:{week}:{paper_id}"
        super().__init__(
            ui.Button(label=label, style=discord.ButtonStyle.secondary, custom_id=custom_id)
        )
        self.week = week
        self.paper_id = paper_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: Any
    ) -> AllQAButton:
        return cls(match["week"], match["paper"], getattr(item, "label", None) or "All Q&A")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        handlers(interaction).all_qa(interaction, self.week, self.paper_id)


class FeedbackButton(ui.DynamicItem[ui.Button[Any]], template=tr.FEEDBACK_ID):
    """ "Helpful" / "Not helpful" under an answer."""

    def __init__(self, verdict: str, label: str | None = None) -> None:
        text = label or ("Helpful" if verdict == "helpful" else "Not helpful")
        super().__init__(
            ui.Button(
                label=text, style=discord.ButtonStyle.secondary, custom_id=f"paper:vote:{verdict}"
            )
        )
        self.verdict = verdict

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: Any
    ) -> FeedbackButton:
        return cls(match["verdict"], getattr(item, "label", None))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        handlers(interaction).vote(interaction, self.verdict)


DYNAMIC_ITEMS: tuple[type[ui.DynamicItem[Any]], ...] = (
    ShareButton,
    AskButton,
    AllQAButton,
    FeedbackButton,
)


class AskForm(ui.Modal, title="Ask about this paper"):
    """The form behind "Ask about this paper": its answer goes in the card's thread."""

    def __init__(self, paper_id: str, paper_title: str, channel: str, thread: str) -> None:
        super().__init__(timeout=15 * 60)
        self.paper_id = paper_id
        self.channel = channel
        self.thread = thread
        self.question: ui.TextInput[AskForm] = ui.TextInput(
            style=discord.TextStyle.paragraph, max_length=QUESTION_LIMIT, required=True
        )
        self.add_item(
            ui.Label(
                text="Your question",
                description=shorten(paper_title, 100),
                component=self.question,
            )
        )

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        handlers(interaction).form_question(interaction, self, self.question.value)


def view_of(components: Sequence[dict[str, Any]] | None) -> ui.View | None:
    """A View of our buttons for a payload's `components` (None when there are none)."""
    if not components:
        return None
    view = ui.View(timeout=None)
    for row in components:
        for button in row.get("components") or []:
            view.add_item(_item(button))
    return view


def _item(button: dict[str, Any]) -> ui.Item[Any]:
    label = str(button.get("label") or "")
    if button.get("style") == 5:
        return ui.Button(style=discord.ButtonStyle.link, label=label, url=str(button["url"]))
    custom_id = str(button.get("custom_id") or "")
    for item in DYNAMIC_ITEMS:
        match = item.__discord_ui_compiled_template__.fullmatch(custom_id)
        if match is None:
            continue
        if item is ShareButton:
            return ShareButton(match["command"], label)
        if item is AskButton:
            return AskButton(match["paper"], label)
        if item is FeedbackButton:
            return FeedbackButton(match["verdict"], label)
        return AllQAButton(match["week"], match["paper"], label)
    raise ValueError(f"not one of our buttons: {custom_id!r}")
