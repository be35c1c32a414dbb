"""The Slack connector's shell: a bolt `App` whose listeners ack at once and hand the work on.

Every listener acknowledges first (Slack wants that within 3 s) and queues the real work on
the connector's own worker pool, which calls the blocking core and posts the replies.
Because bolt's listener pool only ever runs these short ack functions, an ack never waits
for a busy model, however many answers are being written.

    connector = SlackConnector(runtime.assistant, runtime.store, settings, load_digest)
    app = connector.build_app()          # the same listeners for Socket Mode and HTTP
    SocketModeHandler(app, app_token).start()
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltRequest
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from assistant.commands import try_parse
from assistant.conversations import Scope
from assistant.core import Assistant
from assistant.digest.model import Digest
from assistant.errors import ConfigError, NotFoundError
from assistant.feedback import FeedbackStore
from assistant.messages import IncomingMessage
from assistant.settings import Settings, SlackSettings
from assistant.state import StateStore
from connectors.slack import translate as tr
from connectors.slack.live import LiveMessage
from connectors.slack.render import ALL_QA_ACTION, ASK_ACTION, PDF_ACTION, Message, qa_messages

log = logging.getLogger(__name__)

COMMAND = "/paper"
REACTION = "eyes"
# Errors meaning the bot cannot post in the channel (a DM, a private channel it is not in).
_NOT_POSTABLE = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
DigestLoader = Callable[[date | None, str], Digest]


class _SameTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns that it is unused next to our client,
    which holds that same token: the warning would only worry operators."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


bolt_log = logging.getLogger("connectors.slack.bolt")
bolt_log.addFilter(_SameTokenNotice())


def build_web_client(settings: SlackSettings, token: str | None = None) -> WebClient:
    """The Web API client: `SLACK_API_BASE_URL`, and retries on 429 (honouring
    Retry-After) and on dropped connections."""
    secret = token or (settings.bot_token.get_secret_value() if settings.bot_token else None)
    base = (
        settings.api_base_url
        if settings.api_base_url.endswith("/")
        else f"{settings.api_base_url}/"
    )
    return WebClient(
        token=secret,
        base_url=base,
        timeout=30,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
        ],
    )


@dataclass(frozen=True)
class Target:
    """Where a private answer goes: a user in a channel (and thread), or a slash
    command's response URL when the bot cannot post there."""

    channel: str
    user: str
    thread: str | None = None
    response_url: str | None = None


