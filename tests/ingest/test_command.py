"""``syncpipe ingest`` (syncpipe/commands/ingest.py): config errors and a real run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
import typer
from typer.testing import CliRunner

from ingest.settings import IngestSettings
from schemas.auth import mint_token
from schemas.settings import SharedSettings
from syncpipe.commands.ingest import register
from tests.ingest.helpers import make_op, wait_for
from tests.processes import REPO, BrokerProcess, free_port, port_open

pytestmark = pytest.mark.timeout(60)

# A CLI holding only the ingest command (the lead wires it into syncpipe/cli.py).
CLI = (
    "import typer\n"
    "from syncpipe.commands.ingest import register\n"
    "app = typer.Typer()\n"
    "app.callback()(lambda: None)\n"
    "register(app)\n"
    "app()\n"
)


def cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return app


def test_missing_redis_url_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SYNCPIPE_REDIS_URL", raising=False)
    result = CliRunner().invoke(cli(), ["ingest"])
    assert result.exit_code == 2
    assert "SYNCPIPE_REDIS_URL is required by ingest" in result.output


def test_bad_setting_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNCPIPE_INGEST_MAX_CLOCK_SKEW_MS", "soon")
    result = CliRunner().invoke(cli(), ["ingest"])
    assert result.exit_code == 2
    assert "SYNCPIPE_INGEST_MAX_CLOCK_SKEW_MS" in result.output


def test_claim_ttl_must_outlive_the_produce_timeout() -> None:
    with pytest.raises(ValueError, match="SYNCPIPE_INGEST_CLAIM_TTL_S must be longer"):
        IngestSettings(claim_ttl_s=5, produce_timeout_s=5)


def test_ingest_command_serves_and_stops_on_sigterm(
    session_broker: BrokerProcess, redis_server_url: str, redis_prefix: str, topic_prefix: str
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SYNCPIPE_KAFKA_BOOTSTRAP": session_broker.bootstrap,
        "SYNCPIPE_REDIS_URL": redis_server_url,
        "SYNCPIPE_REDIS_PREFIX": redis_prefix,
        "SYNCPIPE_TOPIC_PREFIX": topic_prefix,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "ingest", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: port_open(port) or proc.poll() is not None, "ingest to listen")
        assert proc.poll() is None
        token = mint_token(SharedSettings(), tenant="acme", user_id="alice")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            assert http.get("/readyz").json()["ready"] is True
            response = http.post(
                "/v1/ops",
                json={"ops": [make_op()]},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.json()["results"][0]["status"] == "accepted"
            assert "server" not in response.headers
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status shows it.
    assert proc.returncode in (0, -signal.SIGTERM), output.decode(errors="replace")
    assert b"Traceback" not in output
