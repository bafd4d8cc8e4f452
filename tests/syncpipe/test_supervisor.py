"""The dev supervisor starts, restarts and stops real child processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from syncpipe.supervisor import ProcessSpec, Supervisor, SupervisorError, port_open
from tests.processes import free_port

SERVER = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
time.sleep(float(sys.argv[2]))
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
while True:
    conn, _ = s.accept(); conn.close()
"""


def server(name: str, port: int, delay_s: float = 0.0, **kw: object) -> ProcessSpec:
    argv = [sys.executable, "-c", SERVER, str(port), str(delay_s)]
    return ProcessSpec(name=name, argv=argv, ready_port=port, **kw)  # type: ignore[arg-type]


async def wait_for(cond: object, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_starts_in_order_restarts_killed_child_and_stops_all(tmp_path: Path) -> None:
    p1, p2 = free_port(), free_port()
    sup = Supervisor([server("a", p1, 0.3), server("b", p2, log_file=tmp_path / "b.log")])
    await sup.start()
    try:
        assert port_open(p1)
        assert port_open(p2)
        old = sup.pid("b")
        assert old is not None
        os.kill(old, signal.SIGKILL)
        await wait_for(lambda: sup.restarts("b") == 1 and sup.pid("b") != old)
        await wait_for(lambda: port_open(p2))
        assert sup.restarts("a") == 0
    finally:
        pids = [sup.pid("a"), sup.pid("b")]
        await sup.stop()
    assert all(pid is not None and not alive(pid) for pid in pids)
    assert (tmp_path / "b.log").exists()


async def test_child_that_exits_before_ready_is_a_clear_error() -> None:
    spec = ProcessSpec(
        name="broken", argv=[sys.executable, "-c", "raise SystemExit(3)"], ready_port=free_port()
    )
    sup = Supervisor([spec])
    with pytest.raises(SupervisorError, match="broken exited with code 3 before it was ready"):
        await sup.start()
    await sup.stop()


async def test_child_that_never_listens_times_out() -> None:
    spec = ProcessSpec(
        name="silent",
        argv=[sys.executable, "-c", "import time; time.sleep(60)"],
        ready_port=free_port(),
        ready_timeout_s=0.5,
    )
    sup = Supervisor([spec], stop_grace_s=2)
    with pytest.raises(SupervisorError, match="silent did not open port"):
        await sup.start()
    await sup.stop()
    pid = sup.pid("silent")
    assert pid is not None
    await wait_for(lambda: not alive(pid), 5)


async def test_child_ignoring_sigterm_is_killed_after_grace() -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    sup = Supervisor(
        [ProcessSpec(name="stubborn", argv=[sys.executable, "-c", code])], stop_grace_s=0.5
    )
    await sup.start()
    await asyncio.sleep(0.2)  # let the child install its handler before we signal it
    pid = sup.pid("stubborn")
    await sup.stop()
    assert pid is not None
    assert not alive(pid)


async def test_port_already_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sup = Supervisor([server("dup", port)])
        with pytest.raises(SupervisorError, match=f"dup: port {port} is already in use"):
            await sup.start()
        await sup.stop()
        assert sup.pid("dup") is None


async def test_stop_goes_in_reverse_start_order(tmp_path: Path) -> None:
    record = tmp_path / "stopped.txt"
    code = (
        "import pathlib, signal, sys, time\n"
        "def bye(*_):\n"
        "    with open(sys.argv[1], 'a') as f: f.write(sys.argv[2] + '\\n')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "pathlib.Path(sys.argv[1] + '.' + sys.argv[2]).touch()\n"
        "time.sleep(60)\n"
    )
    specs = [
        ProcessSpec(name=n, argv=[sys.executable, "-c", code, str(record), n])
        for n in ("broker", "streams", "ingest")
    ]
    sup = Supervisor(specs, stop_grace_s=5)
    await sup.start()
    for n in ("broker", "streams", "ingest"):
        await wait_for(Path(f"{record}.{n}").exists)
    await sup.stop()
    assert record.read_text().split() == ["ingest", "streams", "broker"]
