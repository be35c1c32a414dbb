"""Running the Discord connector inside `paperbot serve`: the bot on its own event loop.

discord.py is asyncio-native and `serve` has loops of its own (the schedule, each digest
run), so the bot gets a background thread with its own loop: it logs in, asks the REST
API where the gateway is (`GET /gateway/bot`), then holds the gateway connection
(discord.py resumes or reconnects by itself; if the connection cannot be made at all, it
is tried again with a growing pause). `start` returns once the first connection is made
or has failed; a token or an intent the gateway refuses fails it. The digest channel's
calls from other loops are marshalled onto the bot's.

    discord = start_discord(rt.assistant, rt.store, rt.settings, rt.digest_builder.load)
    channels["discord"] = discord.digest_channel
    ...
    discord.ready()   # (True, "connected as paperbot#1234 to 2 guild(s)")
    discord.stop()
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import discord

from assistant.core import Assistant
from assistant.digest.publisher import DigestChannel
from assistant.errors import ConfigError
from assistant.settings import Settings
from assistant.state import StateStore
from connectors.discord.app import DigestLoader, DiscordConnector, use_api_base, use_gateway
from connectors.discord.digest import DiscordDigestChannel

log = logging.getLogger(__name__)

LOGIN_WAIT = 15.0  # seconds `start` waits to tell a rejected token from a slow network
FIRST_RETRY = 5.0
LONGEST_RETRY = 300.0
BAD_TOKEN = (
    "Discord refused DISCORD_BOT_TOKEN: copy the token again from the Developer "
    "Portal (the application → Bot → Reset Token)."
)
NO_INTENT = (
    "Discord refused the Message Content intent: enable it for the bot in the Developer "
    "Portal (Bot → Privileged Gateway Intents), or unset DISCORD_MESSAGE_CONTENT."
)


class DiscordRunning:
    """The Discord connector in `paperbot serve` (an `assistant.serving.RunningConnector`):
    the bot's thread and loop, its digest channel, readiness, and a stop that lets
    in-flight answers and digest posts finish for up to `grace_seconds`.

    Without a connector (`serve --catch-up-only`) it only logs in and posts digests."""

    name = "discord"

    def __init__(
        self,
        client: discord.Client,
        token: str,
        connector: DiscordConnector | None = None,
        grace_seconds: float = 20.0,
        post_interval: float = 1.0,
    ) -> None:
        self.client = client
        self._token = token
        self._connector = connector
        self._grace = grace_seconds
        self._post_interval = post_interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._login_tried = threading.Event()
        self._gateway_tried = threading.Event()  # the first connection made, or failed
        self._started_up = False  # `start` returned: a later fatal error is only logged
        self._logged_in = asyncio.Event()  # bound to the bot's loop on first use
        self._stopping = asyncio.Event()
        self._error: str | None = None
        self._stopped = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="discord", daemon=True)
        self._channel: DiscordDigestChannel | None = None
        self.digest_channel: DigestChannel | None = None

    def start(self, login_wait: float = LOGIN_WAIT) -> DiscordRunning:
        """Start the bot's thread; raise ConfigError if Discord rejects the token (at
        login or at the gateway) or the Message Content intent."""
        deadline = time.monotonic() + login_wait
        self._thread.start()
        self._started.wait()
        assert self._loop is not None
        self._channel = DiscordDigestChannel(
            self.client, self._loop, self._wait_for_login, self._post_interval
        )
        self.digest_channel = self._channel
        self._login_tried.wait(login_wait)
        if self._connector is not None and self._logged_in.is_set():
            self._gateway_tried.wait(max(0.0, deadline - time.monotonic()))
        self._started_up = True
        if self._error in (BAD_TOKEN, NO_INTENT):
            error = self._error
            self.stop()
            raise ConfigError(error)
        return self

    def ready(self) -> tuple[bool, str]:
        if self._stopped:
            return False, "stopped"
        if self._error is not None:
            return False, self._error
        if not self._logged_in.is_set():
            return False, "logging in to Discord"
        if self._connector is None:
            return True, "posting digests only (not receiving)"
        client = self._connector.client
        if client.gateway_up and not client.is_closed():
            return True, f"connected as {client.user} to {len(client.guilds)} guild(s)"
        return False, "not connected to the Discord gateway (reconnecting)"

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        loop = self._loop
        if loop is None or not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            future.result(timeout=self._grace + 10)
        except Exception:
            log.exception("discord: stopping the bot failed")
        self._thread.join(timeout=10)

    # -- on the bot's thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("discord: the bot's thread failed")
        finally:
            self._login_tried.set()
            self._gateway_tried.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started.set()
        work = asyncio.create_task(self._login_and_listen())
        await self._stopping.wait()
        if not work.done():
            work.cancel()
        await asyncio.gather(work, return_exceptions=True)

    async def _login_and_listen(self) -> None:
        delay = FIRST_RETRY
        while not self._logged_in.is_set():
            try:
                await self.client.login(self._token)
                self._logged_in.set()
                self._error = None
            except discord.LoginFailure:
                self._error = BAD_TOKEN
                return
            except (discord.HTTPException, OSError) as exc:
                self._error = f"cannot reach Discord to log in: {exc}"
                log.warning("discord: %s; retrying in %.0f s", self._error, delay)
                self._login_tried.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, LONGEST_RETRY)
            finally:
                self._login_tried.set()
        if self._connector is not None:
            await self._listen()

    async def _listen(self) -> None:
        """Hold the gateway connection; discord.py resumes and reconnects by itself, and a
        connection that cannot be made at all is tried again after a growing pause."""
        watch = asyncio.create_task(self._watch_first_connection())
        delay = FIRST_RETRY
        try:
            while not self.client.is_closed():
                try:
                    _, url, _ = await self.client.http.get_bot_gateway()
                    use_gateway(url)
                    await self.client.connect(reconnect=True)
                except discord.PrivilegedIntentsRequired:
                    self._give_up(NO_INTENT)
                    return
                except Exception as exc:
                    if self._stopped:  # closed by `stop`, even before the gateway's hello
                        return
                    if self.client.is_closed():
                        self._give_up(_closed_reason(exc))
                        return
                    self._gateway_tried.set()
                    log.warning("discord: no gateway (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, LONGEST_RETRY)
        finally:
            watch.cancel()

    async def _watch_first_connection(self) -> None:
        """Tell `start` when the first connection is made (READY), or failed in a way
        discord.py retries by itself; a fatal close closes the client, and `_listen`
        reports that."""
        waits = {asyncio.ensure_future(self.client.wait_for(e)) for e in ("connect", "disconnect")}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if not self.client.is_closed():
            self._gateway_tried.set()

    def _give_up(self, error: str) -> None:
        """The gateway refused the bot for good (until the settings change): `start`
        raises that, or, once started, it is logged and /readyz shows it."""
        self._error = error
        if self._started_up:
            log.error("discord: %s", error)
        self._gateway_tried.set()

    async def _wait_for_login(self) -> None:
        """Awaited before each digest call: posting needs the login."""
        while not self._logged_in.is_set():
            if self._error == BAD_TOKEN or self._stopped:
                raise ConfigError(self._error or "the Discord connector is stopped")
            await asyncio.sleep(0.05)

    async def _shutdown(self) -> None:
        channel = self._channel
        pending: set[asyncio.Task[Any]] = set(channel.in_flight) if channel else set()
        if pending:
            await asyncio.wait(pending, timeout=self._grace)
        if self._connector is not None:
            await self._connector.close(self._grace)
        else:
            await self.client.close()
        self._stopping.set()


def _closed_reason(exc: Exception) -> str:
    if isinstance(exc, discord.ConnectionClosed) and exc.code == 4004:
        return BAD_TOKEN  # "Authentication failed": the token changed since the login
    return f"the Discord gateway closed the connection: {exc}"


def start_discord(
    assistant: Assistant,
    store: StateStore,
    settings: Settings,
    load_digest: DigestLoader | None = None,
    listen: bool = True,
    grace_seconds: float | None = None,
) -> DiscordRunning:
    """Start the Discord connector for `paperbot serve` (with `listen=False`, REST only:
    the digest channel, no gateway). Raises ConfigError for a missing or rejected token."""
    token = settings.discord.require()
    use_api_base(settings.discord.api_base_url)
    grace = settings.shutdown_seconds if grace_seconds is None else grace_seconds
    if not listen:
        client = discord.Client(intents=discord.Intents(guilds=True))  # never connects
        return DiscordRunning(client, token, None, grace).start()
    connector = DiscordConnector(assistant, store, settings, load_digest)
    return DiscordRunning(connector.client, token, connector, grace).start()
