"""Operability: /metrics, the operator CLI against a live broker, clear start-up errors."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from typer.testing import CliRunner

from syncpipe.commands.broker import register
from tests.processes import REPO, free_port

pytestmark = pytest.mark.timeout(90)


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


async def _produce_and_consume(bootstrap: str, topic: str, n: int, group: str) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    for i in range(n):
        await p.send(topic, f"v{i}".encode(), key=f"k{i}".encode())
    await p.flush()
    await p.stop()
    c = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await c.start()
    got = 0
    while got < n // 2:
        for msgs in (await c.getmany(timeout_ms=500, max_records=n // 2 - got)).values():
            got += len(msgs)
    await c.commit()
    await c.stop()


async def test_metrics_endpoint_reports_requests_bytes_latency_offsets_and_lag(broker) -> None:
    await _produce_and_consume(broker.bootstrap, "metered", 10, "mg")
    url = f"http://127.0.0.1:{broker.metrics_port}/metrics"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read())
    text = body.decode()
    for needle in (
        'syncpipe_broker_requests_total{api="produce"}',
        'syncpipe_broker_requests_total{api="fetch"}',
        "syncpipe_broker_received_bytes_total",
        "syncpipe_broker_sent_bytes_total",
        "syncpipe_broker_produce_latency_seconds_bucket",
        "syncpipe_broker_fetch_latency_seconds_bucket",
        'syncpipe_broker_log_end_offset{partition="0",topic="metered"} 10.0',
        'syncpipe_broker_group_lag_records{group="mg",partition="0",topic="metered"} 5.0',
        "syncpipe_broker_fsyncs_total",
    ):
        assert needle in text, needle


def test_operator_cli_topics_groups_tail(broker, monkeypatch) -> None:
    monkeypatch.setenv("SYNCPIPE_KAFKA_BOOTSTRAP", broker.bootstrap)
    runner = CliRunner()
    app = _cli()

    def run(*args: str) -> str:
        res = runner.invoke(app, list(args))
        assert res.exit_code == 0, (args, res.output, res.exception)
        return res.output

    assert "created ops" in run(
        "topics", "create", "ops", "--partitions", "2", "--config", "cleanup.policy=compact"
    )
    assert "ops" in run("topics", "list").split()
    asyncio.run(_produce_and_consume(broker.bootstrap, "ops", 10, "readers"))
    desc = run("topics", "describe", "ops")
    assert "partitions 2" in desc
    assert "cleanup.policy=compact" in desc

    assert "readers" in run("groups", "list").split()
    assert "committed" in run("groups", "describe", "readers")
    out = run("groups", "reset-offsets", "readers", "--topic", "ops", "--to", "earliest")
    assert "readers ops[0] -> 0" in out
    assert "lag" in run("groups", "describe", "readers")

    tail = run("tail", "ops", "--from-beginning", "--max-messages", "10")
    assert len(tail.strip().splitlines()) == 10
    assert "k3  v3" in tail

    assert "deleted ops" in run("topics", "delete", "ops")
    assert "ops" not in run("topics", "list").split()


def test_cli_reports_unreachable_broker_without_traceback() -> None:
    res = CliRunner().invoke(_cli(), ["topics", "list", "--bootstrap", f"127.0.0.1:{free_port()}"])
    assert res.exit_code == 1
    assert "error:" in res.output
    assert "Traceback" not in res.output


def _start_error(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker", "--metrics-port", "0", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_port_in_use_is_a_clear_startup_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = _start_error(tmp_path, "--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert res.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in res.stderr
    assert "Traceback" not in res.stderr


def test_unwritable_data_dir_is_a_clear_startup_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    res = _start_error(tmp_path, "--port", str(free_port()), "--data-dir", str(blocker / "d"))
    assert res.returncode == 2
    assert "is not writable" in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_broker_command_reports_startup_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = CliRunner().invoke(
        _cli(),
        [
            "broker",
            "--data-dir",
            str(blocker / "d"),
            "--metrics-port",
            "0",
            "--port",
            str(free_port()),
        ],
    )
    assert res.exit_code == 2
    assert "is not writable" in res.output


def test_second_broker_on_same_data_dir_is_refused(broker) -> None:
    res = _start_error(
        broker.data_dir, "--port", str(free_port()), "--data-dir", str(broker.data_dir)
    )
    assert res.returncode == 2
    assert "in use by another broker" in res.stderr


def test_metrics_port_in_use_is_a_clear_startup_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "broker",
                "--port",
                str(free_port()),
                "--data-dir",
                str(tmp_path / "d"),
                "--metrics-port",
                str(taken),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert res.returncode == 2
    assert f"metrics port {taken}" in res.stderr
    assert "Traceback" not in res.stderr
