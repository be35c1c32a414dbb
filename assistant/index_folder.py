"""The embedded index's folder: the engine's files, the model record, and a lock that
names the process holding it.

    data/index/
      lock          held (flock) by the one process using the index; says who it is
      index.json    the model record: which embedding model built which named vector
      shard/        Qdrant Edge's files (segments and write-ahead log)

An index written by older versions (qdrant-client's local mode, `data/qdrant/`) is
recognised, so the user can be told the one command that moves it.

>>> folder = IndexFolder(settings.index_path)
>>> folder.lock("paperbot chat")   # IndexUnavailableError naming the holder if taken
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from assistant.errors import IndexDamagedError, IndexUnavailableError

log = logging.getLogger(__name__)

RECORD = "index.json"
SHARD = "shard"
LOCK = "lock"
LEGACY_FOLDER = "qdrant"  # qdrant-client local mode, before the Edge engine


class IndexFolder:
    """One embedded index folder. `lock()` before touching the engine's files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_file: IO[str] | None = None

    @property
    def shard_path(self) -> Path:
        return self.path / SHARD

    @property
    def record_path(self) -> Path:
        return self.path / RECORD

    @property
    def locked(self) -> bool:
        return self._lock_file is not None

    def lock(self, holder: str) -> None:
        """Take the folder for this process, or raise IndexUnavailableError naming the
        process that has it (its command and pid, recorded next to the lock)."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = (self.path / LOCK).open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            who = describe_holder(handle.read())
            handle.close()
            raise in_use_error(self.path, who) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder_record(holder)) + "\n")
        handle.flush()
        self._lock_file = handle

    def unlock(self) -> None:
        handle, self._lock_file = self._lock_file, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.truncate(0)
            handle.close()  # closing releases the flock

    def read_record(self) -> dict[str, Any] | None:
        """The model record, None if there is none; IndexDamagedError if unreadable."""
        try:
            text = self.record_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise damaged(self.path, f"its model record cannot be read: {exc}") from exc
        try:
            record = json.loads(text)
        except ValueError as exc:
            raise damaged(self.path, f"its model record {RECORD} is not JSON") from exc
        if not isinstance(record, dict):
            raise damaged(self.path, f"its model record {RECORD} is not an object")
        return record

    def write_record(self, record: dict[str, Any]) -> None:
        """Write the model record atomically (a crash leaves the old one or the new)."""
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.record_path)

    def has_shard(self) -> bool:
        return self.shard_path.is_dir() and any(self.shard_path.iterdir())

    def wipe(self) -> None:
        """Delete the engine's files and the model record, whatever state they are in
        (the lock stays with this process)."""
        assert self.locked, "lock the folder first"
        for entry in self.path.iterdir():
            if entry.name == LOCK:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def holder_record(holder: str) -> dict[str, Any]:
    return {
        "process": holder,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def describe_holder(text: str) -> str:
    """'`paperbot chat` (pid 4242, since ...)' from a lock file's record."""
    try:
        record = json.loads(text)
        process, pid = str(record["process"]), int(record["pid"])
    except (ValueError, KeyError, TypeError):
        return "another paperbot process"
    since = record.get("since", "?")
    host = record.get("host")
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return f"another paperbot process: `{process}` (pid {pid}{where}, since {since})"


def in_use_error(path: Path, who: str) -> IndexUnavailableError:
    return IndexUnavailableError(
        f"The embedded index at {path} is in use by {who}. The embedded engine allows one "
        "process at a time: stop that process and retry, or run a Qdrant server (docker "
        "compose up qdrant) and set QDRANT_URL so that several processes can share it."
    )


def damaged(path: Path, why: str) -> IndexDamagedError:
    return IndexDamagedError(
        f"The embedded index at {path} is damaged ({why}). Run `paperbot index rebuild`: it "
        "rebuilds the index from the stored papers (SQLite), nothing is lost."
    )


def legacy_index(data_dir: Path) -> Path | None:
    """The folder of an index written by qdrant-client's local mode (paperbot before the
    Edge engine), if there is one under `data_dir`."""
    folder = data_dir / LEGACY_FOLDER
    if (folder / "meta.json").is_file() or (folder / "collection").is_dir():
        return folder
    return None


def legacy_error(folder: Path, papers: int | None = None) -> IndexDamagedError:
    count = f" the {papers:,} stored papers" if papers else " every stored paper"
    return IndexDamagedError(
        f"The index at {folder} was written by an older paperbot (qdrant-client local "
        "mode), which this version no longer reads. Run `paperbot index rebuild` once: it "
        f"re-embeds{count} from SQLite into the new embedded engine, with a progress bar, "
        "and removes the old folder when done. Nothing is lost: SQLite holds every paper "
        "and passage."
    )
