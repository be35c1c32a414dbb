"""The shared chat flows on a recording platform: what every connector gets for free.

`RecordingPlatform` is the smallest `ChatPlatform` there is (it keeps what the flows ask of
it) and `TextRenderer` the smallest `Renderer`: together, a whole new platform in about 60
lines, run against the real core over the sample week.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from assistant.commands import Visibility, parse_command
from assistant.digest.model import Digest, DigestCard
from assistant.embedding import SentenceTransformerEmbedder
from assistant.feedback import FeedbackStore
from assistant.messages import Reply
from assistant.rich import RichText
from assistant.settings import Settings
from connectors.flow.flows import ChatFlows
from connectors.flow.platform import (
    Asked,
    AskForm,
    CommandEvent,
    Event,
    MessageEvent,
    Place,
    Posted,
    Refused,
    VoteClick,
)
from connectors.flow.texts import APOLOGY, THANKS
from connectors.flow.work import WorkQueue
from tests.errorlog import ErrorLog, watch_errors
from tests.test_answering import Stack


@dataclass
class RecordingPlatform:
    """A platform that records every call; `refuse_posts_in` plays a channel the bot is
    not in."""

    name: str = "test"
    calls: list[tuple[str, Any]] = field(default_factory=list)
    admins: set[str] = field(default_factory=set)
    refuse_posts_in: set[str] = field(default_factory=set)
    _ids: int = 0

    async def acknowledge(self, event: Event, visibility: Visibility | None) -> None:
        self.calls.append(("acknowledge", visibility))

    async def post(self, place: Place, message: Any, event: Event | None = None) -> Posted:
        if place.channel in self.refuse_posts_in:
            raise Refused(RichText.literal("invite me"))
        self._ids += 1
        self.calls.append(("post", (place, message)))
        return Posted(place, f"m{self._ids}")

    async def update(self, posted: Posted, message: Any) -> None:
        self.calls.append(("update", (posted.id, message)))

    async def delete(self, posted: Posted) -> None:
        self.calls.append(("delete", posted.id))

    async def post_privately(self, event: Event, messages: Sequence[Any]) -> None:
        self.calls.append(("private", list(messages)))

    async def open_thread(self, posted: Posted, title: str) -> str:
        return posted.place.thread or posted.id

    async def open_form(self, event: Event, form: AskForm) -> None:
        self.calls.append(("form", form))

    async def is_admin(self, event: Event) -> bool:
        return event.user in self.admins

    @asynccontextmanager
    async def working(self, event: MessageEvent) -> AsyncIterator[None]:
        self.calls.append(("working", event.message_id))
        yield

    def said(self, kind: str) -> list[Any]:
        return [value for name, value in self.calls if name == kind]


class TextRenderer:
    """Replies as plain strings."""

    def reply(
        self,
        reply: Reply,
        *,
        asked: Asked | None = None,
        shared_by: str | None = None,
        feedback: bool = False,
    ) -> list[str]:
        return [reply.text[i : i + 300] for i in range(0, len(reply.text), 300)]  # a limit

    def notice(self, text: RichText) -> list[str]:
        return [text.plain]

    def placeholder(self, asked: Asked) -> str:
        return f"looking into {asked[1]}"

    def streaming(self, text: str, asked: Asked | None) -> str:
        return text

    def qa(self, digest: Digest, card: DigestCard) -> list[str]:
        return [pair.question for pair in card.qa]


@pytest.fixture(autouse=True)
def error_log() -> Iterator[ErrorLog]:
    yield from watch_errors()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> Iterator[Stack]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("flows") / "data")
    s = Stack(settings, real_embedder)
    s.ingest_sample()
    yield s
    s.close()


@pytest.fixture
def platform() -> RecordingPlatform:
    return RecordingPlatform()


@pytest.fixture
def flows(stack: Stack, platform: RecordingPlatform) -> Iterator[ChatFlows]:
    queue = WorkQueue(workers=2)
    yield ChatFlows(platform, TextRenderer(), stack.assistant(), stack.store, queue, allowed={"C1"})
    queue.shutdown()


def command(text: str, user: str = "U1", channel: str = "C1") -> CommandEvent:
    return CommandEvent(
        platform="test", user=user, place=Place(channel), command=parse_command(text)
    )


async def test_the_reply_goes_where_the_core_says_acknowledged_as_it_will_be_answered(
    flows: ChatFlows, platform: RecordingPlatform
) -> None:
    found = await flows.handle(command("search flash attention kernels"))
    assert found is not None and found.private and found.share == "search flash attention kernels"
    assert platform.said("acknowledge") == ["private"] and not platform.said("post")
    (private,) = platform.said("private")
    assert "FlashAttention-3" in private[0]
    listed = await flows.handle(command("digest"))
    assert listed is not None and not listed.private and len(listed.text) > 300
    assert platform.said("acknowledge")[-1] == "public"
    first, *rest = platform.said("post")
    assert first[0] == Place("C1") and rest  # a long reply: the rest in the first's thread
    assert all(place == Place("C1", "m1") for place, _ in rest)


async def test_ask_streams_into_its_placeholder_and_opens_a_thread(
    flows: ChatFlows, platform: RecordingPlatform, stack: Stack
) -> None:
    reply = await flows.handle(command("ask What does FlashAttention-3 change on Hopper GPUs?"))
    assert reply is not None and reply.opens_thread and not reply.private
    (placeholder,) = platform.said("post")
    assert placeholder[1].startswith("looking into What does")
    (update,) = platform.said("update")
    assert update[0] == "m1" and "FlashAttention-3" in update[1]
    conversation = stack.conversations.get("test", "C1", "m1")  # the thread is the answer's
    assert conversation is not None and len(conversation.turns) == 2
    follow = MessageEvent(
        platform="test", user="U2", place=Place("C1", "m1"), text="and how fast is it?",
        message_id="m9", delivery_id="d1",
    )  # fmt: skip
    assert await flows.handle(follow) is not None
    assert await flows.handle(follow) is None  # delivered again: answered once
    assert platform.said("working") == ["m9"]
    stranger = MessageEvent(
        platform="test", user="U2", place=Place("C1", "elsewhere"), text="what is it?",
        message_id="m10",
    )  # fmt: skip
    assert await flows.handle(stranger) is None  # not our thread


async def test_allowlist_admins_and_refusals(
    flows: ChatFlows, platform: RecordingPlatform, stack: Stack
) -> None:
    await flows.handle(command("search LoRA", channel="COTHER"))
    assert "TEST_ALLOWED_CHANNELS" in platform.said("private")[-1][0]
    assert platform.said("acknowledge") == []  # refused before any work
    refused = await flows.handle(command("subscribe"))
    assert refused is not None and refused.kind == "error" and refused.private
    platform.admins.add("UADMIN")
    done = await flows.handle(command("subscribe", user="UADMIN"))
    assert done is not None and done.text == "This channel will get the weekly digest."
    assert stack.conversations.subscriptions("test") == [("test", "C1")]
    stack.conversations.unsubscribe("test", "C1")
    flows._allowed = frozenset()  # every channel
    platform.refuse_posts_in.add("CNOTIN")
    await flows.handle(command("ask What is FlashAttention-3?", channel="CNOTIN"))
    assert platform.said("private")[-1] == ["invite me"]  # the platform's own hint


async def test_a_failure_is_logged_once_apologized_for_and_leaves_no_placeholder(
    flows: ChatFlows,
    platform: RecordingPlatform,
    monkeypatch: pytest.MonkeyPatch,
    error_log: ErrorLog,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Reply:
        raise RuntimeError("index exploded")

    monkeypatch.setattr(flows._assistant, "run", broken)
    assert await flows.handle(command("ask What is FlashAttention-3?")) is None
    assert platform.said("delete") == ["m1"]  # the "looking into" message went
    assert platform.said("private") == [[APOLOGY.plain]]
    error_log.expected = 1
    assert error_log.records[0].exc_info is not None


async def test_votes_are_acknowledged_silently_stored_and_thanked(
    flows: ChatFlows, platform: RecordingPlatform, stack: Stack
) -> None:
    for verdict in ("helpful", "unhelpful"):
        vote = VoteClick(
            platform="test", user="U3", place=Place("C1"), verdict=verdict, message_id="m7"
        )
        await flows.handle(vote)
    assert platform.said("acknowledge") == [None, None]
    assert platform.said("private") == [[THANKS.plain]] * 2
    assert FeedbackStore(stack.store).votes("test", "C1", "m7") == {"U3": "unhelpful"}
