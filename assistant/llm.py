"""The chat-model seam: one `complete` method, and a backend for any OpenAI-compatible server.

>>> model = build_chat_model(settings.openai, settings.llm)  # None when no server is set
>>> model.complete([ChatMessage("system", "Answer from the passages."),
...                 ChatMessage("user", "What does [1] propose?")]).text

Failures come out as our own errors: a refused key or an unknown model is a
`ConfigError` (the message names the setting), an unreachable, slow, overloaded or
incoherent server is an `LLMUnavailableError`, so callers can fall back to extractive
answers. Prompts and keys are never logged; DEBUG logs carry sizes only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from assistant.errors import ConfigError, UserError
from assistant.metrics import Metrics, process_metrics
from assistant.settings import LLMSettings, OpenAISettings

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletionChunk

log = logging.getLogger(__name__)

TOKENS_PER_WORD = 1.3
"""Rough tokens per whitespace-separated word, for servers that report no usage."""

KEY_REFUSED = "The LLM server refused the API key: check OPENAI_API_KEY."


class LLMUnavailableError(UserError):
    """The LLM server cannot answer right now (timeout, connection error, 5xx, rate limit
    after retries, or an unreadable or empty answer). The message can be shown as it is;
    callers may fall back to an answer without the LLM."""


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a conversation sent to the model."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Completion:
    """The model's answer and what it cost (tokens are estimated when the server is silent)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str


class ChatModel(Protocol):
    """A chat model. `name` identifies it in logs and usage records."""

    name: str

    def complete(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int | None = None,
        on_delta: Callable[[str], None] | None = None,
    ) -> Completion:
        """Answer the conversation `messages` (blocking: run it off the event loop).

        `max_tokens` overrides the configured answer length. With `on_delta`, the answer
        is streamed and `on_delta` is called, on the calling thread, with each piece of
        text as it arrives; the pieces joined are `Completion.text`.

        Raises `ConfigError` (refused key, unknown model) or `LLMUnavailableError`.
        """
        ...


class OpenAIChatModel:
    """A `ChatModel` over the openai package (OpenAI, vLLM, Ollama, llama.cpp server...).

    Timeouts and retries are the client's (set from OpenAISettings when it is built);
    the timeout bounds each wait for data, so a long stream that keeps flowing is fine.
    Tokens used and unavailable-server errors are counted in `metrics`.
    """

    def __init__(
        self, client: openai.OpenAI, settings: LLMSettings, metrics: Metrics | None = None
    ) -> None:
        self.name = settings.model
        self._client = client
        self._settings = settings
        self._metrics = metrics or process_metrics()

    def complete(
        self,
        messages: Sequence[ChatMessage],
        max_tokens: int | None = None,
        on_delta: Callable[[str], None] | None = None,
    ) -> Completion:
        """See `ChatModel.complete`."""
        log.debug(
            "LLM request: model %s, %d messages, %d chars, streamed %s",
            self.name,
            len(messages),
            sum(len(m.content) for m in messages),
            on_delta is not None,
        )
        request = self._request(messages, max_tokens)
        try:
            if on_delta is None:
                completion = self._complete_once(request, messages)
            else:
                completion = self._complete_streamed(request, messages, on_delta)
        except LLMUnavailableError:
            self._metrics.count_error("llm")
            raise
        self._metrics.count_tokens(completion.prompt_tokens, completion.completion_tokens)
        log.debug(
            "LLM answer: %d chars, %d prompt + %d completion tokens",
            len(completion.text),
            completion.prompt_tokens,
            completion.completion_tokens,
        )
        return completion

    def _request(self, messages: Sequence[ChatMessage], max_tokens: int | None) -> dict[str, Any]:
        return {
            "model": self._settings.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens if max_tokens is not None else self._settings.max_tokens,
            "temperature": self._settings.temperature,
        }

    def _complete_once(
        self, request: dict[str, Any], messages: Sequence[ChatMessage]
    ) -> Completion:
        from openai.types.chat import ChatCompletion

        with openai_errors(self.name):
            response = self._client.chat.completions.create(**request)
        # A 200 that is not JSON (a proxy's error page) comes back as a plain str.
        if not isinstance(response, ChatCompletion) or not response.choices:
            raise _unavailable("unreadable answer", "sent an answer that could not be read")
        choice = response.choices[0]
        text = (choice.message.content if choice.message else None) or ""
        _warn_if_cut(choice.finish_reason)
        usage = response.usage
        if usage is None:
            return self._estimated(text, messages, response.model)
        return Completion(
            _checked(text),
            usage.prompt_tokens,
            usage.completion_tokens,
            response.model or self.name,
        )

    def _complete_streamed(
        self,
        request: dict[str, Any],
        messages: Sequence[ChatMessage],
        on_delta: Callable[[str], None],
    ) -> Completion:
        pieces: list[str] = []
        usage: tuple[int, int] | None = None
        model = ""
        with closing(self._chunks(request)) as chunks:
            for chunk in chunks:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices or []:
                    if choice.delta is not None and choice.delta.content:
                        pieces.append(choice.delta.content)
                        on_delta(choice.delta.content)
                    _warn_if_cut(choice.finish_reason)
        text = "".join(pieces)
        if usage is None:
            return self._estimated(text, messages, model)
        return Completion(_checked(text), usage[0], usage[1], model or self.name)

    def _chunks(self, request: dict[str, Any]) -> Generator[ChatCompletionChunk, None, None]:
        """The streamed chunks, with transport errors mapped (`on_delta`'s own errors pass)."""
        with openai_errors(self.name):
            stream = self._client.chat.completions.create(
                **request, stream=True, stream_options={"include_usage": True}
            )
            with stream:
                yield from stream

    def _estimated(
        self, text: str, messages: Sequence[ChatMessage], model: str | None
    ) -> Completion:
        prompt_words = sum(len(m.content.split()) for m in messages)
        return Completion(
            _checked(text),
            estimate_tokens(prompt_words),
            estimate_tokens(len(text.split())),
            model or self.name,
        )


