"""A real Redis server for tests: ``SYNCPIPE_REDIS_URL`` if given, else one started here."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from syncpipe.redis_server import ping, redis_argv
from tests.processes import free_port


@contextmanager
def redis_url(tmp_dir: Path) -> Iterator[str]:
    """Yield a Redis URL; a server started here is stopped on exit."""
    given = os.environ.get("SYNCPIPE_REDIS_URL")
    if given:
        yield given
        return
    port = free_port()
    proc = subprocess.Popen(
        redis_argv(port, tmp_dir, persist=False),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while not ping(port):
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {proc.returncode} on port {port}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer PING on port {port} in 15 s")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
