"""Run `paperbot` with the fake embedder instead of the packaged model (fast to start, for
tests that need a second paperbot process).

    python -m tests.fake_model_cli chat
"""

from __future__ import annotations

import sys

from assistant import runtime
from assistant.cli import main
from tests.fakes.embedder import FakeEmbedder

if __name__ == "__main__":
    embedder = FakeEmbedder()
    runtime.build_embedder = lambda *args: embedder  # type: ignore[assignment]
    main(sys.argv[1:])
