"""Run `paperbot` with every write to the embedded index announced first, one byte on
the file descriptor in PAPERBOT_TEST_WRITE_FD, so a test can SIGKILL the process while
Qdrant Edge is inside that write (tests/test_kill.py). PAPERBOT_TEST_EMBED_BATCH sets the
passages embedded (and so written) together, for more writes in a small run.

    python -m tests.announced_writes ingest potw --file README.md --all --offline
"""

from __future__ import annotations

import os
import sys

from assistant import index_edge, indexing
from assistant.cli import main


def announce_writes(fd: int) -> None:
    write = index_edge.EdgeIndex._write

    def announced(self: index_edge.EdgeIndex, action: str, operation: object) -> None:
        os.write(fd, b"w")
        write(self, action, operation)  # type: ignore[arg-type]

    index_edge.EdgeIndex._write = announced  # type: ignore[method-assign]


if __name__ == "__main__":
    announce_writes(int(os.environ["PAPERBOT_TEST_WRITE_FD"]))
    indexing.EMBED_BATCH = int(os.environ.get("PAPERBOT_TEST_EMBED_BATCH", indexing.EMBED_BATCH))
    main(sys.argv[1:])
