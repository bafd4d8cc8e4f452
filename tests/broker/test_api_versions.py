"""ApiVersions over the raw wire, including the KIP-511 fallback for flexible versions."""

from __future__ import annotations

import pytest

from tests.broker.test_registry import EXPECTED

pytestmark = pytest.mark.timeout(30)


def _table(r) -> dict[int, tuple[int, int]]:
    return {k: (lo, hi) for k, lo, hi in r.array(lambda r: (r.int16(), r.int16(), r.int16()))}


@pytest.mark.parametrize("version", [0, 1, 2])
def test_api_versions_lists_compat_ranges(wire, version: int) -> None:
    w = wire()
    r = w.call(18, version, b"")
    assert r.int16() == 0
    assert _table(r) == EXPECTED
    if version >= 1:
        assert r.int32() == 0
    assert r.remaining() == 0


@pytest.mark.parametrize("version", [3, 4], ids=["librdkafka-v3", "kafka-python-v4"])
def test_api_versions_flexible_request_gets_v0_unsupported_version(wire, version: int) -> None:
    w = wire()
    # flexible header v2: tagged fields after client_id, flexible body (compact strings)
    body = b"\x00" + b"\x05client" + b"\x041.0" + b"\x00"
    corr = w.send(18, version, body)
    got, r = w.recv()
    assert got == corr
    assert r.int16() == 35
    table = _table(r)
    assert table[18] == (0, 2)
    assert r.remaining() == 0
    # and the connection is still usable with a supported version
    r = w.call(18, 2, b"")
    assert r.int16() == 0
