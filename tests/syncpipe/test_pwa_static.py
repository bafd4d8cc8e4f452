from pathlib import Path

import httpx
import orjson
import pytest

from syncpipe.pwa_static import PwaNotBuiltError, create_pwa_app


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<html>shell</html>")
    (tmp_path / "assets" / "app.js").write_text("console.log(1)")
    (tmp_path / "sw.js").write_text("self.addEventListener('fetch', () => {})")
    (tmp_path.parent / "secret.txt").write_text("not served")
    return tmp_path


async def get(dist: Path, path: str) -> httpx.Response:
    app = create_pwa_app(
        dist, api_base="http://127.0.0.1:8080", ws_base="ws://127.0.0.1:8081", token="t0k"
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://pwa"
    ) as c:
        return await c.get(path)


async def test_config_js_carries_backend_urls_and_token(dist: Path) -> None:
    resp = await get(dist, "/config.js")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/javascript")
    assert resp.headers["cache-control"] == "no-store"
    prefix = "window.SYNCPIPE_CONFIG = "
    assert resp.text.startswith(prefix)
    doc = orjson.loads(resp.text.removeprefix(prefix).rstrip().rstrip(";"))
    assert doc == {
        "apiBase": "http://127.0.0.1:8080",
        "wsBase": "ws://127.0.0.1:8081",
        "token": "t0k",
    }


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/", 200, "<html>shell</html>"),
        ("/tasks/42", 200, "<html>shell</html>"),
        ("/assets/app.js", 200, "console.log(1)"),
        ("/assets/missing.js", 404, None),
        ("/../secret.txt", 404, None),
        ("/%2e%2e/secret.txt", 404, None),
    ],
    ids=[
        "root",
        "client-route-falls-back",
        "asset",
        "missing-asset",
        "traversal",
        "encoded-traversal",
    ],
)
async def test_static_files_and_app_shell_fallback(
    dist: Path, path: str, status: int, body: str | None
) -> None:
    resp = await get(dist, path)
    assert resp.status_code == status
    if body is not None:
        assert resp.text == body


async def test_service_worker_is_not_cached(dist: Path) -> None:
    resp = await get(dist, "/sw.js")
    assert resp.headers["cache-control"] == "no-store"


def test_missing_build_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PwaNotBuiltError, match="build the PWA first"):
        create_pwa_app(tmp_path, api_base="", ws_base="", token=None)
