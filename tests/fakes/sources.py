"""A source that yields what it is given (records and problems), for pipeline tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from assistant.models import PaperRecord, Problem


class RecordsSource:
    """`PaperSource` over a fixed list."""

    def __init__(self, items: Sequence[PaperRecord | Problem], name: str = "records") -> None:
        self.name = name
        self._items = list(items)

    def read(self) -> Iterator[PaperRecord | Problem]:
        yield from self._items
