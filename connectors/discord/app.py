"""The Discord connector's shell: a discord.py client with the `/paper` command group.

Every handler does only what must happen on the event loop at once (deferring an
interaction, which Discord wants within 3 s) and hands the rest to a tracked task; the
blocking core (models, Qdrant, SQLite) runs on the connector's own thread pool, never on
the loop, and never on the loop's default executor, which aiohttp needs for DNS. Each
task is an error boundary: a failure is logged once with its traceback and the user
gets a short apology (privately where Discord allows it).

    connector = DiscordConnector(runtime.assistant, runtime.store, settings, load_digest)
    await connector.client.start(token)     # or: login + parse raw payloads in tests
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import date
from typing import Any, TypeVar

import discord
import yarl
from discord import app_commands
from discord.http import Route

from assistant.commands import try_parse
from assistant.conversations import Scope
from assistant.core import Assistant
from assistant.digest.model import Digest, DigestCard
from assistant.errors import NotFoundError
from assistant.feedback import FeedbackStore
from assistant.messages import IncomingMessage
from assistant.settings import Settings
from assistant.state import StateStore
from connectors.discord import translate as tr
from connectors.discord.commands import build_command_group, paper_choices, week_choices
from connectors.discord.live import LiveAnswer, ThreadPost
from connectors.discord.render import Message, qa_messages
from connectors.discord.respond import Responder
from connectors.discord.views import DYNAMIC_ITEMS, AskForm
from connectors.flow.work import WorkQueue

log = logging.getLogger(__name__)

T = TypeVar("T")
DigestLoader = Callable[[date | None, str], Digest]
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
    """Holds the core, the state and the discord.py client; wires Discord's events to them."""

    def __init__(
        self,
        assistant: Assistant,
        store: StateStore,
        settings: Settings,
        load_digest: DigestLoader | None = None,
        workers: int = 4,
        stream_interval: float = 1.0,
    ) -> None:
        self._assistant = assistant
        self._store = store
        self._settings = settings
        self._load_digest = load_digest
        self._stream_interval = stream_interval
        self._feedback = FeedbackStore(store)
        config = settings.discord
        self._allowed = config.allowed_channel_ids
        self._admins = config.admin_user_ids
        self._content_intent = config.message_content
        self._guild_ids = config.guild_id_list
        use_api_base(config.api_base_url)
        app_id = int(config.application_id) if config.application_id else None
        self.client = PaperbotClient(self, build_intents(config.message_content), app_id)
        self._work = WorkQueue(workers, name="discord")
        self._tasks: set[asyncio.Task[Any]] = set()
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
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            for _ in range(20):  # let dispatched events reach their handlers
                await asyncio.sleep(0)
            pending = {t for t in self._tasks if not t.done()}
            if not pending:
                return True
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(pending, timeout=left)

    async def close(self, grace: float = 5.0) -> None:
        """Let in-flight work finish for up to `grace` seconds (then cancel it), close the
        client (no more events) and the worker pool."""
        if not await self.drain(grace):
            log.warning("discord: answers still running after %g s are abandoned", grace)
            for task in list(self._tasks):
                task.cancel()
        await self.client.close()
        self._work.shutdown(wait=False, cancel_waiting=True)

    # -- entry points (on the event loop; they only start tracked work) -------------------

    def start_command(self, interaction: discord.Interaction[Any]) -> None:
        responder = Responder(interaction)
        self._spawn(self._command(responder), responder.apologize)

    def on_message(self, message: discord.Message) -> None:
        me = self.client.user
        if me is None or message.author.bot or message.author.id == me.id:
            return  # bots, ours included: cheap to drop before anything else
        self._spawn(self._message(message), functools.partial(self._apologize_in, message))

    def share(self, interaction: discord.Interaction[Any], query: str) -> None:
        responder = Responder(interaction)
        self._spawn(self._share(responder, query), responder.apologize)

    def ask_form(self, interaction: discord.Interaction[Any], paper_id: str) -> None:
        responder = Responder(interaction)
        self._spawn(self._open_form(interaction, paper_id), responder.apologize)

    def vote(self, interaction: discord.Interaction[Any], verdict: str) -> None:
        responder = Responder(interaction)
        self._spawn(self._vote(responder, verdict), responder.apologize)

    def all_qa(self, interaction: discord.Interaction[Any], week: str, paper_id: str) -> None:
        responder = Responder(interaction)
        self._spawn(self._all_qa(responder, week, paper_id), responder.apologize)

    def form_question(
        self, interaction: discord.Interaction[Any], form: AskForm, question: str
    ) -> None:
        responder = Responder(interaction)
        self._spawn(self._form_answer(responder, form, question), responder.apologize)

    async def paper_choices(self, current: str) -> list[app_commands.Choice[str]]:
        self._track_current()
        choices = await self._quick(paper_choices, self._store, current)
        return [app_commands.Choice(name=n, value=v) for n, v in choices]

    async def week_choices(self, current: str) -> list[app_commands.Choice[str]]:
        self._track_current()
        weeks = await self._quick(self._store.weeks)
        return [app_commands.Choice(name=n, value=v) for n, v in week_choices(weeks, current)]

    async def on_tree_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        log.error("discord: /paper failed", exc_info=error)
        if interaction.type is discord.InteractionType.application_command:
            await Responder(interaction).apologize()

    # -- work ----------------------------------------------------------------------------

    async def _command(self, responder: Responder) -> None:
        payload = tr.interaction_payload(responder.interaction)
        message = tr.command_to_message(payload, self._admins)
        if not self._allowed_here(message.channel):
            await responder.private(tr.text_messages(tr.NOT_ENABLED))
            return
        verb, _, argument = message.text.partition(" ")
        if verb == "ask":
            await self._ask(responder, message, argument)
            return
        # `digest post` answers only its admin (the digest itself goes to the channel)
        command = try_parse(message.text)
        private = verb in tr.PRIVATE_VERBS or (command is not None and command.posts_digest)
        await responder.defer(private=private)
        reply = await self._blocking(self._assistant.command, message)
        share = argument if verb == "search" else None
        messages = tr.reply_messages(reply, share_query=share)
        if private or reply.ephemeral:
            await responder.private(messages)
        else:
            await responder.public(messages)

    async def _ask(self, responder: Responder, message: IncomingMessage, question: str) -> None:
        """`/paper ask`: a public answer (edited in place while an LLM writes it) whose
        thread is the conversation; asked inside a thread, it continues that one."""
        await responder.defer(private=False)
        anchor = message.thread or await responder.original_id()
        asked = (message.user, question)
        live = LiveAnswer(asyncio.get_running_loop(), responder.edit, asked, self._stream_interval)
        anchored = replace(message, thread=anchor, message_id=anchor)
        reply = await self._blocking(self._assistant.command, anchored, live.add)
        await live.close()
        if reply.ephemeral:
            await responder.private(tr.reply_messages(reply))
            return
        first, *rest = tr.reply_messages(reply, asked=asked, feedback=True)
        await responder.public([first])
        thread = message.thread or await self._thread_on(message.channel, anchor, question)
        if thread is None:
            for extra in rest:
                await responder.followup(extra)
            await responder.private(tr.text_messages(tr.NO_THREAD))
            return
        if thread != anchor:  # Discord gives a message's thread the message's id; if not:
            scope = Scope(paper_ids=reply.scope_paper_ids)
            await self._blocking(
                self._assistant.start_thread, tr.PLATFORM, message.channel, thread, scope
            )
        for extra in rest:
            await self._post(thread, extra)

    async def _message(self, message: discord.Message) -> None:
        """A message the bot can see: answered in its thread when it is for us."""
        me = str(self.client.user.id) if self.client.user else ""
        payload = tr.message_payload(message)
        mentioned = tr.mentions(payload, me)
        if not (mentioned or self._content_intent):
            return
        parent = await self._parent_of(message.channel)
        incoming = tr.message_to_incoming(payload, me, parent, self._content_intent)
        if incoming is None:
            return
        if not self._allowed_here(incoming.channel):
            if mentioned:
                await self._post(str(message.channel.id), tr.text_messages(tr.NOT_ENABLED)[0])
            return
        if incoming.thread is not None and not mentioned:
            get = self._assistant.conversations.get
            if await self._quick(get, tr.PLATFORM, incoming.channel, incoming.thread) is None:
                return  # people talking in a thread that is not ours
        if not await self._quick(self._store.first_time, f"discord:{incoming.message_id}"):
            return  # delivered twice (a gateway replay, a second replica)
        if incoming.thread is None:  # a mention outside a thread starts one on it
            assert incoming.message_id is not None
            thread = await self._thread_on(incoming.channel, incoming.message_id, incoming.text)
            if thread is None:
                await self._post(incoming.channel, tr.text_messages(tr.NO_THREAD)[0])
                return
            incoming = replace(incoming, thread=thread)
        await self._answer_in_thread(incoming)

    async def _answer_in_thread(self, message: IncomingMessage) -> None:
        assert message.thread is not None
        post = ThreadPost(self.client.http, message.thread)
        live = LiveAnswer(asyncio.get_running_loop(), post.show, None, self._stream_interval)
        async with self.client.get_partial_messageable(int(message.thread)).typing():
            reply = await self._blocking(self._assistant.follow_up, message, live.add)
            await live.close()
            await post.finish(tr.reply_messages(reply, feedback=True))

    async def _share(self, responder: Responder, query: str) -> None:
        """ "Post to channel" under private results: the search, posted for everyone."""
        payload = tr.interaction_payload(responder.interaction)
        channel, thread = tr.place(payload["channel"])
        user = payload["member"]["user"]["id"]
        if not self._allowed_here(channel):
            await responder.private(tr.text_messages(tr.NOT_ENABLED))
            return
        await responder.defer(private=False)
        message = IncomingMessage(tr.PLATFORM, user, channel, f"search {query}", thread)
        reply = await self._blocking(self._assistant.command, message)
        if reply.kind == "error":
            await responder.private(tr.reply_messages(reply))
            return
        await responder.public(tr.reply_messages(reply, shared_by=user))

    async def _open_form(self, interaction: discord.Interaction[Any], paper_id: str) -> None:
        channel, thread = self._card_thread(interaction)
        paper = await self._quick(self._store.get_paper, paper_id)
        form = AskForm(paper_id, paper.title if paper else paper_id, channel, thread)
        await interaction.response.send_modal(form)

    async def _form_answer(self, responder: Responder, form: AskForm, question: str) -> None:
        """The "Ask about this paper" form: answered publicly in the card's thread."""
        user = str(responder.interaction.user.id)
        if not self._allowed_here(form.channel):
            await responder.private(tr.text_messages(tr.NOT_ENABLED))
            return
        await responder.defer(private=True)
        text = tr.plain_text(question)
        message = IncomingMessage(tr.PLATFORM, user, form.channel, text, form.thread)
        asked = (user, text)
        post = ThreadPost(self.client.http, form.thread)
        live = LiveAnswer(asyncio.get_running_loop(), post.show, asked, self._stream_interval)
        scope = Scope(paper_ids=(form.paper_id,))
        reply = await self._blocking(self._assistant.ask, message, scope, live.add)
        await live.close()
        if reply.ephemeral:
            await post.discard()
            await responder.private(tr.reply_messages(reply))
            return
        await post.finish(tr.reply_messages(reply, asked=asked, feedback=True))
        await responder.private(tr.text_messages(f"Answered in <#{form.thread}>."))

    async def _vote(self, responder: Responder, verdict: str) -> None:
        """Helpful / not helpful on an answer: stored (the user's last vote counts)."""
        feedback = tr.interaction_feedback(tr.interaction_payload(responder.interaction), verdict)
        if feedback is None:
            return
        await self._quick(self._feedback.record, feedback)
        await responder.private(tr.text_messages(tr.THANKS))

    async def _all_qa(self, responder: Responder, week: str, paper_id: str) -> None:
        """ "All Q&A": every Q&A pair of the card, in the card's thread (once per thread)."""
        await responder.defer(private=True)
        channel, thread = self._card_thread(responder.interaction)
        found = await self._stored_card(tr.parse_week(week), paper_id)
        if found is None:
            await responder.private(tr.text_messages("This card's digest is no longer stored."))
            return
        digest, card = found
        if not await self._quick(self._store.first_time, f"discord:all_qa:{channel}:{thread}"):
            await responder.private(tr.text_messages("All Q&A is already in this card's thread."))
            return
        for message in qa_messages(digest, card):
            await self._post(thread, message)
        await responder.private(tr.text_messages(f"Every Q&A of this card is in <#{thread}>."))

    async def _stored_card(
        self, week: date | None, paper_id: str
    ) -> tuple[Digest, DigestCard] | None:
        if self._load_digest is None or week is None:
            return None
        language = self._settings.digest.language
        try:
            digest = await self._quick(self._load_digest, week, language)
        except NotFoundError:
            return None
        card = next((c for c in digest.cards if c.paper_id == paper_id), None)
        return (digest, card) if card is not None else None

    # -- Discord calls -------------------------------------------------------------------

    async def _post(self, channel_id: str, message: Message) -> Any:
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
        return await self.client.http.request(route, json=message)

    async def _thread_on(self, channel: str, message_id: str, title: str) -> str | None:
        """A thread started on a message (None if Discord refuses: no permission, a DM)."""
        try:
            created = await self.client.http.start_thread_with_message(
                channel, message_id, name=tr.thread_name(title), auto_archive_duration=1440
            )
        except discord.HTTPException as exc:
            if exc.code == 160004:  # already there: a message's thread has its id
                return message_id
            log.warning("discord: could not start a thread in %s: %s", channel, exc)
            return None
        return str(created["id"])

    async def _parent_of(self, channel: Any) -> str | None:
        """The parent channel of a thread, None for any other channel (cached)."""
        if isinstance(channel, discord.Thread):
            return str(channel.parent_id)
        if isinstance(channel, _CHANNEL_TYPES):
            return None
        if channel.id not in self._parents:
            if len(self._parents) > 10_000:
                self._parents.clear()
            parent, thread = tr.place(await self.client.http.get_channel(channel.id))
            self._parents[channel.id] = parent if thread else None
        return self._parents[channel.id]

    @staticmethod
    def _card_thread(interaction: discord.Interaction[Any]) -> tuple[str, str]:
        """(channel, thread) of the card a button sits on: the card is its thread's root."""
        channel, thread = tr.place(tr.interaction_payload(interaction)["channel"])
        message = interaction.message
        if thread is None and message is not None:
            thread = str(message.thread.id if message.thread else message.id)
        return channel, thread or channel

    async def _apologize_in(self, message: discord.Message) -> None:
        await self._post(str(message.channel.id), tr.text_messages(tr.APOLOGY)[0])

    # -- plumbing ------------------------------------------------------------------------

    def _spawn(
        self,
        work: Coroutine[Any, Any, None],
        apologize: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        """Run `work` as a tracked task inside an error boundary: a failure is logged once
        with its traceback and the user gets a short apology."""

        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("discord: handling an event failed")
                try:
                    await apologize()
                except Exception as exc:
                    log.warning("discord: could not apologize for the failure: %s", exc)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _track_current(self) -> None:
        """Count the running task (discord.py's, answering an autocomplete) as in flight."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the work queue's answer lane (the core blocks)."""
        return await self._work.run("answer", "discord", fn, *args)

    async def _quick(self, fn: Callable[..., T], *args: Any) -> T:
        """A short blocking call (a lookup, a vote) that must not wait behind answers."""
        return await self._work.run("quick", "discord", fn, *args)

    def _allowed_here(self, channel: str) -> bool:
        return not self._allowed or channel in self._allowed
