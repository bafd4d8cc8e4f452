"""deploy/docker/: the healthcheck probe and the PWA server the containers run."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType

import pytest

from tests.deploy.conftest import DEPLOY
from tests.processes import free_port


def load(name: str) -> ModuleType:
    path = DEPLOY / "docker" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"deploy_docker_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/ok" else 503
        body = b"fine" if status == 200 else b"not ready"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    ("paths", "code"),
    [(["/ok"], 0), (["/readyz"], 1), (["/ok", "/readyz"], 1), (["/ok", "/ok"], 0)],
    ids=["ok", "not-ready-503", "one-of-two-down", "all-ok"],
)
def test_healthcheck_exit_code_follows_http_status(
    server: str, paths: list[str], code: int
) -> None:
    assert load("healthcheck").main([server + p for p in paths]) == code


def test_healthcheck_fails_when_nothing_listens(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/readyz"
    assert load("healthcheck").main([url]) == 1
    assert url in capsys.readouterr().err


def test_healthcheck_without_urls_is_a_usage_error() -> None:
    assert load("healthcheck").main([]) == 2
