"""Schemathesis explores the OpenAPI spec of a real ingest server: no request yields a 5xx.

Ingest runs as its own process (``syncpipe ingest``) against the session's broker and
Redis; schemathesis generates requests from ``/openapi.json``, with and without a
valid token, and checks every answer with ``not_a_server_error`` and the response
schemas the spec declares.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from schemas.auth import mint_token
from schemas.settings import SharedSettings
from tests.processes import BrokerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
ST = shutil.which("st", path=str(Path(sys.executable).parent))


@pytest.fixture
def ingest_url(
    session_broker: BrokerProcess, redis_server_url: str, redis_prefix: str, tmp_path: Path
) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCPIPE_")}
    env.update(
        SYNCPIPE_KAFKA_BOOTSTRAP=session_broker.bootstrap,
        SYNCPIPE_REDIS_URL=redis_server_url,
        SYNCPIPE_REDIS_PREFIX=redis_prefix,
        SYNCPIPE_TOPIC_PREFIX=f"st{port}.",
        SYNCPIPE_INGEST_PORT=str(port),
        SYNCPIPE_INGEST_RATE_LIMIT_OPS_PER_S="100000",
        SYNCPIPE_INGEST_RATE_LIMIT_BURST_OPS="100000",
    )
    log = (tmp_path / "ingest.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncpipe", "ingest"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "ingest.log").read_text()
            assert time.monotonic() < deadline, "ingest not ready in 60 s"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_schemathesis_finds_no_server_error(ingest_url: str, tmp_path: Path) -> None:
    assert ST is not None, "schemathesis is a dev dependency: run `uv sync`"
    token = mint_token(SharedSettings(), tenant="acme", user_id="fuzzer")
    proc = subprocess.run(
        [
            ST, "run", f"{ingest_url}/openapi.json",
            "--checks", "not_a_server_error,status_code_conformance,response_schema_conformance",
            "--header", f"Authorization: Bearer {token}",
            "--max-examples", "40",
            "--seed", "1",
            "--no-color",
        ],
        capture_output=True, text=True, timeout=240, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "generated" in proc.stdout, proc.stdout[-2000:]
