import io
import logging

import orjson
import pytest

from syncpipe.logs import configure_logging


@pytest.fixture
def restore_root_logger() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_carry_event_and_context_fields(restore_root_logger: object) -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", out)
    logging.getLogger("broker.server").info("listening", extra={"port": 9092, "host": "127.0.0.1"})
    logging.getLogger("x").debug("hidden")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    doc = orjson.loads(lines[0])
    assert doc["event"] == "listening"
    assert doc["logger"] == "broker.server"
    assert doc["level"] == "info"
    assert (doc["port"], doc["host"]) == (9092, "127.0.0.1")


def test_auto_format_is_text_for_non_tty_only_when_asked(restore_root_logger: object) -> None:
    out = io.StringIO()  # not a TTY: auto means JSON
    configure_logging("INFO", "auto", out)
    logging.getLogger("a").info("x")
    orjson.loads(out.getvalue())
    out2 = io.StringIO()
    configure_logging("INFO", "text", out2)
    logging.getLogger("a").warning("disk low", extra={"free_mb": 3})
    assert "warning" in out2.getvalue()
    assert "disk low  free_mb=3" in out2.getvalue()


def test_non_string_context_keys_are_logged(restore_root_logger: object) -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", out)
    logging.getLogger("push.source").info("source started", extra={"entities_at": {0: 5, 1: 7}})
    assert orjson.loads(out.getvalue())["entities_at"] == {"0": 5, "1": 7}


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_bearer_tokens_never_reach_the_log(restore_root_logger: object, fmt: str) -> None:
    out = io.StringIO()
    configure_logging("INFO", fmt, out)
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "1.2.3.4", f"/v1/ws?client_id=c&token={jwt}"
    )
    logging.getLogger("x").info("header Authorization: Bearer %s", jwt)
    text = out.getvalue()
    assert jwt not in text
    assert text.count("[redacted]") == 2
