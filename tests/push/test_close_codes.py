"""push/close_codes.py: one table, reconnect ranges as documented."""

from __future__ import annotations

import pytest

from push.close_codes import ERRORS, CloseCode, error_code


@pytest.mark.parametrize("code", list(CloseCode), ids=lambda c: c.label)
def test_close_code_reconnect_follows_range(code: CloseCode) -> None:
    assert 4000 <= code < 5000
    assert code.reconnect is (code < 4500)


def test_close_codes_in_module_table() -> None:
    import push.close_codes as mod

    doc = mod.__doc__ or ""
    for code in CloseCode:
        assert f"{int(code)}  {code.label}" in doc


def test_overload_and_shutdown_ask_to_reconnect_auth_does_not() -> None:
    assert CloseCode.OVERLOADED.reconnect
    assert CloseCode.SERVER_SHUTTING_DOWN.reconnect
    assert CloseCode.IDLE_TIMEOUT.reconnect
    assert not CloseCode.AUTH_FAILED.reconnect
    assert not CloseCode.PROTOCOL_VIOLATION.reconnect


def test_error_code_lookup_fails_on_typos() -> None:
    assert error_code("bad_json") == "bad_json"
    with pytest.raises(KeyError, match="unknown push error code"):
        error_code("bad_jsn")
    assert all(e.meaning for e in ERRORS.values())
