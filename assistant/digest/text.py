"""Fixed words of the digest in each supported language (labels, header, fallbacks)."""

from __future__ import annotations

from datetime import date, timedelta

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "authors": "Authors",
        "published": "First published",
        "updated": "Last updated",
        "link": "Link",
        "pdf": "PDF",
        "categories": "Categories",
        "summary": "Summary",
        "qa": "Q&A",
        "unknown": "unknown",
        "unsupported": "Not found in the paper's indexed text.",
        "source": "Source",
        "page": "p.",
        "more_qa": "{count} more Q&A in the thread",
        "continued": "(continued)",
        "empty": "No papers were found for the week of {week}.",
        "quoted": "(quoted from the paper)",
        "ask": "Ask about this paper",
        "all_qa": "All Q&A",
        "already_posted": "already posted here on {date}",
        "see_thread": "see its thread",
        "thread": "thread",
        "new_version": (
            "New version: v{version} of this paper, dated {date} (this card showed v{previous})."
        ),
        "abstract_changed": "What changed in the abstract:",
        "was": "was",
        "now": "now",
        "more_changes": "and {count} more changed sentence(s)",
        "fulltext_changed": (
            "The abstract did not change; in the full text about {changed} of {words} words "
            "differ ({share})."
        ),
        "abstract_same": "The abstract did not change.",
    },
    "ja": {
        "authors": "著者",
        "published": "初版公開日",
        "updated": "最終更新日",
        "link": "リンク",
        "pdf": "PDF",
        "categories": "カテゴリ",
        "summary": "要約",
        "qa": "Q&A",
        "unknown": "不明",
        "unsupported": "論文の本文中に該当する記述は見つかりませんでした。",
        "source": "出典",
        "page": "p.",
        "more_qa": "残り{count}件のQ&Aはスレッドにあります",
        "continued": "（続き）",
        "empty": "{week}の週の論文は見つかりませんでした。",
        "quoted": "（論文からの引用）",
        "ask": "この論文について質問する",
        "all_qa": "すべてのQ&A",
        "already_posted": "{date}にこのチャンネルで投稿済み",
        "see_thread": "スレッドを見る",
        "thread": "スレッド",
        "new_version": (
            "新しい版：この論文の v{version}（{date}）が公開されました"
            "（このカードは v{previous}）。"
        ),
        "abstract_changed": "アブストラクトの変更点：",
        "was": "旧",
        "now": "新",
        "more_changes": "ほか{count}文の変更",
        "fulltext_changed": (
            "アブストラクトは変わっていません。本文は約{words}語のうち約{changed}語が"
            "変わりました（{share}）。"
        ),
        "abstract_same": "アブストラクトは変わっていません。",
    },
}


def label(language: str, key: str, **values: object) -> str:
    """A fixed word in `language` (English when the language has no table)."""
    table = LABELS.get(language, LABELS["en"])
    return table[key].format(**values)


def header(week: date, language: str, source: str = "potw") -> str:
    """The digest's title line, e.g. "Top ML papers of the week, Jul 8 – Jul 14, 2024".

    A Hugging Face digest's week is the days HF listed its papers (`daily_papers?date=`),
    not when arXiv published them, and its title says so; the cards' dates are arXiv's.
    """
    end = week + timedelta(days=6)
    if language == "ja":
        span = f"{week.year}年{week.month}月{week.day}日〜{end.month}月{end.day}日"
        if source == "hf":
            return f"Hugging Face Daily Papers の注目論文（{span}に掲載）"
        return f"今週の注目ML論文（{span}）"
    span = f"{week:%b} {week.day} – {end:%b} {end.day}, {end.year}"
    if source == "hf":
        return f"Top papers on Hugging Face Daily Papers, listed {span}"
    return f"Top ML papers of the week, {span}"
