"""A deterministic fake embedder: hashed bag of words, unit length, no model needed."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from assistant.sparse import tokenize


class FakeEmbedder:
    """Texts that share words get similar vectors; identical texts get identical vectors."""

    def __init__(
        self, dimension: int = 64, name: str = "fake-bow-64", multilingual: bool = False
    ) -> None:
        self.name = name
        self.multilingual = multilingual
        self._dimension = dimension
        self.calls: list[int] = []
        self.roles: list[str] = []

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, texts: Sequence[str], role: str = "passage") -> list[list[float]]:
        self.calls.append(len(texts))
        self.roles.append(role)
        vectors = []
        for text in texts:
            vector = [0.0] * self._dimension
            for term in tokenize(text) or ["<empty>"]:
                vector[zlib.crc32(term.encode()) % self._dimension] += 1.0
            norm = sum(x * x for x in vector) ** 0.5
            vectors.append([x / norm for x in vector])
        return vectors

    @property
    def texts_embedded(self) -> int:
        return sum(self.calls)
