"""The README stays true: its commands and settings match the code."""

from __future__ import annotations

import re

from pydantic_settings import BaseSettings

from assistant.cli import app
from assistant.settings import Settings
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def env_names(model: type[BaseSettings]) -> list[str]:
    prefix = str(model.model_config.get("env_prefix", ""))
    names = []
    for name, field in model.model_fields.items():
        factory = field.default_factory
        if isinstance(factory, type) and issubclass(factory, BaseSettings):
            names += env_names(factory)
        else:
            names.append(f"{prefix}{name}".upper())
    return names


def test_every_setting_is_in_the_configuration_table() -> None:
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.MULTILINE))
    assert set(env_names(Settings)) == documented


def test_the_two_commands_come_first_and_exist_in_the_makefile() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.MULTILINE)
    assert re.search(r"^test:", makefile, re.MULTILINE)
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\b(?!-)", ci, re.MULTILINE)
    assert re.search(r"^make test-slow\b", ci, re.MULTILINE)  # CI runs every test
    assert '-m "not slow"' in makefile and "-m slow" in makefile


def test_every_paperbot_subcommand_in_the_readme_exists() -> None:
    import typer.main

    group = typer.main.get_command(app)
    used = re.findall(r"^paperbot ([a-z-]+)(?: ([a-z-]+))?", README, flags=re.MULTILINE)
    for command, sub in used:
        assert command in group.commands, command  # type: ignore[attr-defined]
        child = group.commands[command]  # type: ignore[attr-defined]
        if sub and hasattr(child, "commands"):
            assert sub in child.commands, f"{command} {sub}"
