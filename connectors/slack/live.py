"""An answer that shows up in Slack while the model writes it.

live = LiveMessage(client, channel, thread_ts)
reply = assistant.follow_up(message, on_delta=live.add)   # posts, then updates ~1/s
live.finish(reply_messages(reply))
"""

from __future__ import annotations

import logging
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from connectors.slack import translate as tr
from connectors.slack.render import Message

log = logging.getLogger(__name__)


class LiveMessage:
    """An answer that appears while the model writes it: posted (or, with `ts`, updated
    in place) at most once per `interval` seconds, then replaced by the final reply."""

    def __init__(
        self,
        client: WebClient,
        channel: str,
        thread: str | None,
        ts: str | None = None,
        asked: tuple[str, str] | None = None,
        interval: float = 1.0,
    ) -> None:
        self._client = client
        self._channel = channel
        self._thread = thread
        self._asked = asked
        self._interval = interval
        self._text = ""
        self._last = time.monotonic()
        self.ts = ts
        self.updates = 0

    def add(self, piece: str) -> None:
        """The model's next piece of text (the core's `on_delta`)."""
        self._text += piece
        if time.monotonic() - self._last >= self._interval and self._text.strip():
            self._show(tr.streaming_message(self._text, self._asked))

    def finish(self, messages: list[Message]) -> None:
        """The final reply: the first message replaces the live one, the rest follow in
        the thread."""
        first, rest = messages[0], messages[1:]
        if self.ts is None:
            response = self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread, unfurl_links=False, **first
            )
            self.ts = str(response["ts"])
        else:
            self._client.chat_update(channel=self._channel, ts=self.ts, **first)
        for message in rest:
            self._client.chat_postMessage(
                channel=self._channel,
                thread_ts=self._thread or self.ts,
                unfurl_links=False,
                **message,
            )

    def discard(self) -> None:
        """Remove the live message (the answer turned out to be a private error)."""
        if self.ts is not None:
            self._client.chat_delete(channel=self._channel, ts=self.ts)
            self.ts = None

    def _show(self, message: Message) -> None:
        try:
            if self.ts is None:
                response = self._client.chat_postMessage(
                    channel=self._channel, thread_ts=self._thread, **message
                )
                self.ts = str(response["ts"])
            else:
                self._client.chat_update(channel=self._channel, ts=self.ts, **message)
            self.updates += 1
        except SlackApiError as exc:  # a missed preview is not worth failing the answer
            log.warning("slack: live update failed: %s", exc.response.get("error"))
        self._last = time.monotonic()
