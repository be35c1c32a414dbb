"""Rendering a digest for the console, Slack and Discord: every limit kept, nothing lost.

The digest here is deliberately hostile: ten papers with 300-character titles, 20 authors,
10,000-character summaries, twelve Q&A pairs with 2,000-character answers and quotes,
Japanese text, `< > & * | _ ~` everywhere, unknown dates and categories.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from assistant.digest.markdown import (
    escape_markdown,
    render_card_markdown,
    render_header_markdown,
    render_markdown,
    source_line,
)
from assistant.digest.model import Digest, DigestCard, QAPair, QASource
from assistant.digest.split import Segment, flow, split_text, text_length
from connectors.discord import render as discord
from connectors.slack import render as slack

WEEK = date(2024, 7, 8)
Message = dict[str, Any]


# -- the hostile digest ----------------------------------------------------------------


def _sentences(tag: str, count: int, japanese: bool) -> list[str]:
    if japanese:
        return [f"これは{tag}の{i}番目の文で、結果は<良好>＆*安定*です。" for i in range(count)]
    return [
        f"Sentence {tag}-{i} says A&B < C > D with *stars*, x_i | pipes and ~tildes."
        for i in range(count)
    ]


def _text(tag: str, length: int, japanese: bool = False, paragraph_every: int = 6) -> str:
    """Distinct sentences, in paragraphs, about `length` characters long."""
    sentences = _sentences(tag, length // 20, japanese)
    out: list[str] = []
    size = 0
    for i, sentence in enumerate(sentences):
        if size >= length:
            break
        sep = "\n\n" if i and i % paragraph_every == 0 else ("" if japanese else " ")
        out.append((sep if i else "") + sentence)
        size += len(sep) + len(sentence)
    return "".join(out)


def _title(paper: int) -> str:
    base = f"Paper {paper}: Scaling <Sparse> & *Mixture*-of_Experts | ~Attention~ 大規模言語モデル "
    return (base * 10)[:300].strip()


def _qa(paper: int, number: int, japanese: bool) -> QAPair:
    question = f"Question {paper}-{number}: how does <method> & *variant* | x_{number} compare?"
    if number % 4 == 0:  # unsupported: the answer must never be shown
        return QAPair(question, f"FABRICATED-{paper}-{number} " * 50, supported=False)
    source = QASource(
        section=f"{number}.2 Method & <Setup>" if number % 3 else None,
        page=number if number % 5 else None,
        quote=_text(f"quote{paper}-{number}", 2000, japanese),
    )
    return QAPair(question, _text(f"answer{paper}-{number}", 2000, japanese), True, source)


def _card(rank: int, japanese: bool) -> DigestCard:
    known = rank % 2 == 1
    return DigestCard(
        rank=rank,
        paper_id=f"2407.{8600 + rank:05d}",
        title=_title(rank),
        url=f"https://arxiv.org/abs/2407.{8600 + rank:05d}" if rank != 7 else None,
        pdf_url=f"https://arxiv.org/pdf/2407.{8600 + rank:05d}" if rank % 3 else None,
        authors=tuple(f"Author_{i} O'Neil <{rank}> & Co*" for i in range(20)),
        published=date(2024, 7, rank) if known else None,
        updated=date(2024, 7, rank + 1) if rank % 4 == 1 else None,
        categories=("cs.LG", "cs.CL") if known else (),
        takeaway=f"Takeaway {rank}: *sparse* <experts> & routing | wins.",
        summary=_text(f"summary{rank}", 10_000, japanese),
        qa=tuple(_qa(rank, n, japanese) for n in range(1, 13)),
    )


def _digest(language: str = "en") -> Digest:
    japanese = language == "ja"
    return Digest(WEEK, language, "potw", tuple(_card(r, japanese) for r in range(1, 11)))


DIGESTS = {"en": _digest("en"), "ja": _digest("ja")}


def _summary_sentences(card: DigestCard) -> list[str]:
    return [s for s in re.split(r"(?<=[.。])\s*", card.summary) if s.strip()]


# -- collecting what a user can read ---------------------------------------------------


def _slack_text(messages: list[Message]) -> str:
    """All readable text of the messages, in order (context notes and markers left out)."""
    parts: list[str] = []
    for message in messages:
        for block in message["blocks"]:
            if block["type"] in ("header", "section") and "text" in block:
                parts.append(block["text"]["text"])
            parts += [f["text"] for f in block.get("fields", [])]
    return "\n".join(parts)


def _discord_text(messages: list[Message]) -> str:
    parts: list[str] = []
    for message in messages:
        for embed in message["embeds"]:
            parts += [embed.get("title", ""), embed.get("description", "")]
            parts += [f["name"] + f["value"] for f in embed.get("fields", [])]
    return "\n".join(parts)


def _squash(text: str) -> str:
    """Text without block-quote prefixes, zero-width spaces and whitespace, for comparing
    content that may have been split anywhere a space was."""
    text = re.sub(r"(?m)^> ?", "", text).replace("\u200b", "")
    return re.sub(r"\s+", "", text)


def _assert_all_present(haystack: str, needles: list[str], escape: Callable[[str], str]) -> None:
    squashed = _squash(haystack)
    missing = [n for n in needles if _squash(escape(n)) not in squashed]
    assert not missing, f"{len(missing)} pieces lost, e.g. {missing[0]!r}"


# -- every message is valid against every limit ----------------------------------------


@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_slack_message_keeps_every_limit(language: str) -> None:
    digest = DIGESTS[language]
    messages = slack.header_messages(digest)
    for card in digest.cards:
        messages += slack.card_messages(digest, card) + slack.qa_messages(digest, card)
    problems = [p for m in messages for p in slack.validate_slack_message(m)]
    assert not problems, problems[:5]
    assert len(messages) > 3 * len(digest.cards)  # the long cards really were split


@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_discord_message_keeps_every_limit(language: str) -> None:
    digest = DIGESTS[language]
    messages = discord.header_messages(digest)
    for card in digest.cards:
        messages += discord.card_messages(digest, card) + discord.qa_messages(digest, card)
    problems = [p for m in messages for p in discord.validate_discord_message(m)]
    assert not problems, problems[:5]
    for message in messages:  # plain Discord JSON: no hints for ourselves in the payload
        assert set(message) == {"content", "embeds", "allowed_mentions"}
        assert message["allowed_mentions"] == {"parse": []}
        assert "paper_id" not in json.dumps(message)


TIGHT_SLACK = slack.SlackLimits(
    blocks=8, section_text=400, field_text=120, header_text=40, blocks_text=1500
)
TIGHT_DISCORD = discord.DiscordLimits(
    content=200,
    embeds=3,
    embed_title=60,
    embed_description=500,
    field_value=120,
    embeds_total=1800,
)


def test_tighter_limits_are_data_and_still_kept_without_loss() -> None:
    digest = DIGESTS["en"]
    card = digest.cards[1]
    s_messages = slack.card_messages(digest, card, TIGHT_SLACK)
    d_messages = discord.card_messages(digest, card, TIGHT_DISCORD)
    assert not [p for m in s_messages for p in slack.validate_slack_message(m, TIGHT_SLACK)]
    assert not [p for m in d_messages for p in discord.validate_discord_message(m, TIGHT_DISCORD)]
    # with the default limits the same card would break the tight ones
    assert any(
        slack.validate_slack_message(m, TIGHT_SLACK) for m in slack.card_messages(digest, card)
    )
    pieces = [*_summary_sentences(card), *(q.question for q in card.qa), *card.authors]
    _assert_all_present(_slack_text(s_messages), pieces, slack.escape_mrkdwn)
    _assert_all_present(_discord_text(d_messages), pieces, discord.escape_markdown)
    header = slack.header_messages(digest, TIGHT_SLACK)
    assert not [p for m in header for p in slack.validate_slack_message(m, TIGHT_SLACK)]


# -- nothing is lost -------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ja"])
def test_slack_card_and_thread_carry_every_summary_sentence_and_question(language: str) -> None:
    digest = DIGESTS[language]
    for card in digest.cards:
        text = _slack_text(slack.card_messages(digest, card))
        supported = [q for q in card.qa if q.supported]
        pieces = [*_summary_sentences(card), *(q.question for q in card.qa)]
        pieces += [s for q in supported for s in re.split(r"(?<=[.。])\s*", q.answer) if s]
        _assert_all_present(text, pieces, slack.escape_mrkdwn)
        all_qa = _slack_text(slack.qa_messages(digest, card))
        _assert_all_present(all_qa, [q.question for q in card.qa], slack.escape_mrkdwn)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_discord_card_and_thread_carry_every_summary_sentence_and_question(language: str) -> None:
    digest = DIGESTS[language]
    for card in digest.cards:
        text = _discord_text(discord.card_messages(digest, card))
        supported = [q for q in card.qa if q.supported]
        pieces = [*_summary_sentences(card), *(q.question for q in card.qa), card.title]
        pieces += [s for q in supported for s in re.split(r"(?<=[.。])\s*", q.answer) if s]
        _assert_all_present(text, pieces, discord.escape_markdown)
        all_qa = _discord_text(discord.qa_messages(digest, card))
        _assert_all_present(all_qa, [q.question for q in card.qa], discord.escape_markdown)


def test_qa_stays_in_order_and_the_card_says_how_many_are_in_the_thread() -> None:
    digest = DIGESTS["en"]
    card = digest.cards[0]
    messages = slack.card_messages(digest, card)
    text = _slack_text(messages)
    positions = [text.find(slack.escape_mrkdwn(q.question)) for q in card.qa]
    assert -1 not in positions and positions == sorted(positions)
    shown = sum(slack.escape_mrkdwn(q.question) in _slack_text(messages[:1]) for q in card.qa)
    notes = [b for b in messages[0]["blocks"] if b["type"] == "context"]
    assert notes[0]["elements"][0]["text"] == f"{12 - shown} more Q&A in the thread"


def test_header_lists_every_paper_in_order() -> None:
    digest = DIGESTS["en"]
    s_text = _slack_text(slack.header_messages(digest))
    d_text = _discord_text(discord.header_messages(digest))
    assert "Top ML papers of the week, Jul 8 – Jul 14, 2024" in s_text
    for card in digest.cards:
        assert _squash(slack.escape_mrkdwn(card.takeaway)) in _squash(s_text)
        assert _squash(discord.escape_markdown(card.takeaway)) in _squash(d_text)
    ranks = [int(n) for n in re.findall(r"(?m)^(\d+)\\?\. ", d_text)]
    assert ranks == list(range(1, 11))


def test_a_short_card_shows_three_qa_and_threads_the_rest() -> None:
    qa = tuple(QAPair(f"Q number {i}?", f"A{i}.", True) for i in range(5))
    card = DigestCard(
        rank=1,
        paper_id="2407.08608",
        title="FlashAttention-3",
        url="https://arxiv.org/abs/2407.08608",
        pdf_url="https://arxiv.org/pdf/2407.08608",
        authors=("Tri Dao",),
        published=date(2024, 7, 11),
        updated=None,
        categories=("cs.LG",),
        takeaway="Faster attention.",
        summary="Short summary.",
        qa=qa,
    )
    digest = Digest(WEEK, "en", "potw", (card,))
    message, thread = slack.card_messages(digest, card)
    assert message["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "1. FlashAttention-3", "emoji": True},
    }
    actions = message["blocks"][-1]
    assert [(b["action_id"], b.get("value"), b.get("url")) for b in actions["elements"]] == [
        ("paper_ask", "2407.08608", None),
        ("paper_all_qa", "2024-07-08:2407.08608", None),
        ("paper_pdf", None, "https://arxiv.org/pdf/2407.08608"),
    ]
    assert message["blocks"][-2]["elements"][0]["text"] == "2 more Q&A in the thread"
    assert "Q number 2?" in _slack_text([message]) and "Q number 3?" not in _slack_text([message])
    assert thread["blocks"][0]["type"] == "context"  # "1. FlashAttention-3 (continued)"
    assert "Q4. Q number 3?" in _slack_text([thread]) and "Q5. Q number 4?" in _slack_text([thread])
    d_message, d_thread = discord.card_messages(digest, card)
    embed = d_message["embeds"][0]
    assert embed["title"] == "1\\. FlashAttention-3" and embed["url"] == card.url
    assert [f["name"] for f in embed["fields"]] == [
        "Authors",
        "First published",
        "Last updated",
        "Categories",
        "Link",
        "PDF",
    ]
    assert [e["title"] for e in d_message["embeds"][1:]] == [
        "Q1. Q number 0?",
        "Q2. Q number 1?",
        "Q3. Q number 2?",
    ]
    assert d_message["content"] == "*2 more Q&A in the thread*"
    assert [e["title"] for e in d_thread["embeds"]] == ["Q4. Q number 3?", "Q5. Q number 4?"]


def test_no_pdf_button_without_a_pdf() -> None:
    digest = DIGESTS["en"]
    card = digest.cards[2]  # rank 3: no pdf_url
    actions = slack.card_messages(digest, card)[0]["blocks"][-1]
    assert [b["action_id"] for b in actions["elements"]] == ["paper_ask", "paper_all_qa"]


# -- honesty: unknown and unsupported ---------------------------------------------------


def test_markdown_says_unknown_for_unknown_fields() -> None:
    digest = DIGESTS["en"]
    text = render_card_markdown(digest, digest.cards[1])  # rank 2: no dates, no categories
    assert "- **First published:** unknown" in text
    assert "- **Last updated:** unknown" in text
    assert "- **Categories:** unknown" in text
    no_link = render_card_markdown(digest, digest.cards[6])  # rank 7: no URL
    assert "- **Link:** unknown" in no_link
    known = render_card_markdown(digest, digest.cards[0])
    assert "- **First published:** 2024-07-01" in known and "cs.LG, cs.CL" in known


def test_chat_cards_say_unknown_too() -> None:
    digest = DIGESTS["en"]
    card = digest.cards[1]
    fields = slack.card_messages(digest, card)[0]["blocks"][1]["fields"]
    assert "*First published*\nunknown" in [f["text"] for f in fields]
    embed = discord.card_messages(digest, card)[0]["embeds"][0]
    assert {"name": "Categories", "value": "unknown", "inline": True} in embed["fields"]


def test_unsupported_answers_are_marked_and_never_shown() -> None:
    digest = DIGESTS["en"]
    outputs = [render_markdown(digest)]
    for card in digest.cards:
        outputs += [json.dumps(m) for m in slack.card_messages(digest, card)]
        outputs += [json.dumps(m) for m in slack.qa_messages(digest, card)]
        outputs += [json.dumps(m) for m in discord.card_messages(digest, card)]
        outputs += [json.dumps(m) for m in discord.qa_messages(digest, card)]
    assert not [o for o in outputs if "FABRICATED" in o]
    markdown = render_card_markdown(digest, digest.cards[0])
    unsupported = [q for q in digest.cards[0].qa if not q.supported]
    assert markdown.count("*Not found in the paper's indexed text.*") == len(unsupported) == 3
    thread = _slack_text(slack.qa_messages(digest, digest.cards[0]))
    assert thread.count("_Not found in the paper's indexed text._") == 3


def test_markdown_shows_sources_as_quotes() -> None:
    digest = DIGESTS["en"]
    text = render_card_markdown(digest, digest.cards[0])
    assert "*Source: 1.2 Method & \\<Setup>, p. 1*" in text  # Q1
    assert "*Source: p. 3*" in text  # Q3 names no section
    assert "> Sentence quote1-1-0 says A&B \\< C > D" in text
    assert "### Q&A" in text and "**Q1. Question 1-1:" in text


def test_a_source_without_a_place_says_it_is_quoted() -> None:
    assert source_line("en", QASource(None, None, "q")) == "Source: (quoted from the paper)"
    assert source_line("ja", QASource("2 手法", 4, "q")) == "出典: 2 手法, p. 4"


def test_japanese_digest_uses_japanese_labels() -> None:
    digest = DIGESTS["ja"]
    card = digest.cards[1]
    markdown = render_markdown(digest)
    assert markdown.startswith("# 今週の注目ML論文（2024年7月8日〜7月14日）")
    card_md = render_card_markdown(digest, card)
    assert "- **初版公開日:** 不明" in card_md and "- **カテゴリ:** 不明" in card_md
    assert "論文の本文中に該当する記述は見つかりませんでした。" in card_md
    first = slack.card_messages(digest, card)[0]
    assert "*著者*" in first["blocks"][1]["fields"][0]["text"]
    buttons = [b["text"]["text"] for b in first["blocks"][-1]["elements"]]
    assert buttons == ["この論文について質問する", "すべてのQ&A", "PDF"]
    assert first["blocks"][-2]["elements"][0]["text"].startswith("残り")
    embed = discord.card_messages(digest, card)[0]["embeds"][0]
    assert [f["name"] for f in embed["fields"]][:3] == ["著者", "初版公開日", "最終更新日"]
    assert discord.header_messages(digest)[0]["content"].startswith("**今週の注目ML論文")


def test_header_and_console_pieces_match_the_whole() -> None:
    digest = DIGESTS["en"]
    whole = render_markdown(digest)
    assert whole.startswith(render_header_markdown(digest))
    assert render_card_markdown(digest, digest.cards[4]) in whole
    empty = Digest(WEEK, "en", "potw", ())
    assert "No papers were found for the week of 2024-07-08." in render_markdown(empty)
    assert not slack.validate_slack_message(slack.header_messages(empty)[0])
    assert not discord.validate_discord_message(discord.header_messages(empty)[0])


# -- escaping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
        ("<!channel> <@U123>", "&lt;!channel&gt; &lt;@U123&gt;"),
        ("*bold* and _italic_ and ~strike~", "∗bold∗ and ˍitalicˍ and ∼strike∼"),
        ("`code`", "ˋcodeˋ"),
        ("snake_case x_i 2*3 a~b", "snake_case x_i 2*3 a~b"),  # inside words: harmless
        ("A* search ~5% __init__", "A∗ search ∼5% ˍˍinitˍˍ"),
        ("> not a quote\nline", "\u200b&gt; not a quote\nline"),
        ("日本語の*強調*です", "日本語の∗強調∗です"),
        ("&amp; stays text", "&amp;amp; stays text"),
    ],
)
def test_escape_mrkdwn(raw: str, escaped: str) -> None:
    assert slack.escape_mrkdwn(raw) == escaped


def test_slack_links_escape_their_text_and_url() -> None:
    link = slack.slack_link("https://x.org/a?b=1&c=2|3", "A|B > C & *D*")
    assert link == "<https://x.org/a?b=1&amp;c=2%7C3|A∣B &gt; C &amp; ∗D∗>"
    assert slack.slack_link("https://x.org/p") == "<https://x.org/p>"


def test_no_raw_markup_characters_leak_from_paper_text_into_slack() -> None:
    digest = DIGESTS["en"]
    for card in digest.cards[:3]:
        for message in slack.card_messages(digest, card):
            for block in message["blocks"]:
                texts = (
                    [block["text"]["text"]]
                    if block["type"] == "section" and "text" in block
                    else []
                )
                texts += [f["text"] for f in block.get("fields", [])]
                for text in texts:
                    assert not re.search(r"&(?!amp;|lt;|gt;)", text)
                    assert all(m.startswith("<https://") for m in re.findall(r"<[^>]*>", text))
                    assert not any("|" in t for t in re.findall(r"<https://[^|>]*\|([^>]*)>", text))


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("*a* _b_ ~~c~~ `d` ||e||", "\\*a\\* \\_b\\_ \\~\\~c\\~\\~ \\`d\\` \\|\\|e\\|\\|"),
        ("<@123> [x](y)", "\\<@123> \\[x\\](y)"),
        ("> quote\n# head\n- item\n1. one", "\\> quote\n\\# head\n\\- item\n1\\. one"),
        ("a > b - c # d 1. e", "a > b - c # d 1. e"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_escape_discord_markdown(raw: str, escaped: str) -> None:
    assert discord.escape_markdown(raw) == escaped


def test_console_markdown_escapes_paper_text() -> None:
    assert (
        escape_markdown("*a* _b_ <c> [d] `e` | ~f~")
        == "\\*a\\* \\_b\\_ \\<c> \\[d\\] \\`e\\` \\| \\~f\\~"
    )
    assert escape_markdown("# not a heading\n- not a list\n2. not a list") == (
        "\\# not a heading\n\\- not a list\n2\\. not a list"
    )
    assert escape_markdown("R&D &amp;") == "R&D \\&amp;"


# -- the validators catch each limit -----------------------------------------------------


def _slack_ok() -> Message:
    return {
        "text": "fallback",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Title"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "body"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*A*\nb"}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "note"}]},
            {"type": "divider"},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Ask"},
                        "action_id": "paper_ask",
                        "value": "2407.08608",
                    },
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "PDF"},
                        "action_id": "paper_pdf",
                        "url": "https://arxiv.org/pdf/2407.08608",
                    },
                ],
            },
        ],
    }


def _set(path: str, value: Any) -> Callable[[Message], None]:
    def mutate(msg: Message) -> None:
        *parents, last = path.split(".")
        node: Any = msg
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value

    return mutate


def _button(**over: Any) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": "x"}, "action_id": "a", **over}


SLACK_VIOLATIONS: list[tuple[str, Callable[[Message], None], str]] = [
    ("fallback text", _set("text", "x" * 3001), "text: 3001 characters, over 3000"),
    ("empty fallback", _set("text", " "), "non-empty fallback"),
    ("blocks", _set("blocks", [{"type": "divider"}] * 51), "51 blocks, over 50"),
    ("header text", _set("blocks.0.text.text", "h" * 151), "(header).text: 151"),
    (
        "header mrkdwn",
        _set("blocks.0.text.type", "mrkdwn"),
        "must be a text object of type plain_text",
    ),
    ("section text", _set("blocks.1.text.text", "s" * 3001), "(section).text: 3001"),
    ("empty section", _set("blocks.1.text.text", ""), "must not be empty"),
    (
        "fields count",
        _set("blocks.2.fields", [{"type": "mrkdwn", "text": "f"}] * 11),
        "11 fields, over 10",
    ),
    ("field text", _set("blocks.2.fields.0.text", "f" * 2001), "fields[0]: 2001"),
    (
        "context count",
        _set("blocks.3.elements", [{"type": "mrkdwn", "text": "c"}] * 11),
        "11, over 10",
    ),
    ("context text", _set("blocks.3.elements.0.text", "c" * 2001), "elements[0]: 2001"),
    (
        "actions count",
        _set("blocks.5.elements", [_button(action_id=f"a{i}") for i in range(26)]),
        "26, over 25",
    ),
    ("button text", _set("blocks.5.elements.0.text.text", "b" * 76), "elements[0].text: 76"),
    ("action_id", _set("blocks.5.elements.0.action_id", "a" * 256), "action_id: 256"),
    (
        "duplicate action_id",
        _set("blocks.5.elements.1.action_id", "paper_ask"),
        "used more than once",
    ),
    ("button value", _set("blocks.5.elements.0.value", "v" * 2001), "value: 2001"),
    ("button url", _set("blocks.5.elements.1.url", "https://x/" + "u" * 2991), "url: 3001"),
    ("block_id", _set("blocks.1.block_id", "b" * 256), "block_id: 256"),
    ("unknown block", _set("blocks.4.type", "carousel"), "unsupported block type"),
    (
        "all blocks' text",
        _set("blocks", [{"type": "section", "text": {"type": "mrkdwn", "text": "t" * 2600}}] * 4),
        "10400 characters in all",
    ),
]


@pytest.mark.parametrize(
    ("name", "mutate", "expected"), SLACK_VIOLATIONS, ids=[v[0] for v in SLACK_VIOLATIONS]
)
def test_slack_validator_catches_each_limit(
    name: str, mutate: Callable[[Message], None], expected: str
) -> None:
    message = _slack_ok()
    assert slack.validate_slack_message(message) == []
    mutate(message)
    problems = slack.validate_slack_message(message)
    assert any(expected in p for p in problems), problems


def test_slack_validator_reads_limits_from_data() -> None:
    tight = slack.SlackLimits(section_text=3, button_text=2)
    problems = slack.validate_slack_message(_slack_ok(), tight)
    assert any("(section).text: 4 characters, over 3" in p for p in problems)
    assert any("elements[0].text: 3 characters, over 2" in p for p in problems)


def _discord_ok() -> Message:
    return {
        "content": "hello",
        "embeds": [
            {
                "title": "Title",
                "url": "https://arxiv.org/abs/2407.08608",
                "description": "body",
                "fields": [{"name": "Authors", "value": "Tri Dao", "inline": False}],
                "footer": {"text": "2407.08608"},
                "author": {"name": "paperbot"},
            }
        ],
        "allowed_mentions": {"parse": []},
    }


def _embed(size: int) -> dict[str, Any]:
    return {"description": "d" * size}


DISCORD_VIOLATIONS: list[tuple[str, Callable[[Message], None], str]] = [
    ("content", _set("content", "c" * 2001), "content: 2001 characters, over 2000"),
    ("embeds", _set("embeds", [_embed(1)] * 11), "11 embeds, over 10"),
    ("title", _set("embeds.0.title", "t" * 257), "title: 257"),
    ("description", _set("embeds.0.description", "d" * 4097), "description: 4097"),
    ("fields", _set("embeds.0.fields", [{"name": "n", "value": "v"}] * 26), "26 fields, over 25"),
    ("field name", _set("embeds.0.fields.0.name", "n" * 257), "name: 257"),
    ("field value", _set("embeds.0.fields.0.value", "v" * 1025), "value: 1025"),
    ("empty field value", _set("embeds.0.fields.0.value", ""), "value: must not be empty"),
    ("footer", _set("embeds.0.footer.text", "f" * 2049), "footer.text: 2049"),
    ("author", _set("embeds.0.author.name", "a" * 257), "author.name: 257"),
    ("total", _set("embeds", [_embed(3000), _embed(3001)]), "6001 characters in all, over 6000"),
    ("url", _set("embeds.0.url", "arxiv.org/abs/1"), "must be an http(s) URL"),
    ("private hint", _set("paper_id", "2407.08608"), "paper_id: not a Discord message field"),
    ("empty embed", _set("embeds", [{"color": 1}]), "needs a title, description or fields"),
    ("empty message", lambda m: m.update(content="", embeds=[]), "needs content or embeds"),
    ("not json", _set("embeds.0.description", b"bytes"), "must be a string"),
]


@pytest.mark.parametrize(
    ("name", "mutate", "expected"), DISCORD_VIOLATIONS, ids=[v[0] for v in DISCORD_VIOLATIONS]
)
def test_discord_validator_catches_each_limit(
    name: str, mutate: Callable[[Message], None], expected: str
) -> None:
    message = _discord_ok()
    assert discord.validate_discord_message(message) == []
    mutate(message)
    problems = discord.validate_discord_message(message)
    assert any(expected in p for p in problems), problems


def test_limits_count_utf16_units_like_the_platforms_may() -> None:
    assert text_length("日本語") == 3 and text_length("🚀") == 2
    msg = _discord_ok()
    msg["content"] = "🚀" * 1001  # 1,001 code points, 2,002 UTF-16 units
    assert any("content: 2002" in p for p in discord.validate_discord_message(msg))


# -- split_text --------------------------------------------------------------------------

SPLIT_TEXTS = {
    "english": _text("s", 3000),
    "japanese": _text("j", 3000, japanese=True),
    "one long word": "x" * 1000,
    "emoji": "🚀 launch " * 120 + "🧪" * 80,
    "combining": "e\u0301" * 300,
    "spaces and lines": "  a  b\n\n\n c \n d   e  " * 60,
    "mixed": "Intro.\n\n"
    + "長い日本語の文章が続きます、そして終わります。" * 40
    + " tail words here",
}


def _reconstructs(text: str, chunks: list[str]) -> None:
    """The chunks are the text in order, with only whitespace between them dropped."""
    position = 0
    for chunk in chunks:
        gap_end = position
        while gap_end < len(text) and text[gap_end].isspace():
            gap_end += 1
        assert text.startswith(chunk, gap_end), (chunk[:20], text[gap_end : gap_end + 20])
        position = gap_end + len(chunk)
    assert not text[position:].strip()


@pytest.mark.parametrize("limit", [7, 40, 333, 4096])
@pytest.mark.parametrize("name", list(SPLIT_TEXTS))
def test_split_text_keeps_limits_and_loses_only_whitespace(name: str, limit: int) -> None:
    text = SPLIT_TEXTS[name]
    chunks = split_text(text, limit)
    assert chunks and all(0 < text_length(c) <= limit for c in chunks)
    assert all(c == c.strip() for c in chunks)
    _reconstructs(text, chunks)
    if limit >= text_length(text.strip()):
        assert chunks == [text.strip()]
    assert not any(c[0] == "\u0301" for c in chunks)  # a mark stays with its letter


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("One. Two. Three.", 10, ["One. Two.", "Three."]),
        ("alpha beta\n\ngamma delta epsilon", 24, ["alpha beta", "gamma delta epsilon"]),
        ("line one\nline two is here", 20, ["line one", "line two is here"]),
        (
            "これは文です。これも文です。最後の文。",
            8,
            ["これは文です。", "これも文です。", "最後の文。"],
        ),
        ('He said "stop." Then left.', 16, ['He said "stop."', "Then left."]),
        ("version 3.5 is out now", 13, ["version 3.5", "is out now"]),
        ("", 10, []),
        ("   \n  ", 10, []),
    ],
)
def test_split_text_prefers_natural_boundaries(text: str, limit: int, expected: list[str]) -> None:
    assert split_text(text, limit) == expected


def test_split_text_keeps_words_whole_when_they_fit() -> None:
    text = SPLIT_TEXTS["english"]
    for limit in (25, 100, 1000):
        assert " ".join(split_text(text, limit)).split() == text.split()


def test_split_text_measures_the_rendered_form() -> None:
    text = "A&B <tag> " * 200
    chunks = split_text(text, 50, measure=lambda s: len(slack.escape_mrkdwn(s)))
    assert all(len(slack.escape_mrkdwn(c)) <= 50 for c in chunks)
    _reconstructs(text, chunks)


def test_split_text_rejects_impossible_limits() -> None:
    with pytest.raises(ValueError):
        split_text("abc", 0)
    with pytest.raises(ValueError):
        split_text("🚀", 1)  # two UTF-16 units cannot fit in one


def test_flow_fills_boxes_and_moves_short_segments_whole() -> None:
    segments = [
        Segment("x" * 50, lambda s: f"*{s}*" if s else ""),
        Segment("Short label", lambda s: f"_{s}_", keep=True),
        Segment("Hello there. General Kenobi. You are a bold one.", lambda s: s),
    ]
    boxes = flow(segments, lambda _: 30)
    assert boxes == [
        "*" + "x" * 28 + "*",
        "*" + "x" * 22 + "*",
        "_Short label_\nHello there.",
        "General Kenobi.",
        "You are a bold one.",
    ]
