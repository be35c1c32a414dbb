"""The `paperbot` command line: every command builds what it needs from settings through
the composition root (`assistant.runtime.Runtime`).

Read commands take `--json`; long work shows a progress bar on stderr, so stdout stays clean
for scripts. Each module registers its commands on the shared Typer app:

    paperbot ingest ... (ingest.py) · search, show, papers, stats, backup, ask, chat (read.py)
    digest ... (digest.py) · serve (serve.py) · index ..., eval ... (index.py) · demo (demo.py)
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import typer
from rich.markup import escape

from assistant.cli import demo, digest, index, ingest, read, serve  # noqa: F401  (registers)
from assistant.cli.common import COMMAND, app, command_words, err, log
from assistant.cli.demo import SAMPLE_WEEK
from assistant.errors import DataDirError, UserError
from assistant.settings import load_settings
from assistant.state import storage_failure

__all__ = ["SAMPLE_WEEK", "app", "main"]


# -- entry point ---------------------------------------------------------------------


def data_dir() -> Path:
    """The data dir the settings name (for messages; never raises)."""
    try:
        return load_settings().data_dir
    except Exception:
        return Path(os.environ.get("PAPERBOT_DATA_DIR", "data"))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI: user errors print their message and exit 2 (usage errors with the usage
    line); a data dir that cannot be used prints one line naming it and exits 1; bugs exit
    1 with a trace."""
    try:
        level = load_settings().log_level.upper()
        logging.basicConfig(
            level=getattr(logging, level, logging.WARNING),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        args = list(argv) if argv is not None else sys.argv[1:]
        COMMAND.set(command_words(args))
        code = app(
            args=args,
            prog_name="paperbot",
            standalone_mode=False,
        )
    except UserError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: Typer's own click since 0.2x
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"Error: {exc.format_message()}", markup=False)
        if "unexpected extra argument" in exc.format_message():
            err.print('Put text with spaces in quotes: paperbot ask "what is LoRA?"', markup=False)
        sys.exit(exc.exit_code)
    except DataDirError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(1)
    except Exception as exc:
        failure = storage_failure(exc, data_dir())
        if failure is not None:  # disk full or read-only while working
            err.print(f"error: {failure}", markup=False, soft_wrap=True)
            sys.exit(1)
        log.exception("paperbot failed")
        err.print("[red]paperbot failed unexpectedly[/]; the traceback is above.")
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)
