"""The Slack connector's shell: a bolt `App` whose listeners ack at once and hand the event
to the shared flows.

Every listener acknowledges first (Slack wants that within 3 s), turns the payload into a
flow event (`translate`) and hands it to the flows on the connector's own event loop; the
flows run the blocking core on the work queue and answer through `SlackPlatform`. Bolt's
listener threads only ever run these short functions, so an ack never waits for a busy
model, however many answers are being written.

    connector = SlackConnector(runtime.assistant, runtime.store, settings, load_digest)
    app = connector.build_app()          # the same listeners for Socket Mode and HTTP
    SocketModeHandler(app, app_token).start()
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from assistant.core import Assistant
from assistant.errors import ConfigError
from assistant.settings import Settings, SlackSettings
from assistant.state import StateStore
from connectors.flow.flows import ChatFlows, DigestLoader
from connectors.flow.loop import FlowLoop
from connectors.flow.platform import Event
from connectors.flow.work import WorkQueue
from connectors.slack import translate as tr
from connectors.slack.adapter import SlackPlatform
from connectors.slack.render import ALL_QA_ACTION, ASK_ACTION, PDF_ACTION
from connectors.slack.replies import (
    HELPFUL_ACTION,
    SHARE_ACTION,
    UNHELPFUL_ACTION,
    SlackRenderer,
)

log = logging.getLogger(__name__)

COMMAND = "/paper"


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


class SlackConnector:
    """Holds the flows, their loop and the Web API client; wires Slack's events to them."""

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
        self._settings = settings
        self.client = client or build_web_client(settings.slack)
        self.platform = SlackPlatform(
            self.client, settings.slack.admin_user_ids, admin_cache_seconds
        )
        self.queue = WorkQueue(workers, name="slack")
        self.flows = ChatFlows(
            self.platform,
            SlackRenderer(),
            assistant,
            store,
            self.queue,
            allowed=settings.slack.allowed_channel_ids,
            load_digest=load_digest,
            language=settings.digest.language,
            stream_interval=stream_interval,
        )
        self._loop = FlowLoop("slack-flows")
        self._acks = ThreadPoolExecutor(max_workers=8, thread_name_prefix="slack-ack")
        self._closed = False

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
        buttons = "|".join(
            (ASK_ACTION, ALL_QA_ACTION, SHARE_ACTION, HELPFUL_ACTION, UNHELPFUL_ACTION)
        )
        app.action(re.compile(f"^({buttons})$"))(self._on_button)
        app.action(PDF_ACTION)(self._on_link)
        app.view(tr.ASK_MODAL)(self._on_modal)
        return app

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every event handed over so far is fully handled (False if `timeout`
        seconds passed first)."""
        return self._loop.run(self.flows.drain(timeout))

    def close(self) -> None:
        """Finish the work in flight and stop the worker threads and the loop."""
        if self._closed:
            return
        self._closed = True
        self._acks.shutdown(wait=True)
        self._loop.run(self.flows.drain())
        self.queue.shutdown(wait=True)
        self._loop.stop()

    def abandon(self) -> None:
        """Drop the work still queued (shutdown ran out of time); answers already being
        written finish on their own, bounded by the LLM timeout."""
        self._acks.shutdown(wait=False, cancel_futures=True)
        self._loop.call_soon(self.flows.cancel)
        self.queue.shutdown(wait=False, cancel_waiting=True)

    # -- listeners: ack, then hand over ------------------------------------------------

    def _on_command(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        self._hand_over(tr.command_event(body))

    def _on_message(
        self, body: dict[str, Any], event: dict[str, Any], context: BoltContext
    ) -> None:
        found = tr.message_event(event, context.bot_user_id, body.get("event_id"))
        if found is not None:
            self._hand_over(found)

    def _on_button(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()  # an ask button's modal opens from the flows, within the trigger's 3 s
        found = tr.action_event(body)
        if found is not None:
            self._hand_over(found)

    def _on_link(self, ack: Ack) -> None:
        ack()  # a link button: Slack opens the PDF, there is nothing to do

    def _on_modal(self, ack: Ack, body: dict[str, Any]) -> None:
        submitted = tr.modal_submit(body)
        if submitted is None:
            ack(response_action="errors", errors={tr.QUESTION_BLOCK: "Please type a question."})
            return
        ack()
        self._hand_over(submitted)

    def _hand_over(self, event: Event) -> None:
        self._loop.call_soon(self.flows.spawn, event)
