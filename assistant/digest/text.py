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
    },
}


def label(language: str, key: str, **values: object) -> str:
    """A fixed word in `language` (English when the language has no table)."""
    table = LABELS.get(language, LABELS["en"])
    return table[key].format(**values)


def header(week: date, language: str) -> str:
    """The digest's title line, e.g. "Top ML papers of the week, Jul 8 – Jul 14, 2024"."""
    end = week + timedelta(days=6)
    if language == "ja":
        span = f"{week.year}年{week.month}月{week.day}日〜{end.month}月{end.day}日"
        return f"今週の注目ML論文（{span}）"
    return f"Top ML papers of the week, {week:%b} {week.day} – {end:%b} {end.day}, {end.year}"
