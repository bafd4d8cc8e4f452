"""Fixtures: a real broker subprocess on a free port with a temporary data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import BrokerProcess


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator:
    started: list[BrokerProcess] = []

    def make(env: dict[str, str] | None = None, name: str = "data") -> BrokerProcess:
        b = BrokerProcess(tmp_path / name, env)
        b.start()
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def broker(broker_factory) -> BrokerProcess:
    return broker_factory()


@pytest.fixture
def wire(broker) -> Iterator:
    """Factory of raw protocol connections to ``broker``, closed after the test."""
    from tests.broker.wire import Wire

    opened: list[Wire] = []

    def connect(port: int | None = None) -> Wire:
        w = Wire(port or broker.port)
        opened.append(w)
        return w

    yield connect
    for w in opened:
        w.close()
