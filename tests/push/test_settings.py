"""push/settings.py: env prefix, frozen, documented fields."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from push.settings import PushSettings


def test_settings_read_the_push_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCPIPE_PUSH_MAX_BPS", "4096")
    monkeypatch.setenv("SYNCPIPE_PUSH_OVERLOAD_GRACE_S", "2.5")
    monkeypatch.setenv("SYNCPIPE_PUSH_ALLOWED_ORIGINS", '["https://app.example"]')
    s = PushSettings()
    assert (s.max_bps, s.overload_grace_s, s.allowed_origins) == (
        4096,
        2.5,
        ["https://app.example"],
    )


def test_settings_are_frozen_and_validated() -> None:
    s = PushSettings()
    with pytest.raises(ValidationError):
        s.max_bps = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        PushSettings(max_bps=0)


def test_every_setting_is_described() -> None:
    for name, info in PushSettings.model_fields.items():
        assert info.description, name
