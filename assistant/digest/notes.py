"""Version notes: the short message a paper card's thread gets when arXiv has a new version.

The note says which version, its date, and what changed: the abstract's changed sentences
(a few, shortened), or, when the abstract is the same, how much of the full text changed.
Connectors render `note_text(note)` in their own markup.

>>> note = version_note(update, paper, "en")
>>> note_text(note).headline
'New version: v2 of this paper, dated 2024-07-20 (this card showed v1).'
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.digest.model import VersionNote
from assistant.digest.split import shorten
from assistant.digest.text import label
from assistant.models import Paper
from assistant.versions import PaperUpdate

MAX_SENTENCES = 3  # of each side of the abstract's change
MAX_SENTENCE_CHARS = 400


@dataclass(frozen=True)
class NoteText:
    """A version note as plain text parts: the headline, the abstract's changes as
    ("was" | "now" label, sentence) pairs under `changes_label`, and a closing line."""

    headline: str
    link_text: str
    changes_label: str
    changes: tuple[tuple[str, str], ...]
    closing: str


def version_note(update: PaperUpdate, paper: Paper | None, language: str) -> VersionNote:
    removed, added = update.abstract_changes()
    change = update.fulltext
    return VersionNote(
        paper_id=update.paper_id,
        title=paper.title if paper else update.paper_id,
        version=update.version,
        previous_version=update.previous_version,
        updated=update.updated,
        language=language,
        removed=tuple(removed),
        added=tuple(added),
        words_after=change.words_after if change else None,
        changed_words=change.changed_words if change else None,
    )


def note_text(note: VersionNote) -> NoteText:
    lang = note.language
    day = note.updated.isoformat() if note.updated else label(lang, "unknown")
    headline = label(
        lang, "new_version", version=note.version, date=day, previous=note.previous_version
    )
    changes = tuple(
        [(label(lang, "was"), _short(s)) for s in note.removed[:MAX_SENTENCES]]
        + [(label(lang, "now"), _short(s)) for s in note.added[:MAX_SENTENCES]]
    )
    more = max(len(note.removed) - MAX_SENTENCES, 0) + max(len(note.added) - MAX_SENTENCES, 0)
    if changes:
        closing = label(lang, "more_changes", count=more) if more else ""
    elif note.changed_words is not None and note.words_after:
        share = note.changed_words / max(note.words_after, 1)
        closing = label(
            lang,
            "fulltext_changed",
            changed=f"{note.changed_words:,}",
            words=f"{note.words_after:,}",
            share=f"{share:.0%}",
        )
    else:
        closing = label(lang, "abstract_same")
    return NoteText(
        headline=headline,
        link_text=f"{note.title} (arXiv v{note.version})",
        changes_label=label(lang, "abstract_changed") if changes else "",
        changes=changes,
        closing=closing,
    )


def _short(sentence: str) -> str:
    return shorten(" ".join(sentence.split()), MAX_SENTENCE_CHARS)
