"""`paperbot serve`: the connectors, the digest schedule and the operations endpoint."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from assistant.cli.common import app, err, log, out, runtime
from assistant.digest.publisher import DigestChannel
from assistant.digest.schedule import ScheduleRunner, WeeklySchedule
from assistant.errors import IndexDamagedError, IndexUnavailableError, InvalidInputError
from assistant.runtime import Runtime
from connectors.console.digest import ConsoleDigestChannel

if TYPE_CHECKING:
    from assistant.serving import RunningConnector


@app.command("serve")
def serve(
    catch_up_only: Annotated[
        bool, typer.Option("--catch-up-only", help="Run a missed digest slot, then exit.")
    ] = False,
    slack: Annotated[
        bool, typer.Option("--slack", help="Run the Slack connector (Socket Mode by default).")
    ] = False,
    discord: Annotated[
        bool, typer.Option("--discord", help="Run the Discord connector (the gateway).")
    ] = False,
    http: Annotated[
        bool, typer.Option("--http", help="With --slack: receive Slack's requests over HTTP.")
    ] = False,
    host: Annotated[str, typer.Option(help="With --http: the address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="With --http: the port to listen on.")] = 3000,
) -> None:
    """Run the weekly digest schedule, the enabled connectors and the health and metrics
    endpoint (PAPERBOT_HTTP_HOST:PAPERBOT_HTTP_PORT) until SIGTERM or Ctrl-C."""
    # Imported here: the endpoint's aiohttp is not worth loading for the other commands.
    from assistant.serving import start_connectors

    if http and not slack:
        raise InvalidInputError("--http is a Slack option: use `paperbot serve --slack --http`.")
    with runtime() as rt:
        d = rt.settings.digest
        schedule = WeeklySchedule(d.schedule, d.timezone)
        listen = not catch_up_only
        starters: list[Callable[[], RunningConnector]] = []
        if slack:
            starters.append(lambda: start_slack(rt, http, host, port, listen))
        if discord:
            starters.append(lambda: start_discord(rt, listen))
        connectors = start_connectors(starters)
        try:
            run_service(rt, schedule, connectors, catch_up_only)
        finally:
            for connector in connectors:
                connector.stop()  # a connector the service stopped already returns at once


def run_service(
    rt: Runtime,
    schedule: WeeklySchedule,
    connectors: Sequence[RunningConnector],
    catch_up_only: bool,
) -> None:
    """Catch up a missed digest slot; then, unless `catch_up_only`, serve until a signal."""
    from assistant.health import OpsEndpoint, Readiness, state_check
    from assistant.metrics import process_metrics
    from assistant.serving import DigestJobs, Service

    channels: dict[str, DigestChannel] = {
        "console": ConsoleDigestChannel(out, rt.settings.data_dir / "console_posts.jsonl")
    }
    for connector in connectors:
        if connector.digest_channel is not None:
            channels[connector.name] = connector.digest_channel
    for platform, channel in channels.items():  # for `/paper digest post` from chat
        rt.digest_service.register_channel(platform, channel)
    jobs = DigestJobs(lambda slot: rt.digest_service.run_slot(slot, channels))
    notes = (rt.settings.digest.updates_seconds, lambda: rt.digest_service.post_updates(channels))
    runner = ScheduleRunner(rt.store, schedule, jobs, every=notes)
    if catch_up_only:
        caught = asyncio.run(runner.catch_up())
        if caught:
            announce(f"caught up the digest slot of {caught.isoformat()}")
        return
    open_index(rt)
    warm_up(rt)
    metrics = process_metrics()
    checks = [("index", rt.index_ready), ("state", state_check(rt.store))]
    readiness = Readiness(checks + [(c.name, c.ready) for c in connectors], metrics)
    endpoint = OpsEndpoint(readiness, metrics, rt.settings.http_host, rt.settings.http_port)
    service = Service(
        runner, jobs, connectors, readiness, endpoint, rt.settings.shutdown_seconds, announce
    )
    asyncio.run(service.run())


def open_index(rt: Runtime) -> None:
    """Open the index before serving: the embedded one is this process's from now on, or
    serve stops with the reason (another process holds it, another model built it). An
    index that needs a rebuild, or a Qdrant server that does not answer yet, is no reason
    to stop: /readyz reports it until it is fixed (the damaged embedded index is left free
    for `paperbot index rebuild` meanwhile)."""
    try:
        rt.index.opened()
    except IndexDamagedError as exc:
        announce(f"the index needs a rebuild, /readyz says so until then: {exc}")
        return
    except IndexUnavailableError as exc:
        if not rt.settings.qdrant.url:
            raise
        announce(f"the index is not ready yet ({exc}); /readyz says so until it is")
        return
    rt.index.optimize()  # segments written since the last optimisation (usually none)


def warm_up(rt: Runtime) -> None:
    """Load the embedding model in the background, so the first question after a start
    does not wait for it."""

    def load() -> None:
        try:
            rt.embedder.embed(["warm up"])
        except Exception:  # the first real request reports the problem to its user
            log.warning("loading the embedding model at start failed", exc_info=True)

    threading.Thread(target=load, name="warm-up", daemon=True).start()


def announce(text: str) -> None:
    err.print(f"paperbot serve: {text}", soft_wrap=True, markup=False)


def start_discord(rt: Runtime, listen: bool) -> RunningConnector:
    """Build the Discord connector from settings and connect to the gateway (unless
    `listen` is False: `--catch-up-only` only posts digests, over REST)."""
    from connectors.discord.serve import start_discord as start

    cards = rt.digest_builder.load_with_cards  # what a card button looks its card up in
    running = start(rt.assistant, rt.store, rt.settings, cards, listen=listen)
    if listen:
        announce("Discord connector connected to the gateway")
    return running


def start_slack(rt: Runtime, http: bool, host: str, port: int, listen: bool) -> RunningConnector:
    """Build the Slack connector from settings and start receiving (unless `listen` is
    False: `--catch-up-only` only posts digests)."""
    from connectors.slack.app import SlackConnector, build_web_client
    from connectors.slack.digest import SlackDigestChannel
    from connectors.slack.http import SlackHttpServer
    from connectors.slack.serve import RunningSlack, SlackRunner, SocketModeRunner

    bot_token, app_token, secret = rt.settings.slack.require(socket_mode=not http, receive=listen)
    client = build_web_client(rt.settings.slack, bot_token)
    channel = SlackDigestChannel(client, distribution=rt.settings.slack.distribution)
    if not listen:
        return RunningSlack(channel)
    connector = SlackConnector(
        rt.assistant, rt.store, rt.settings, rt.digest_builder.load_with_cards, client=client
    )
    app = connector.build_app()  # checks the token with auth.test
    receiver: SlackRunner = (
        SlackHttpServer(app, host, port, secret, first_time=rt.store.first_time)
        if http
        else SocketModeRunner(app, app_token or "")
    )
    receiver.start()
    announce(f"Slack connector on {receiver.description}")
    return RunningSlack(channel, receiver, connector, rt.settings.shutdown_seconds)
