"""Running the Slack app: Socket Mode (no public URL) or HTTP (behind a load balancer).

Both feed the same bolt `App`, so the listeners do not know which one is in use.
`RunningSlack` is the connector as `paperbot serve` runs it (an
`assistant.serving.RunningConnector`).

    runner = SlackHttpServer(app, "0.0.0.0", 3000, secret)   # or SocketModeRunner(app, token)
    runner.start()
    slack = RunningSlack(SlackDigestChannel(client), runner, connector, grace_seconds=20)
    ...
    slack.stop()
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Protocol

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.errors import SlackApiError

from assistant.digest.publisher import DigestChannel
from assistant.errors import ConfigError

if TYPE_CHECKING:
    from connectors.slack.app import SlackConnector

log = logging.getLogger(__name__)


class SlackRunner(Protocol):
    """A way of receiving Slack's requests for the app."""

    description: str

    def start(self) -> None:
        """Start receiving in background threads; returns at once."""
        ...

    def ready(self) -> tuple[bool, str]:
        """(receiving?, why not or a short status)."""
        ...

    def stop(self) -> None:
        """Stop receiving."""
        ...


class SocketModeRunner:
    """Socket Mode: a WebSocket to Slack opened with the app-level token (xapp-...).

    Ready once Slack said hello on the current connection, and while that connection
    answers pings. bolt's built-in client notices a connection cut without a close frame
    only after five failed pings (spinning on the dead socket meanwhile), so it pings every
    `ping_interval` s instead of bolt's 10, and `ready()` reports the connection down after
    `2 * ping_interval + 1` s without a pong, before the client gives up on it."""

    description = "Socket Mode"

    def __init__(self, app: App, app_token: str, ping_interval: float = 3.0) -> None:
        self._handler = SocketModeHandler(app, app_token, ping_interval=ping_interval)
        self._client = self._handler.client
        self._client.on_message_listeners.append(self._on_message)
        self._stale_after = 2 * ping_interval + 1.0
        self._greeted: str | None = None  # the session Slack said hello on
        self._current: tuple[str, float] | None = None  # a session, when first seen

    def start(self) -> None:
        try:
            self._handler.connect()
        except SlackApiError as exc:
            self._handler.close()
            raise ConfigError(
                f"Slack refused SLACK_APP_TOKEN ({exc.response.get('error')}) when opening a "
                "Socket Mode connection: set it to an app-level token (xapp-...) with the "
                "connections:write scope, from the app's Basic Information page."
            ) from None

    def ready(self) -> tuple[bool, str]:
        session = self._client.current_session
        if session is None or not session.is_active():
            return False, "Socket Mode is not connected to Slack (reconnecting)"
        if self._client.connect_operation_lock.locked():
            return False, "Socket Mode is moving to a new connection"
        if self._greeted != session.session_id:
            return False, "Socket Mode is connecting (no hello from Slack yet)"
        if self._current is None or self._current[0] != session.session_id:
            self._current = (session.session_id, time.time())
        answered = max(session.last_ping_pong_time or 0.0, self._current[1])
        if time.time() - answered > self._stale_after:
            return False, "Socket Mode connection stopped answering pings (reconnecting)"
        return True, "Socket Mode connected"

    def stop(self) -> None:
        self._handler.close()

    def _on_message(self, raw: str) -> None:
        if raw.startswith("{") and '"hello"' in raw:
            try:
                hello = json.loads(raw).get("type") == "hello"
            except ValueError:
                return
            if hello:
                self._greeted = self._client.session_id()


class RunningSlack:
    """The Slack connector in `paperbot serve`: its digest channel, whether it receives,
    and a stop that lets in-flight answers finish for up to `grace_seconds`.

    Without a receiver (`serve --catch-up-only`) it only posts digests."""

    name = "slack"

    def __init__(
        self,
        digest_channel: DigestChannel,
        receiver: SlackRunner | None = None,
        connector: SlackConnector | None = None,
        grace_seconds: float = 20.0,
    ) -> None:
        self.digest_channel: DigestChannel | None = digest_channel
        self._receiver = receiver
        self._connector = connector
        self._grace = grace_seconds
        self._stopped = False
        self._lock = threading.Lock()

    def ready(self) -> tuple[bool, str]:
        if self._stopped:
            return False, "stopped"
        if self._receiver is None:
            return True, "posting digests only (not receiving)"
        return self._receiver.ready()

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self._receiver is not None:
            self._receiver.stop()  # no new events from here on
        if self._connector is not None:
            self._finish_work(self._connector)

    def _finish_work(self, connector: SlackConnector) -> None:
        started = time.monotonic()
        closing = threading.Thread(target=connector.close, name="slack-close", daemon=True)
        closing.start()
        closing.join(timeout=self._grace)
        if closing.is_alive():
            connector.abandon()
            log.warning(
                "slack: work still queued after %g s is dropped (PAPERBOT_SHUTDOWN_SECONDS)",
                self._grace,
            )
        else:
            log.info("slack: in-flight work finished in %.1f s", time.monotonic() - started)
