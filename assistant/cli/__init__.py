"""The `paperbot` command line: every command builds what it needs from settings through
the composition root (`assistant.runtime.Runtime`).

Read commands take `--json`; long work shows a progress bar on stderr, so stdout stays clean
for scripts. Each module registers its commands on the shared Typer app:

    paperbot ingest ... (ingest.py) · search, show, papers, stats, backup, ask, chat (read.py)
    digest ... (digest.py) · serve (serve.py) · index ..., eval ... (index.py) · demo (demo.py)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import typer

from assistant.cli import demo, digest, index, ingest, read, serve  # noqa: F401  (registers)
from assistant.cli.common import COMMAND, app, command_words, err, log
from assistant.cli.demo import SAMPLE_WEEK
from assistant.errors import UserError
from assistant.settings import load_settings

__all__ = ["SAMPLE_WEEK", "app", "main"]


# -- entry point ---------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI: user errors print their message and exit 2; bugs exit 1 with a trace."""
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
        err.print(f"[red]error:[/] {exc}")
        sys.exit(2)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and bugs
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        log.exception("paperbot failed")
        err.print("[red]paperbot failed unexpectedly[/]; the traceback is above.")
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)