class SlackConnector:
    """Holds the core, the state and the Web API client; wires Slack's events to them."""

    def __init__(
        self,
        assistant: Assistant,
        store: StateStore,
        settings: Settings,
        load_digest: DigestLoader | None = None,
        client: WebClient | None = None,
        workers: int = 4,
        stream_interval: float = 1.0,
        admin_cache_seconds: float = 600.0,
    ) -> None:
        self._assistant = assistant
        self._store = store
        self._settings = settings
        self._load_digest = load_digest
        self.client = client or build_web_client(settings.slack)
        self._allowed = settings.slack.allowed_channel_ids
        self._admin_ids = settings.slack.admin_user_ids
        self._stream_interval = stream_interval
        self._admin_ttl = admin_cache_seconds
        self._admin_cache: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()
        self._feedback = FeedbackStore(store)
        self._acks = ThreadPoolExecutor(max_workers=8, thread_name_prefix="slack-ack")
        self._work = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack-work")

    def build_app(self) -> App:
        """A bolt App with every listener; run it with Socket Mode or over HTTP. Raises
        ConfigError when Slack refuses the bot token (bolt checks it with auth.test)."""
        secret = self._settings.slack.signing_secret
        try:
            app = App(
                name="paperbot",
                logger=bolt_log,
                client=self.client,
                signing_secret=secret.get_secret_value() if secret else "",
                process_before_response=False,
                listener_executor=self._acks,
            )
        except BoltError as exc:
            if not isinstance(exc.__context__, SlackApiError):
                raise
            raise ConfigError(
                f"Slack refused SLACK_BOT_TOKEN ({exc.__context__.response.get('error')}): "
                "set it to the app's bot token (xoxb-...), from its OAuth & Permissions page."
            ) from None
        app.command(COMMAND)(self._on_command)
        app.event("message")(self._on_message)
        app.event("app_mention")(self._on_message)
        app.action(ASK_ACTION)(self._on_ask_button)
        app.action(ALL_QA_ACTION)(self._on_all_qa)
        app.action(PDF_ACTION)(self._on_pdf)
        app.action(tr.SHARE_ACTION)(self._on_share)
        app.action(re.compile(f"^({tr.HELPFUL_ACTION}|{tr.UNHELPFUL_ACTION})$"))(self._on_feedback)
        app.view(tr.ASK_MODAL)(self._on_modal)
        return app

    def close(self) -> None:
        """Finish the queued work and stop the worker threads."""
        self._acks.shutdown(wait=True)
        self._work.shutdown(wait=True)

    def abandon(self) -> None:
        """Drop the work still queued (shutdown ran out of time); answers already being
        written finish on their own, bounded by the LLM timeout."""
        self._acks.shutdown(wait=False, cancel_futures=True)
        self._work.shutdown(wait=False, cancel_futures=True)

    # -- listeners: ack, then queue ------------------------------------------------------

    def _on_command(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        channel, user = body.get("channel_id", ""), body.get("user_id", "")
        target = Target(channel, user, None, body.get("response_url"))
        self._submit(self._run_command, (dict(body),), target)

    def _on_message(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        context: BoltContext,
        request: BoltRequest,
    ) -> None:
        message = tr.event_to_message(event, context.bot_user_id)
        if message is None or message.thread is None:
            return
        mention = event.get("type") == "app_mention"
        conversations = self._assistant.conversations
        if not mention and conversations.get(tr.PLATFORM, message.channel, message.thread) is None:
            return  # people talking in a thread that is not ours
        event_id = body.get("event_id")
        if event_id and not self._store.first_time(f"slack:{event_id}"):
            retry = (request.headers.get("x-slack-retry-num") or ["?"])[0]
            log.info("slack: event %s already handled (retry %s): ignored", event_id, retry)
            return
        target = Target(message.channel, message.user, message.thread)
        if not self._allowed_here(message.channel):
            if mention:
                self._submit(self._ephemeral, (target, [tr.text_message(tr.NOT_ENABLED)]), None)
            return
        self._submit(self._answer_in_thread, (message,), target)

    def _on_ask_button(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()  # the modal opens right here: a trigger_id is only valid for 3 s
        ref = tr.action_message_ref(body)
        paper_id = str((body.get("actions") or [{}])[0].get("value") or "")
        if ref is None or not body.get("trigger_id"):
            return
        paper = self._store.get_paper(paper_id) if paper_id else None
        view = tr.ask_modal(paper_id, paper.title if paper else paper_id, *ref)
        try:
            self.client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.warning("slack: could not open the ask modal: %s", exc.response.get("error"))

    def _on_modal(self, ack: Ack, body: dict[str, Any]) -> None:
        question = tr.modal_question(body)
        if question is None:
            ack(response_action="errors", errors={tr.QUESTION_BLOCK: "Please type a question."})
            return
        ack()
        target = Target(question.channel, question.user, question.thread)
        self._submit(self._answer_modal, (question,), target)

    def _on_all_qa(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        self._submit(self._post_all_qa, (body,), self._action_target(body))

    def _on_pdf(self, ack: Ack) -> None:
        ack()  # a link button: Slack opens the PDF, there is nothing to do

    def _on_share(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        self._submit(self._share_results, (body,), self._action_target(body))

    def _on_feedback(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        feedback = tr.action_to_feedback(body)
        if feedback is None:
            return
        self._feedback.record(feedback)
        target = Target(feedback.channel, feedback.user, feedback.thread)
        thanks = [tr.text_message("Thanks, your feedback on this answer is recorded.")]
        self._submit(self._ephemeral, (target, thanks), None)

    # -- work ----------------------------------------------------------------------------

    def _run_command(self, body: dict[str, Any]) -> None:
        command = try_parse(tr.plain_text(str(body.get("text", ""))))
        admin_only = command is not None and command.admin_only
        admin = admin_only and self._is_admin(str(body.get("user_id", "")))
        message = tr.command_to_message(body, is_admin=admin)
        target = Target(message.channel, message.user, None, body.get("response_url"))
        if not self._allowed_here(message.channel):
            self._ephemeral(target, [tr.text_message(tr.NOT_ENABLED)])
            return
        verb = command.verb if command else None
        if command is not None and verb == "ask":
            self._ask_in_channel(message, command.argument, target)
            return
        reply = self._assistant.command(message)
        if verb == "search" and command is not None:
            self._ephemeral(target, tr.reply_messages(reply, share_query=command.argument))
        elif verb in (None, "show", "help") or reply.ephemeral:
            self._ephemeral(target, tr.reply_messages(reply))
        else:
            self._post(message.channel, tr.reply_messages(reply))

    def _ask_in_channel(self, message: IncomingMessage, question: str, target: Target) -> None:
        """`/paper ask`: a root message in the channel whose thread holds the conversation."""
        try:
            root = self.client.chat_postMessage(
                channel=message.channel, **tr.placeholder_message(message.user, question)
            )
        except SlackApiError as exc:
            if exc.response.get("error") not in _NOT_POSTABLE:
                raise
            self._ephemeral(target, [tr.text_message(tr.CANNOT_POST)])
            return
        ts = str(root["ts"])
        asked = (message.user, question)
        live = LiveMessage(self.client, message.channel, None, ts, asked, self._stream_interval)
        reply = self._assistant.command(replace(message, thread=ts, message_id=ts), live.add)
        if reply.kind == "error":
            live.discard()
            self._ephemeral(target, tr.reply_messages(reply))
            return
        live.finish(tr.reply_messages(reply, asked=asked, feedback=True))

    def _answer_in_thread(self, message: IncomingMessage) -> None:
        """A thread reply or a mention: answered in the thread, with an "eyes" reaction
        on the question while the answer is being written."""
        assert message.message_id is not None and message.thread is not None
        self._react(self.client.reactions_add, message.channel, message.message_id)
        try:
            live = LiveMessage(
                self.client, message.channel, message.thread, interval=self._stream_interval
            )
            reply = self._assistant.follow_up(message, live.add)
            if reply.ephemeral:
                live.discard()
                target = Target(message.channel, message.user, message.thread)
                self._ephemeral(target, tr.reply_messages(reply))
            else:
                live.finish(tr.reply_messages(reply, feedback=True))
        finally:
            self._react(self.client.reactions_remove, message.channel, message.message_id)

    def _answer_modal(self, question: tr.ModalQuestion) -> None:
        """The "Ask about this paper" modal: answered in the card's thread."""
        message = IncomingMessage(
            tr.PLATFORM, question.user, question.channel, question.question, question.thread
        )
        scope = Scope(paper_ids=(question.paper_id,)) if question.paper_id else None
        asked = (question.user, question.question)
        live = LiveMessage(
            self.client, question.channel, question.thread, None, asked, self._stream_interval
        )
        reply = self._assistant.ask(message, scope, live.add)
        if reply.ephemeral:
            live.discard()
            target = Target(question.channel, question.user, question.thread)
            self._ephemeral(target, tr.reply_messages(reply))
            return
        live.finish(tr.reply_messages(reply, asked=asked, feedback=True))

    def _post_all_qa(self, body: dict[str, Any]) -> None:
        """ "All Q&A": every Q&A pair of the card, in the card's thread (once per thread)."""
        target = self._action_target(body)
        ref = tr.action_message_ref(body)
        value = str((body.get("actions") or [{}])[0].get("value") or "")
        week, _, paper_id = value.partition(":")
        if ref is None or target is None or self._load_digest is None or not paper_id:
            return
        channel, thread = ref
        try:
            digest = self._load_digest(date.fromisoformat(week), self._settings.digest.language)
            card = next(c for c in digest.cards if c.paper_id == paper_id)
        except (NotFoundError, ValueError, StopIteration):
            self._ephemeral(target, [tr.text_message("This card's digest is no longer stored.")])
            return
        if not self._store.first_time(f"slack:all_qa:{channel}:{thread}"):
            self._ephemeral(target, [tr.text_message("All Q&A is already in this card's thread.")])
            return
        self._post(channel, qa_messages(digest, card), thread)

    def _share_results(self, body: dict[str, Any]) -> None:
        """ "Share in channel" on private search results: the search, posted for everyone."""
        target = self._action_target(body)
        query = str((body.get("actions") or [{}])[0].get("value") or "")
        if target is None or not query:
            return
        if not self._allowed_here(target.channel):
            self._ephemeral(target, [tr.text_message(tr.NOT_ENABLED)])
            return
        message = IncomingMessage(tr.PLATFORM, target.user, target.channel, f"search {query}")
        reply = self._assistant.command(message)
        if reply.kind == "error":
            self._ephemeral(target, tr.reply_messages(reply))
            return
        self._post(target.channel, tr.reply_messages(reply, shared_by=target.user))

    # -- Slack calls ---------------------------------------------------------------------

    def _submit(
        self, job: Callable[..., None], args: tuple[Any, ...], target: Target | None
    ) -> None:
        """Queue `job(*args)` on the worker pool, inside an error boundary: a failure is
        logged once with its traceback and the user (if known) gets a short apology."""

        def guarded() -> None:
            try:
                job(*args)
            except Exception:
                log.exception("slack: %s failed", getattr(job, "__name__", job))
                if target is not None:
                    self._apologize(target)

        self._work.submit(guarded)

    def _apologize(self, target: Target) -> None:
        try:
            self._ephemeral(target, [tr.text_message(tr.APOLOGY)])
        except Exception:
            log.warning("slack: could not tell %s about the failure", target.user)

    def _ephemeral(self, target: Target, messages: list[Message]) -> None:
        """Messages only `target.user` sees; through the command's response URL when the
        bot cannot post in the channel (a DM, a private channel it was not invited to)."""
        for message in messages:
            try:
                self.client.chat_postEphemeral(
                    channel=target.channel, user=target.user, thread_ts=target.thread, **message
                )
            except SlackApiError as exc:
                if exc.response.get("error") not in _NOT_POSTABLE or not target.response_url:
                    raise
                WebhookClient(target.response_url).send(response_type="ephemeral", **message)

    def _post(self, channel: str, messages: list[Message], thread: str | None = None) -> None:
        """Messages for everyone; after the first, the rest go in its thread."""
        for message in messages:
            response = self.client.chat_postMessage(
                channel=channel, thread_ts=thread, unfurl_links=False, **message
            )
            thread = thread or str(response["ts"])

    def _react(self, method: Callable[..., Any], channel: str, ts: str) -> None:
        try:
            method(channel=channel, timestamp=ts, name=REACTION)
        except SlackApiError as exc:  # already there, gone, or no scope: not worth failing
            log.debug("slack: reaction failed: %s", exc.response.get("error"))

    def _is_admin(self, user: str) -> bool:
        """Admin or owner per `users.info` (cached), or listed in SLACK_ADMIN_USERS."""
        if user in self._admin_ids:
            return True
        now = time.monotonic()
        with self._lock:
            cached = self._admin_cache.get(user)
        if cached is not None and now - cached[0] < self._admin_ttl:
            return cached[1]
        try:
            info = self.client.users_info(user=user)["user"]
        except SlackApiError as exc:
            log.warning("slack: users.info failed for %s: %s", user, exc.response.get("error"))
            return False
        admin = tr.is_admin(info, self._admin_ids)
        with self._lock:
            self._admin_cache[user] = (now, admin)
        return admin

    def _allowed_here(self, channel: str) -> bool:
        return not self._allowed or channel in self._allowed

    @staticmethod
    def _action_target(body: dict[str, Any]) -> Target | None:
        ref = tr.action_message_ref(body)
        user = (body.get("user") or {}).get("id")
        if ref is None or not user:
            return None
        channel = ref[0]
        container = body.get("container") or {}
        in_thread = (body.get("message") or {}).get("thread_ts") or container.get("thread_ts")
        return Target(channel, str(user), str(in_thread) if in_thread else None)
