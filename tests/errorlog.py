"""Errors a connector's error boundary logged instead of raising: tests count them."""

from __future__ import annotations

import logging
from collections.abc import Iterator


class ErrorLog(logging.Handler):
    """Collects ERROR records: the connector's error boundary logs failures instead of
    raising them, so a test must say how many it expects (none by default)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.expected = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def watch_errors() -> Iterator[ErrorLog]:
    """For an autouse fixture: collect ERROR records during the test, then check that
    there were exactly `expected` of them (torn down after the bot, so its workers are
    done)."""
    handler = ErrorLog()
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
    messages = [r.getMessage() for r in handler.records]
    assert len(messages) == handler.expected, messages
