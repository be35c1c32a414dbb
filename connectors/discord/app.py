"""The Discord connector's shell: a discord.py client with the `/paper` command group,
whose commands, clicks, forms and messages become events of the shared flows.

Each handler only turns discord.py's object into a flow event and starts the flow as a
tracked task on the bot's loop; the flows acknowledge first (Discord's 3 s), run the
blocking core on the work queue (never on the loop, nor on the loop's default executor,
which aiohttp needs for DNS) and answer through `DiscordPlatform`, inside the flows'
error boundary. Autocomplete is answered here, from the queue's quick lane.

    connector = DiscordConnector(runtime.assistant, runtime.store, settings, load_digest)
    await connector.client.start(token)     # or: login + parse raw payloads in tests
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import discord
import yarl
from discord import app_commands

from assistant.commands import Command
from assistant.core import Assistant
from assistant.settings import Settings
from assistant.state import StateStore
from connectors.discord import translate as tr
from connectors.discord.adapter import DiscordPlatform
from connectors.discord.commands import build_command_group, paper_choices, week_choices
from connectors.discord.replies import DiscordRenderer
from connectors.discord.respond import Responder
from connectors.discord.views import DYNAMIC_ITEMS, AskForm
from connectors.flow import texts
from connectors.flow.flows import ChatFlows, DigestLoader
from connectors.flow.platform import (
    AllQAClick,
    AskClick,
    CommandEvent,
    FormSubmit,
    Place,
    ShareClick,
    VoteClick,
)
from connectors.flow.work import WorkQueue

log = logging.getLogger(__name__)

_CHANNEL_TYPES = (
    discord.TextChannel,
    discord.VoiceChannel,
    discord.StageChannel,
    discord.ForumChannel,
    discord.DMChannel,
)


def use_api_base(url: str) -> None:
    """Point discord.py's REST client (and interaction webhooks) at `url`, e.g. a proxy or
    a local fake. discord.py keeps one base URL per process."""
    discord.http.Route.BASE = url.rstrip("/")


def use_gateway(url: str) -> None:
    """Connect to the gateway at `url` (what `GET /gateway/bot` answers) instead of
    discord.py's built-in `wss://gateway.discord.gg/`; it too is one per process."""
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)


def build_intents(message_content: bool) -> discord.Intents:
    """Guilds (channels and threads) and guild messages; message content only if the bot
    has that privileged intent (else Discord sends content only when we are mentioned)."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.message_content = message_content
    return intents


async def sync_commands(tree: app_commands.CommandTree[Any], guild_ids: Sequence[int]) -> None:
    """Register the tree's commands: in each of `guild_ids` (instantly), or globally
    (Discord may take up to an hour to show a change everywhere)."""
    if not guild_ids:
        commands = await tree.sync()
        log.info("discord: %d command(s) registered globally", len(commands))
        return
    for guild_id in guild_ids:
        guild = discord.Object(id=guild_id)
        tree.copy_global_to(guild=guild)
        commands = await tree.sync(guild=guild)
        log.info("discord: %d command(s) registered in guild %s", len(commands), guild_id)


class PaperbotClient(discord.Client):
    """discord.py's client with the `/paper` tree and our buttons; events go to `connector`."""

    def __init__(self, connector: DiscordConnector, intents: discord.Intents, app_id: int | None):
        options: dict[str, Any] = {"application_id": app_id} if app_id else {}
        super().__init__(
            intents=intents, allowed_mentions=discord.AllowedMentions.none(), **options
        )
        self.connector = connector
        self.tree: app_commands.CommandTree[PaperbotClient] = app_commands.CommandTree(self)
        self.tree.add_command(build_command_group(connector))
        self.tree.error(connector.on_tree_error)
        self.gateway_up = False  # receiving events right now (for readiness)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(*DYNAMIC_ITEMS)

    async def on_ready(self) -> None:
        # ready for traffic only once `/paper` is registered: the sync comes first
        await self.connector.on_ready()
        self.gateway_up = True

    async def on_resumed(self) -> None:
        self.gateway_up = True

    async def on_disconnect(self) -> None:
        self.gateway_up = False

    async def on_message(self, message: discord.Message) -> None:
        self.connector.on_message(message)


