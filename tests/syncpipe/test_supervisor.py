"""The dev supervisor starts, restarts and stops real child processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syncpipe.supervisor import ProcessSpec, Supervisor, SupervisorError, port_open
from tests.processes import REPO, free_port, wait_until

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
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


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


async def test_child_output_goes_prefixed_to_the_callback_and_to_its_log_file(
    tmp_path: Path,
) -> None:
    lines: list[tuple[str, str]] = []
    notes: list[str] = []
    code = "import sys, time; print('hello'); print('oops', file=sys.stderr); time.sleep(60)"
    log = tmp_path / "logs" / "talker.log"
    sup = Supervisor(
        [ProcessSpec(name="talker", argv=[sys.executable, "-u", "-c", code], log_file=log)],
        notify=notes.append,
        output=lambda name, line: lines.append((name, line)),
    )
    await sup.start()
    try:
        await wait_for(lambda: len(lines) == 2)
        assert sorted(lines) == [("talker", "hello"), ("talker", "oops")]
        assert sorted(log.read_text().splitlines()) == ["hello", "oops"]
    finally:
        await sup.stop()
    assert notes[0] == f"started talker (pid {sup.pid('talker')})"
    assert notes[-1] == f"stopping talker (pid {sup.pid('talker')})"


async def test_restart_is_announced_with_exit_reason_and_backoff() -> None:
    notes: list[str] = []
    port = free_port()
    sup = Supervisor([server("svc", port)], notify=notes.append, min_backoff_s=0.1)
    await sup.start()
    try:
        assert notes == [f"started svc (pid {sup.pid('svc')})", "svc is ready"]
        old = sup.pid("svc")
        assert old is not None
        os.kill(old, signal.SIGKILL)
        await wait_for(lambda: "svc restarted (restart 1)" in notes)
        assert "svc exited with signal SIGKILL; restarting in 0.1 s (restart 1)" in notes
        os.kill(sup.pid("svc"), signal.SIGTERM)  # type: ignore[arg-type]
        await wait_for(lambda: "svc restarted (restart 2)" in notes)
        assert "svc exited with signal SIGTERM; restarting in 0.2 s (restart 2)" in notes
    finally:
        await sup.stop()


async def test_stop_also_ends_what_a_child_started(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    sup = Supervisor([ProcessSpec(name="parent", argv=[sys.executable, "-c", code])])
    await sup.start()
    await wait_for(lambda: pidfile.exists() and pidfile.read_text() != "")
    grandchild = int(pidfile.read_text())
    assert alive(grandchild)
    await sup.stop()
    await wait_for(lambda: not alive(grandchild), 5)


def test_children_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = (
        "import asyncio, sys\n"
        "from syncpipe.supervisor import ProcessSpec, Supervisor\n"
        "async def main():\n"
        "    argv = [sys.executable, '-c', 'import time; time.sleep(60)']\n"
        "    spec = ProcessSpec(name='c', argv=argv)\n"
        "    sup = Supervisor([spec])\n"
        "    await sup.start()\n"
        f"    open({str(pidfile)!r}, 'w').write(str(sup.pid('c')))\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        wait_until(lambda: pidfile.exists() and pidfile.read_text() != "", what="child pid")
        child = int(pidfile.read_text())
        assert alive(child)
        proc.kill()  # kill -9: the supervisor cannot stop anything itself
        proc.wait(10)
        wait_until(lambda: not alive(child), timeout=10, what="orphaned child to die")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_hurry_kills_what_is_left_instead_of_waiting_out_the_grace() -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    notes: list[str] = []
    spec = ProcessSpec(name="stubborn", argv=[sys.executable, "-c", code])
    sup = Supervisor([spec], stop_grace_s=60, notify=notes.append)
    await sup.start()
    await asyncio.sleep(0.3)  # let the child install its handler before we signal it
    stopping = asyncio.create_task(sup.stop())
    await wait_for(lambda: any(n.startswith("stopping stubborn") for n in notes))
    started = time.monotonic()
    sup.hurry()
    await asyncio.wait_for(stopping, 10)
    assert time.monotonic() - started < 10
    assert "stubborn: stop hurried; killing it" in notes
    pid = sup.pid("stubborn")
    assert pid is not None
    assert not alive(pid)