def estimate_call_tokens(messages: Sequence[ChatMessage], max_tokens: int) -> int:
    """An upper estimate of what a call can cost, to check a budget before making it: the
    prompt (about 3 characters a token for ASCII text, 1.5 tokens a character otherwise,
    plus a few per message) and the longest answer allowed."""
    prompt = 0.0
    for message in messages:
        text = message.content
        ascii_chars = sum(1 for c in text if c.isascii())
        prompt += ascii_chars / 3 + (len(text) - ascii_chars) * 1.5 + 8
    return math.ceil(prompt) + max_tokens


def estimate_tokens(words: int) -> int:
    """Tokens for `words` words, for servers that report no usage (about 1.3 per word)."""
    return math.ceil(words * TOKENS_PER_WORD)


@contextmanager
def openai_errors(model: str, setting: str = "PAPERBOT_LLM_MODEL") -> Iterator[None]:
    """Turn the openai package's errors into ours, with messages a user can act on."""
    import openai

    try:
        yield
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        log.warning("LLM server refused the API key (HTTP %s)", exc.status_code)
        raise ConfigError(KEY_REFUSED) from exc
    except openai.NotFoundError as exc:
        log.warning("LLM server does not know model %s", model)
        raise ConfigError(
            f"The LLM server has no model {model!r}: check {setting} (and OPENAI_BASE_URL)."
        ) from exc
    except openai.APITimeoutError as exc:
        raise _unavailable("timeout", "took too long to answer") from exc
    except openai.APIConnectionError as exc:
        raise _unavailable("connection error", "cannot be reached") from exc
    except openai.RateLimitError as exc:
        raise _unavailable("rate limited", "is busy (rate limited)") from exc
    except openai.InternalServerError as exc:
        raise _unavailable(f"HTTP {exc.status_code}", "failed") from exc
    except openai.APIStatusError:
        raise  # 400, 409, 422...: a request we should not have sent is a bug, not an outage
    except (openai.APIError, ValueError) as exc:  # error event mid-stream, unparseable JSON
        raise _unavailable(type(exc).__name__, "sent an answer that could not be read") from exc


def _unavailable(cause: str, what: str) -> LLMUnavailableError:
    log.warning("LLM server unavailable: %s", cause)
    return LLMUnavailableError(f"The language model server {what}; please try again later.")


def _checked(text: str) -> str:
    if not text.strip():
        raise _unavailable("empty answer", "returned an empty answer")
    return text


def _warn_if_cut(finish_reason: str | None) -> None:
    if finish_reason == "length":
        log.info("LLM answer was cut at the max_tokens limit (PAPERBOT_LLM_MAX_TOKENS)")


def build_openai_client(settings: OpenAISettings) -> openai.OpenAI:
    """An openai client for the configured server, with its timeout and retries."""
    import openai

    key = settings.api_key.get_secret_value() if settings.api_key else "none"
    return openai.OpenAI(
        api_key=key,
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
    )


def build_chat_model(
    openai_settings: OpenAISettings, llm_settings: LLMSettings, metrics: Metrics | None = None
) -> ChatModel | None:
    """The configured chat model, or None without OPENAI_API_KEY / OPENAI_BASE_URL
    (called only from the composition root)."""
    if not openai_settings.configured:
        return None
    return OpenAIChatModel(build_openai_client(openai_settings), llm_settings, metrics)
