"""The ``syncpipe`` command line, run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from schemas.settings import DEV_JWT_SECRET

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCPIPE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "syncpipe", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_help_lists_core_commands() -> None:
    proc = run("--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("version", "gen", "token", "config", "dev"):
        assert command in proc.stdout


def test_help_text_is_reflowed_to_the_terminal_width() -> None:
    # Docstrings wrap at 100 columns in the source; help must not keep those breaks.
    proc = run("dev", "--help", env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    lines = [line.strip(" │") for line in proc.stdout.splitlines()]
    assert any(
        "prints the URLs, a dev token and the data directory, restarts a component" in line
        for line in lines
    ), proc.stdout
    assert "kept in logs/ under the data directory" in proc.stdout


def test_version_prints_package_version() -> None:
    proc = run("version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("syncpipe ")


def test_token_mints_a_jwt_for_tenant_and_user() -> None:
    proc = run("token", "--tenant", "acme", "--user", "alice", "--ttl", "60")
    assert proc.returncode == 0, proc.stderr
    claims = jwt.decode(
        proc.stdout.strip(), DEV_JWT_SECRET, algorithms=["HS256"], issuer="syncpipe"
    )
    assert (claims["tenant"], claims["sub"]) == ("acme", "alice")
    assert claims["exp"] - claims["iat"] == 60


def test_token_uses_configured_secret() -> None:
    secret = "k" * 40
    proc = run("token", "--tenant", "acme", "--user", "bob", env={"SYNCPIPE_JWT_SECRET": secret})
    assert proc.returncode == 0, proc.stderr
    assert jwt.decode(proc.stdout.strip(), secret, algorithms=["HS256"], issuer="syncpipe")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ("token", "--tenant", "acme", "--user", "a"),
            {"SYNCPIPE_ENV": "prod"},
            "SYNCPIPE_JWT_SECRET",
        ),
        (("token", "--tenant", "acme", "--user", "a"), {"SYNCPIPE_ENV": "staging"}, "SYNCPIPE_ENV"),
        (("token", "--tenant", "acme", "--user", "a", "--ttl", "0"), {}, "ttl"),
        (("token", "--user", "a"), {}, "--tenant"),
        (("version",), {"SYNCPIPE_LOG_LEVEL": "LOUD"}, "SYNCPIPE_LOG_LEVEL"),
    ],
    ids=["prod-without-secret", "unknown-env", "zero-ttl", "missing-tenant", "bad-log-level"],
)
def test_bad_input_is_a_clear_error_without_traceback(
    args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    proc = run(*args, env=env)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_config_prints_every_setting() -> None:
    proc = run("config")
    assert proc.returncode == 0
    for var in ("SYNCPIPE_KAFKA_BOOTSTRAP", "SYNCPIPE_REDIS_URL", "SYNCPIPE_JWT_SECRET"):
        assert f"`{var}`" in proc.stdout