class DiscordConnector:
    """Holds the flows and the discord.py client; wires Discord's events to them."""

    def __init__(
        self,
        assistant: Assistant,
        store: StateStore,
        settings: Settings,
        load_digest: DigestLoader | None = None,
        workers: int = 4,
        stream_interval: float = 1.0,
    ) -> None:
        self._store = store
        config = settings.discord
        self._content_intent = config.message_content
        self._guild_ids = config.guild_id_list
        use_api_base(config.api_base_url)
        app_id = int(config.application_id) if config.application_id else None
        self.client = PaperbotClient(self, build_intents(config.message_content), app_id)
        self.queue = WorkQueue(workers, name="discord")
        self.flows = ChatFlows(
            DiscordPlatform(self.client, config.admin_user_ids),
            DiscordRenderer(),
            assistant,
            store,
            self.queue,
            allowed=config.allowed_channel_ids,
            load_digest=load_digest,
            language=settings.digest.language,
            stream_interval=stream_interval,
        )
        self._parents: dict[int, str | None] = {}
        self._synced = False

    # -- lifecycle -----------------------------------------------------------------------

    async def on_ready(self) -> None:
        """Connected (again): register the commands once per process."""
        user = self.client.user
        log.info("discord: connected as %s to %d guild(s)", user, len(self.client.guilds))
        if self._synced:
            return
        self._synced = True
        try:
            await sync_commands(self.client.tree, self._guild_ids)
        except Exception as exc:
            if self.client.is_closed():  # stopped while registering: nothing to report
                log.debug("discord: stopped while registering /paper: %s", exc)
                return
            if not isinstance(exc, discord.HTTPException):
                raise
            log.error(
                "discord: registering /paper failed: %s (is the bot invited with the "
                "applications.commands scope?)",
                exc,
            )

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every event handed to the client so far is fully handled (False if
        `timeout` seconds passed first)."""
        return await self.flows.drain(timeout)

    async def close(self, grace: float = 5.0) -> None:
        """Let in-flight work finish for up to `grace` seconds (then cancel it), close the
        client (no more events) and the work queue."""
        if not await self.drain(grace):
            log.warning("discord: answers still running after %g s are abandoned", grace)
            self.flows.cancel()
        await self.client.close()
        self.queue.shutdown(wait=False, cancel_waiting=True)

    # -- entry points (on the event loop; they only start tracked work) -------------------

    def start_command(self, interaction: discord.Interaction[Any], command: Command) -> None:
        payload = tr.interaction_payload(interaction)
        self.flows.spawn(
            CommandEvent(command=command, **self._from(interaction, tr.place(payload["channel"])))
        )

    def on_message(self, message: discord.Message) -> None:
        me = self.client.user
        if me is None or message.author.bot or message.author.id == me.id:
            return  # bots, ours included: cheap to drop before anything else
        self.flows.track(asyncio.get_running_loop().create_task(self._message(message)))

    def share(self, interaction: discord.Interaction[Any], command: str) -> None:
        payload = tr.interaction_payload(interaction)
        where = self._from(interaction, tr.place(payload["channel"]))
        self.flows.spawn(ShareClick(command=command, **where))

    def ask_form(self, interaction: discord.Interaction[Any], paper_id: str) -> None:
        where = self._from(interaction, tr.card_thread(tr.interaction_payload(interaction)))
        self.flows.spawn(AskClick(paper_id=paper_id, **where))

    def vote(self, interaction: discord.Interaction[Any], verdict: str) -> None:
        payload = tr.interaction_payload(interaction)
        message_id = str((payload.get("message") or {}).get("id") or "")
        where = self._from(interaction, tr.place(payload["channel"]))
        self.flows.spawn(VoteClick(verdict=verdict, message_id=message_id, **where))

    def all_qa(self, interaction: discord.Interaction[Any], week: str, paper_id: str) -> None:
        where = self._from(interaction, tr.card_thread(tr.interaction_payload(interaction)))
        self.flows.spawn(AllQAClick(week=week, paper_id=paper_id, **where))

    def form_question(
        self, interaction: discord.Interaction[Any], form: AskForm, question: str
    ) -> None:
        where = self._from(interaction, Place(form.channel, form.thread))
        text = tr.plain_text(question)
        self.flows.spawn(FormSubmit(paper_id=form.paper_id, question=text, **where))

    async def paper_choices(self, current: str) -> list[app_commands.Choice[str]]:
        self._track_current()
        choices = await self.queue.run("quick", "autocomplete", paper_choices, self._store, current)
        return [app_commands.Choice(name=n, value=v) for n, v in choices]

    async def week_choices(self, current: str) -> list[app_commands.Choice[str]]:
        self._track_current()
        weeks = await self.queue.run("quick", "autocomplete", self._store.weeks)
        return [app_commands.Choice(name=n, value=v) for n, v in week_choices(weeks, current)]

    async def on_tree_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        log.error("discord: /paper failed", exc_info=error)
        if interaction.type is discord.InteractionType.application_command:
            await Responder(interaction).private(self.flows.renderer.notice(texts.APOLOGY))

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _from(interaction: discord.Interaction[Any], place: Place) -> dict[str, Any]:
        """The fields every interaction event has."""
        return {
            "platform": tr.PLATFORM,
            "user": str(interaction.user.id),
            "place": place,
            "reply_to": Responder(interaction),
        }

    async def _message(self, message: discord.Message) -> None:
        """A message the bot can see: a flow event when it is for us."""
        me = str(self.client.user.id) if self.client.user else ""
        payload = tr.message_payload(message)
        if not (tr.mentions(payload, me) or self._content_intent):
            return
        parent = await self._parent_of(message.channel)
        event = tr.message_event(payload, me, parent, self._content_intent)
        if event is not None:
            await self.flows.handle(event)

    async def _parent_of(self, channel: Any) -> str | None:
        """The parent channel of a thread, None for any other channel (cached)."""
        if isinstance(channel, discord.Thread):
            return str(channel.parent_id)
        if isinstance(channel, _CHANNEL_TYPES):
            return None
        if channel.id not in self._parents:
            if len(self._parents) > 10_000:
                self._parents.clear()
            where = tr.place(await self.client.http.get_channel(channel.id))
            self._parents[channel.id] = where.channel if where.thread else None
        return self._parents[channel.id]

    def _track_current(self) -> None:
        """Count the running task (discord.py's, answering an autocomplete) as in flight."""
        task = asyncio.current_task()
        if task is not None:
            self.flows.track(task)
