"""Serves the built PWA (``pwa/dist``) and its runtime ``/config.js`` for ``syncpipe dev``.

``/config.js`` sets ``window.SYNCPIPE_CONFIG = {apiBase, wsBase, token}`` so one build
runs against any backend. Unknown paths fall back to ``index.html`` (the app routes on
the client); the service worker and config are never cached by the browser's HTTP cache.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

NO_STORE = {"Cache-Control": "no-store"}


class PwaNotBuiltError(Exception):
    """The PWA has no build output to serve."""


def config_script(api_base: str, ws_base: str, token: str | None) -> str:
    doc = {"apiBase": api_base, "wsBase": ws_base, "token": token}
    return f"window.SYNCPIPE_CONFIG = {orjson.dumps(doc).decode()};\n"


def create_pwa_app(dist: Path, *, api_base: str, ws_base: str, token: str | None) -> Starlette:
    """The static app; raises :class:`PwaNotBuiltError` when ``dist`` has no index.html."""
    dist = dist.resolve()
    index = dist / "index.html"
    if not index.is_file():
        raise PwaNotBuiltError(
            f"{index} not found: build the PWA first (npm --prefix pwa run build)"
        )
    script = config_script(api_base, ws_base, token)

    async def config_js(_: Request) -> Response:
        return PlainTextResponse(script, media_type="text/javascript", headers=NO_STORE)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def files(request: Request) -> Response:
        rel = request.path_params["path"]
        target = (dist / rel).resolve()
        if not target.is_relative_to(dist):
            raise HTTPException(404)
        if target.is_file():
            headers = NO_STORE if target.name in {"sw.js", "index.html"} else None
            return FileResponse(target, headers=headers)
        if Path(rel).suffix:  # a missing asset is a 404, not the app shell
            raise HTTPException(404)
        return FileResponse(index, headers=NO_STORE)

    routes = [
        Route("/config.js", config_js),
        Route("/healthz", healthz),
        Route("/{path:path}", files),
    ]
    return Starlette(routes=routes)
