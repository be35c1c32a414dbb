"""Publisher runs: who holds a claim on a digest post, and whether it is still alive.

Every `DigestPublisher.publish` call is a run with its own owner id (host, pid, a random
part), registered in SQLite for as long as it runs and beating every few seconds. A claim
on a post belongs to one run, never to a whole process, so two runs in one process (two
`/paper digest post` at once) exclude each other like two replicas do.

A claim's owner is dead, and its claim may be taken over at once, when:
- its run ended (in this or another process) without recording the post: an exception,
  a timeout, a cancelled task;
- it ran on this host and its process is gone (a crash, SIGKILL, OOM), or its pid now
  belongs to another process (a container restarted with the same pid);
- it has not beaten for `stale_seconds` (another host, or a stuck process).
A dead run's claim is taken over `settle_seconds` after it died, not before: a post it
had in flight then has had time to land, so the next owner finds it instead of repeating it.

>>> runs = PublisherRuns(store, stale_seconds=30)
>>> owner = runs.start()
>>> runs.free_at(owner, claimed_at=time.time()).dead
False
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from assistant.state import StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as other processes can check it: host, pid and start time."""

    host: str
    pid: int
    start: str | None  # None where the start time cannot be read (no /proc)


def process_start(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot, from /proc), or None when
    there is no such process or no /proc to ask."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def this_process() -> ProcessIdentity:
    pid = os.getpid()
    return ProcessIdentity(socket.gethostname(), pid, process_start(pid))


def process_alive(identity: ProcessIdentity) -> bool | None:
    """Whether the process is still running: None when it ran on another host (cannot tell)."""
    if identity.host != socket.gethostname():
        return None
    if identity.start is not None and Path("/proc/self/stat").exists():
        return process_start(identity.pid) == identity.start  # a reused pid starts later
    try:
        os.kill(identity.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class PublisherRuns:
    """The registry of publisher runs (the `publisher_runs` table).

    Runs beat every 2 s (or a sixth of `stale_seconds` if shorter).
    `stale_seconds`: a run silent for this long is taken for dead. `settle_seconds`: how
    long after a run died its claims stay untouched, so that a post it had in flight when
    it died has landed on the platform before the next owner looks for it there.
    """

    def __init__(
        self, store: StateStore, stale_seconds: float = 30.0, settle_seconds: float = 5.0
    ) -> None:
        self._store = store
        self.stale_seconds = stale_seconds
        self.settle_seconds = min(settle_seconds, stale_seconds)
        self.beat_seconds = min(2.0, max(0.02, stale_seconds / 6))
        self._me = this_process()

    def start(self) -> str:
        """Register a new run and return its owner id (old registrations are dropped)."""
        me = self._me
        owner = f"{me.host}:{me.pid}:{uuid.uuid4().hex[:12]}"
        now = time.time()
        with self._store.transaction() as conn:
            conn.execute(
                "DELETE FROM publisher_runs WHERE COALESCE(ended_at, beat_at) < ?",
                (now - _FORGET_SECONDS,),
            )
            conn.execute(
                "INSERT INTO publisher_runs (owner, host, pid, process_start, started_at, "
                "beat_at) VALUES (?, ?, ?, ?, ?, ?)",
                (owner, me.host, me.pid, me.start, now, now),
            )
        return owner

    def beat(self, owner: str) -> None:
        """Show that the run is alive."""
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE publisher_runs SET beat_at = ? WHERE owner = ? AND ended_at IS NULL",
                (time.time(), owner),
            )

    def end(self, owner: str) -> None:
        """The run is over: claims it still holds may be taken over once they settled."""
        with self._store.transaction() as conn:
            conn.execute(
                "UPDATE publisher_runs SET ended_at = ? WHERE owner = ?", (time.time(), owner)
            )

    def free_at(self, owner: str, claimed_at: float) -> Holder:
        """Whether the run `owner` is dead, and from when its claim may be taken over.

        Claims from before runs were registered (an owner without host and pid) are
        judged by their age alone, as they used to be.
        """
        if owner.count(":") < 2:
            return Holder(False, claimed_at + self.stale_seconds)
        rows = self._store.query(
            "SELECT host, pid, process_start, beat_at, ended_at FROM publisher_runs "
            "WHERE owner = ?",
            (owner,),
        )
        if not rows:  # forgotten long ago
            return Holder(True, 0.0)
        row = rows[0]
        if row["ended_at"] is not None:
            return Holder(True, float(row["ended_at"]) + self.settle_seconds)
        beat_at = float(row["beat_at"])
        identity = ProcessIdentity(row["host"], int(row["pid"]), row["process_start"])
        if process_alive(identity) is False:  # it died at most a beat after its last one
            return Holder(True, beat_at + self.beat_seconds + self.settle_seconds)
        return Holder(False, beat_at + self.stale_seconds)


@dataclass(frozen=True)
class Holder:
    """What is known of a claim's holder: `dead` (for sure), and `free_at`, the time from
    which its claim may be taken over (a live holder's: if it stays silent till then)."""

    dead: bool
    free_at: float


_FORGET_SECONDS = 7 * 24 * 3600.0
