"""The deployment files stay consistent with the code (no Docker engine runs here).

docker-compose.yml and the Dockerfile are checked for structure and for agreement with the
settings, the Makefile and each other; the Dockerfile's COPY set is installed into a
scratch folder to show the image would get a working package.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant.settings import Settings
from tests.conftest import ROOT
from tests.test_readme import env_names

COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


STEPS = instructions(DOCKERFILE)


def last(word: str) -> str:
    return [args for name, args in STEPS if name == word][-1]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for name, args in STEPS:
        if name == "ENV":
            for part in shlex.split(args):
                key, _, value = part.partition("=")
                env[key] = value
    return env


# -- docker-compose.yml --------------------------------------------------------------------


def test_compose_runs_an_official_pinned_qdrant_with_a_volume_and_a_healthcheck() -> None:
    qdrant = COMPOSE["services"]["qdrant"]
    image, _, tag = qdrant["image"].partition(":")
    assert image == "qdrant/qdrant"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", tag), "pin a release, never latest"
    storage = [v for v in qdrant["volumes"] if v.endswith(":/qdrant/storage")]
    assert storage and storage[0].split(":")[0] in COMPOSE["volumes"]
    check = " ".join(qdrant["healthcheck"]["test"])
    assert "/readyz" in check and "6333" in check
    # the server is reachable from the host only on loopback
    assert all(port.startswith("127.0.0.1:") for port in qdrant["ports"])


def test_compose_runs_paperbot_against_the_qdrant_service() -> None:
    bot = COMPOSE["services"]["paperbot"]
    assert bot["build"] == "."
    assert bot["depends_on"]["qdrant"]["condition"] == "service_healthy"
    env = bot["environment"]
    assert env["QDRANT_URL"] == "http://qdrant:6333"
    data_dir = env["PAPERBOT_DATA_DIR"]
    assert any(v.endswith(f":{data_dir}") for v in bot["volumes"])
    assert all(v.split(":")[0] in COMPOSE["volumes"] for v in bot["volumes"])
    assert bot["command"][:2] == ["serve", "--slack"]  # Socket Mode by default: no --http
    assert "--http" not in bot["command"]
    assert [f["path"] for f in bot["env_file"]] == [".env"]
    port = env["PAPERBOT_HTTP_PORT"]
    assert any(p.endswith(f":{port}") and p.startswith("127.0.0.1:") for p in bot["ports"])
    assert int(bot["stop_grace_period"].rstrip("s")) >= 10


def test_compose_only_sets_real_settings() -> None:
    known = set(env_names(Settings))
    for name in COMPOSE["services"]["paperbot"]["environment"]:
        assert name in known, name


# -- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_installs_the_cpu_torch_the_makefile_pins() -> None:
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^TORCH \?= torch==([\d.]+)$", makefile, re.MULTILINE)
    assert pinned is not None
    args = dict(a.split("=", 1) for name, a in STEPS if name == "ARG" and "=" in a)
    assert args["TORCH_VERSION"] == pinned.group(1)
    assert args["TORCH_INDEX"].endswith("/whl/cpu")
    runs = [a for name, a in STEPS if name == "RUN"]
    torch_step = next(i for i, r in enumerate(runs) if "torch==" in r)
    package_step = next(i for i, r in enumerate(runs) if "pip install ." in r)
    assert torch_step < package_step  # torch first, or pip pulls a CUDA build


def test_dockerfile_runs_as_an_unprivileged_user_with_data_in_a_volume() -> None:
    user = last("USER")
    assert user and user not in ("root", "0")
    env = image_env()
    assert env["PAPERBOT_DATA_DIR"] in last("VOLUME")
    assert env["HF_HUB_OFFLINE"] == "1"  # never downloads a model at run time
    assert set(env) - {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"} - {
        k for k in env if k.startswith(("PIP_", "HF_", "TRANSFORMERS_"))
    } <= set(env_names(Settings))


def test_dockerfile_health_and_ports_agree_with_compose() -> None:
    env = image_env()
    port = env["PAPERBOT_HTTP_PORT"]
    assert last("EXPOSE") == port
    assert f":{port}/healthz" in last("HEALTHCHECK")
    assert COMPOSE["services"]["paperbot"]["environment"]["PAPERBOT_HTTP_PORT"] == port
    assert last("ENTRYPOINT") == '["paperbot"]'
    assert last("CMD") == '["serve", "--slack"]'


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".venv", "data", ".git"):
        assert entry in ignored


@pytest.mark.slow
def test_the_dockerfile_copy_set_installs_a_working_package(tmp_path: Path) -> None:
    """What the image copies is enough to install paperbot with its data and entry point."""
    context = tmp_path / "context"
    context.mkdir()
    for name, args in STEPS:
        if name != "COPY":
            continue
        *sources, dest = args.split()
        for source in sources:
            src = ROOT / source
            target = context / (source if dest.endswith("/") else dest.strip("./"))
            if src.is_dir():
                subprocess.run(["cp", "-r", str(src), str(target)], check=True, capture_output=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(src.read_bytes())
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--target", str(site), str(context),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    assert (site / "assistant" / "data" / "sample_potw.md").exists()
    assert (site / "connectors" / "slack" / "manifest.yml").exists() or (
        site / "connectors" / "slack"
    ).is_dir()
    scripts = list((site / "bin").glob("paperbot"))
    assert scripts, "the paperbot console script is installed"


# -- .env.example ------------------------------------------------------------------------


def test_env_example_names_only_documented_settings() -> None:
    text = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "OPENAI_API_KEY"} <= named
    assert named <= set(env_names(Settings))
    # nothing filled in: the example never carries a secret
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert line.endswith("="), line
